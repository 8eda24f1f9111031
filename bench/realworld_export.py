"""Export real models to ONNX for bench/realworld.py. Runs in the SEPARATE environment.

This script imports torch, torchvision and timm, so it never runs in akidac's own venv:
bench/realworld.py creates an environment for it (default ~/.cache/akidac-realworld/venv) and
runs it there as

    VENV/bin/python bench/realworld_export.py OUT_DIR SPEC.json

SPEC.json is a list of {"name", "kind", "arch", "size"} objects (the model registry lives in
realworld.py). Each model is built with random weights (no download: weights=None /
pretrained=False, torch.manual_seed(0)), its BatchNorm statistics are set by a few forward
passes in train mode on random inputs of the model's input distribution (cumulative average),
then it is exported in eval mode with the legacy TorchScript exporter at opset 17 with a dynamic
batch dimension, and checked with onnx.checker. Kind "wheel" copies an ONNX file that a
package of the environment ships. One line per model on stdout: `ok NAME` or `fail NAME: why`.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np

OPSET = 17
BN_BATCHES, BN_BATCH_SIZE = 6, 8


def _torch():
    import torch

    # torchvision's PyPI wheels are CUDA builds whose C extension (NMS, RoI ops) does not load
    # against a CPU-only torch; classification and segmentation models never call those ops,
    # but torchvision registers fake kernels for two of them at import, so define their schemas.
    if "torchvision" not in sys.modules:
        try:
            lib = torch.library.Library("torchvision", "DEF")
            lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
            lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
            _torch.keep = lib  # the library must stay alive
        except RuntimeError:  # the extension did load and defined them
            pass
    return torch


def image_batch(torch, n: int, size: int):
    """Uniform [0, 1] pixels normalised like ImageNet: the input distribution of the models."""
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return (torch.rand(n, 3, size, size) - mean) / std


def audio_batch(torch, n: int, samples: int):
    """Speech-like audio in [-1, 1]: a few harmonics with a slow envelope, plus noise."""
    t = torch.arange(samples, dtype=torch.float32) / 16000.0
    rows = []
    for _ in range(n):
        f0 = float(torch.empty(1).uniform_(90, 300))
        x = sum(
            torch.sin(2 * np.pi * f0 * h * t + float(torch.rand(1)) * 6.28) / h for h in range(1, 8)
        )
        env = 0.5 + 0.5 * torch.sin(2 * np.pi * float(torch.empty(1).uniform_(2, 6)) * t)
        x = 0.3 * x * env + 0.02 * torch.randn(samples)
        rows.append(x.clamp(-1, 1))
    return torch.stack(rows).unsqueeze(1)


class _SegOut:
    """Wrap a torchvision segmentation model, whose forward returns a dict, to return 'out'."""

    @staticmethod
    def wrap(torch, model):
        class Seg(torch.nn.Module):
            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, x):
                return self.inner(x)["out"]

        return Seg(model)


def log_mel_frontend(torch, n_fft: int = 512, hop: int = 160, mels: int = 40, rate: int = 16000):
    """A keyword-spotting log-mel front end as people write it in torch: Conv1d with fixed,
    Hann-windowed DFT cos/sin kernels, power x² + y², MatMul with an HTK mel filterbank,
    Log(x + 1e-6)."""
    bins = n_fft // 2 + 1
    t = np.arange(n_fft)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * t / n_fft)
    k = np.arange(bins)[:, None]
    cos = (np.cos(2 * np.pi * k * t / n_fft) * window).astype(np.float32)
    sin = (-np.sin(2 * np.pi * k * t / n_fft) * window).astype(np.float32)

    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def mel_to_hz(m):
        return 700.0 * (10 ** (m / 2595.0) - 1.0)

    edges = mel_to_hz(np.linspace(hz_to_mel(20.0), hz_to_mel(rate / 2), mels + 2))
    freqs = np.linspace(0, rate / 2, bins)
    fb = np.zeros((bins, mels), np.float32)
    for m in range(mels):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        up = (freqs - lo) / (mid - lo)
        down = (hi - freqs) / (hi - mid)
        fb[:, m] = np.maximum(0, np.minimum(up, down))

    class LogMel(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.real = torch.nn.Conv1d(1, bins, n_fft, stride=hop, bias=False)
            self.imag = torch.nn.Conv1d(1, bins, n_fft, stride=hop, bias=False)
            with torch.no_grad():
                self.real.weight.copy_(torch.from_numpy(cos).unsqueeze(1))
                self.imag.weight.copy_(torch.from_numpy(sin).unsqueeze(1))
            self.register_buffer("mel", torch.from_numpy(fb))

        def forward(self, audio):  # (N, 1, samples)
            re = self.real(audio)
            im = self.imag(audio)
            power = re * re + im * im  # (N, bins, frames)
            mel = torch.matmul(power.transpose(1, 2), self.mel)  # (N, frames, mels)
            return torch.log(mel + 1e-6).unsqueeze(1)  # (N, 1, frames, mels)

    return LogMel()


def build(torch, spec: dict):
    kind, arch = spec["kind"], spec["arch"]
    if kind == "torchvision":
        import torchvision

        kwargs = dict(spec.get("kwargs", {}))
        builder = getattr(torchvision.models, arch)
        return builder(weights=None, **kwargs)
    if kind == "torchvision-seg":
        import torchvision

        builder = getattr(torchvision.models.segmentation, arch)
        return _SegOut.wrap(torch, builder(weights=None, weights_backbone=None))
    if kind == "timm":
        import timm

        return timm.create_model(arch, pretrained=False)
    if kind == "logmel":
        return log_mel_frontend(torch)
    raise ValueError(f"unknown kind {kind!r}")


def set_batchnorm_statistics(torch, model, make_batch) -> int:
    """Reset every BatchNorm's running stats to a cumulative average over a few train-mode
    forward passes of random inputs, so that the eval-mode net has realistic activations."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    if norms:
        model.train()
        with torch.no_grad():
            for _ in range(BN_BATCHES):
                model(make_batch(BN_BATCH_SIZE))
    model.eval()
    return len(norms)


def export_one(spec: dict, out: Path) -> str:
    if spec["kind"] == "wheel":
        found = importlib.util.find_spec(spec["package"])
        if found is None or not found.submodule_search_locations:
            raise RuntimeError(f"package {spec['package']!r} is not installed")
        source = Path(next(iter(found.submodule_search_locations))) / spec["file"]
        shutil.copyfile(source, out)
        import onnx

        onnx.checker.check_model(str(out))
        return f"copied {source}"
    torch = _torch()
    torch.manual_seed(0)
    model = build(torch, spec)
    size = spec["size"]
    if spec["kind"] == "logmel":
        make = lambda n: audio_batch(torch, n, size)  # noqa: E731
    else:
        make = lambda n: image_batch(torch, n, size)  # noqa: E731
    norms = set_batchnorm_statistics(torch, model, make)
    example = make(1)
    tmp = out.with_suffix(".tmp.onnx")
    with torch.no_grad():
        torch.onnx.export(
            model,
            (example,),
            str(tmp),
            dynamo=False,
            opset_version=OPSET,
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
            do_constant_folding=True,
        )
    import onnx

    onnx.checker.check_model(str(tmp))
    tmp.replace(out)
    return f"{norms} BatchNorms calibrated, input {tuple(example.shape)}"


def export_all(export: Callable[[dict, Path], str]) -> int:
    """The command line of an export script: `OUT_DIR SPEC.json`; `export(spec, out)` writes
    one model and returns a note. Also used by realworld_export_tf.py."""
    out_dir, spec_file = Path(sys.argv[1]), Path(sys.argv[2])
    out_dir.mkdir(parents=True, exist_ok=True)
    failed = 0
    for spec in json.loads(spec_file.read_text()):
        out = out_dir / f"{spec['name']}.onnx"
        try:
            note = export(spec, out)
            print(f"ok {spec['name']}: {note}", flush=True)
        except Exception as error:  # one model's failure does not stop the others
            failed += 1
            last = traceback.format_exception_only(type(error), error)[-1].strip()
            print(f"fail {spec['name']}: {last.splitlines()[0][:300]}", flush=True)
            traceback.print_exc(file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(export_all(export_one))
