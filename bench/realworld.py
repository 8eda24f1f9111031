"""Compile real models that nobody in this project designed, as a new user would, and measure them.

    .venv/bin/python bench/realworld.py [--models a,b] [--list] [--markdown] [--json FILE]
                                        [--cache DIR] [--device DEVICE] [--timeout S]

The models are torchvision and timm networks with random weights (seed 0, BatchNorm statistics
set by a few train-mode passes on random inputs), ONNX files that PyPI wheels ship (ddddocr's OCR
and detection models, silero-vad's voice activity detector), a log-mel keyword-spotting front
end written in torch, Keras applications with random weights exported by tf2onnx (NHWC input,
dynamic batch, as tf2onnx writes them) and the trained TFLite models that the mediapipe wheel
ships (face, palm and hand, pose, selfie segmentation), converted by `python -m tf2onnx.convert
--tflite`. torch, TensorFlow and their friends never enter akidac's venv: on first use the script
creates separate environments (CACHE/venv for torch, CACHE/venv-tf for TensorFlow; default CACHE
~/.cache/akidac-realworld) and exports the models there with bench/realworld_export.py and
bench/realworld_export_tf.py into CACHE/models/*.onnx, which are then reused while their
registry entry and environment stay the same (CACHE/models/NAME.stamp.json). No weights are
downloaded.

Each model is then compiled by the CLI in a subprocess with a timeout,

    akidac compile MODEL -o CACHE/work/NAME/hybrid.onnx --report-json CACHE/work/NAME/report.json
                   --samples CACHE/work/NAME/calib.npz [--input-shape NAME=...]

(`--input-shape` for inputs with a dynamic dimension, `--samples` 32 calibration inputs of the
model's input distribution, seed 1; `--no-samples` leaves akidac's random default). Compiled models
are run (another subprocess) in `akidac.HybridSession` and the float model in onnxruntime on 8
held-out inputs of the same distribution (seed 1234, batch 1): SQNR (dB, per output, the
minimum over samples, as akidac.metrics defines it: an output of one value per sample is
measured over the samples joined), top-1 agreement (2-D float outputs with more than one
class), and the median of a few interleaved timed runs of each after a warm-up, both on one
onnxruntime thread.

The "8-bit-input floor" is the float model's own sensitivity: the SQNR of its output when only
its input is rounded to 256 levels (over each sample's own range) and nothing else changes. No
8-bit accelerator can beat it; a model whose floor is near or below 20 dB (a randomly initialised
deep network often is: small input errors grow layer after layer) cannot reach 20 dB on any
8-bit hardware, and akidac's fidelity guard rightly keeps most of it on the CPU.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
AKIDAC = Path(sys.executable).parent / "akidac"
DEFAULT_CACHE = Path.home() / ".cache" / "akidac-realworld"

# The separate environment. torchvision's PyPI wheels are CUDA builds: torch 2.14.1 from PyPI
# pulls several GB of nvidia-* wheels, so the CPU-only torch wheel on this machine's disk is used
# with the torchvision release built for it (its C extension is not needed: see the export script).
ENV_STEPS = [
    [
        "torch==2.13.0+cpu",
        "torchvision==0.28.0",
        "onnx",
        "onnxscript",
        "pyyaml",
        "safetensors",
        "huggingface_hub",
        "numpy",
        "pillow",
    ],
    [
        "--no-deps",
        "timm==1.0.31",
        "ddddocr==1.6.1",
        "silero-vad==6.2.3",
        "rapidocr-onnxruntime==1.4.4",
        "nudenet==3.4.2",
    ],
]
ENV_STAMP = "akidac-realworld-env-v2"

# The TensorFlow environment (CACHE/venv-tf): Keras applications and tf2onnx, and the mediapipe
# release whose wheel still ships its trained TFLite models (face, hand, pose, selfie; later
# releases download them at run time). That release pins numpy<2 and protobuf<5, which
# TensorFlow 2.21 does not accept; only its files are read (never imported), so it is installed
# without its dependencies.
TF_ENV_STEPS = [
    ["tensorflow-cpu==2.21.0", "tf2onnx==1.17.0"],
    ["--no-deps", "mediapipe==0.10.21"],
]
TF_ENV_STAMP = "akidac-realworld-tf-env-v1"

# which environment exports a model of each kind, and with which script
ENVIRONMENTS = {
    "torch": {
        "folder": "venv",
        "steps": ENV_STEPS,
        "stamp": ENV_STAMP,
        "script": "realworld_export.py",
    },
    "tf": {
        "folder": "venv-tf",
        "steps": TF_ENV_STEPS,
        "stamp": TF_ENV_STAMP,
        "script": "realworld_export_tf.py",
    },
}

CALIBRATION, HELD_OUT, TIMED_ROUNDS = 32, 8, 5

IMAGENET = "imagenet"  # uniform [0, 1] pixels normalised with ImageNet's mean and std


def _tv(name, size=224, **kwargs):
    return {
        "name": name,
        "source": "torchvision",
        "kind": "torchvision",
        "arch": name,
        "size": size,
        "kwargs": kwargs,
        "dist": IMAGENET,
    }


def _timm(arch, size=224):
    return {
        "name": f"timm_{arch}",
        "source": "timm",
        "kind": "timm",
        "arch": arch,
        "size": size,
        "dist": IMAGENET,
    }


def _keras(arch, size, dist, name=None, **kwargs):
    """A Keras application, weights=None, exported by tf2onnx with its NHWC input; `dist` is
    what the application's preprocess_input produces from uniform pixels."""
    return {
        "name": name or f"keras_{arch.lower()}",
        "source": "keras (tf2onnx)",
        "kind": "keras",
        "env": "tf",
        "arch": arch,
        "size": size,
        "kwargs": kwargs,
        "dist": dist,
        "layout": "NHWC",
    }


def _mediapipe(name, file, dist):
    """A trained TFLite model from the mediapipe wheel, converted by tf2onnx's command line.
    `dist` follows the model's MediaPipe graph (ImageToTensorCalculator's
    output_tensor_float_range): natural-looking images in [0, 1] or [-1, 1]."""
    return {
        "name": f"mp_{name}",
        "source": "mediapipe tflite (trained)",
        "kind": "tflite",
        "env": "tf",
        "package": "mediapipe",
        "file": f"modules/{file}",
        "dist": dist,
        "layout": "NHWC",
    }


MODELS: list[dict] = [
    _tv("resnet18"),
    _tv("resnet50", 160),
    _tv("mobilenet_v2"),
    _tv("mobilenet_v3_small"),
    _tv("mobilenet_v3_large"),
    _tv("efficientnet_b0"),
    _tv("squeezenet1_1"),
    _tv("shufflenet_v2_x1_0"),
    _tv("mnasnet1_0"),
    _tv("regnet_y_400mf"),
    _tv("densenet121", 160),
    _tv("googlenet", aux_logits=False, init_weights=True),
    {
        "name": "lraspp_mobilenet_v3_large",
        "source": "torchvision seg",
        "kind": "torchvision-seg",
        "arch": "lraspp_mobilenet_v3_large",
        "size": 224,
        "dist": IMAGENET,
    },
    _timm("mobilenetv4_conv_small"),
    _timm("efficientnet_lite0"),
    _timm("lcnet_050"),
    _timm("ghostnet_100"),
    {
        "name": "ddddocr_common_old",
        "source": "ddddocr wheel",
        "kind": "wheel",
        "package": "ddddocr",
        "file": "common_old.onnx",
        "dist": "unit",
        "shapes": {"input1": [1, 1, 64, 160]},
    },
    {
        "name": "ddddocr_common",
        "source": "ddddocr wheel",
        "kind": "wheel",
        "package": "ddddocr",
        "file": "common.onnx",
        "dist": "unit",
        "shapes": {"input1": [1, 1, 64, 160]},
    },
    {
        "name": "ddddocr_common_det",
        "source": "ddddocr wheel",
        "kind": "wheel",
        "package": "ddddocr",
        "file": "common_det.onnx",
        "dist": "pixels255",
    },
    # trained models that wheels ship: PP-OCRv4 (rapidocr-onnxruntime) and NudeNet's YOLOv8n
    {
        "name": "ppocr_v4_det",
        "source": "rapidocr wheel (trained)",
        "kind": "wheel",
        "package": "rapidocr_onnxruntime",
        "file": "models/ch_PP-OCRv4_det_infer.onnx",
        "dist": "page-imagenet",
        "shapes": {"x": [1, 3, 320, 320]},
    },
    {
        "name": "ppocr_v4_rec",
        "source": "rapidocr wheel (trained)",
        "kind": "wheel",
        "package": "rapidocr_onnxruntime",
        "file": "models/ch_PP-OCRv4_rec_infer.onnx",
        "dist": "page-pm1",
        "shapes": {"x": [1, 3, 48, 320]},
    },
    {
        "name": "ppocr_mobile_cls",
        "source": "rapidocr wheel (trained)",
        "kind": "wheel",
        "package": "rapidocr_onnxruntime",
        "file": "models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
        "dist": "page-pm1",
        "shapes": {"x": [1, 3, 48, 192]},
    },
    {
        "name": "nudenet_320n",
        "source": "nudenet wheel (trained)",
        "kind": "wheel",
        "package": "nudenet",
        "file": "320n.onnx",
        "dist": "blobs",
        "shapes": {"images": [1, 3, 320, 320]},
    },
    {
        "name": "silero_vad",
        "source": "silero-vad wheel",
        "kind": "wheel",
        "package": "silero_vad",
        "file": "data/silero_vad.onnx",
        "dist": "audio",
        "shapes": {"input": [1, 512], "state": [2, 1, 128]},
        "fill": {"state": 0.0, "sr": 16000},
    },
    {
        "name": "logmel_frontend",
        "source": "torch (KWS front end)",
        "kind": "logmel",
        "arch": "logmel",
        "size": 16000,
        "dist": "audio",
    },
    # TensorFlow: Keras applications (random weights) and mediapipe's trained TFLite models.
    # Not here: pose_detection and face_detection_full_range_sparse, which tf2onnx 1.17 cannot
    # convert (ValueError in MakeNdarray), and selfie_segmentation and
    # face_landmark_with_attention, whose ONNX models keep custom TFLite ops
    # (TFL_Convolution2DTransposeBias, TFL_TransformLandmarks) that onnxruntime cannot run.
    _keras("MobileNetV2", 96, "pm1", name="keras_mobilenetv2_035_96", alpha=0.35),
    _keras("MobileNetV3Small", 224, "pixels255"),
    _keras("ResNet50", 224, "caffe"),
    _keras("EfficientNetB0", 224, "pixels255"),
    _keras("DenseNet121", 224, IMAGENET),
    _mediapipe(
        "face_detection_short_range",
        "face_detection/face_detection_short_range.tflite",
        "blobs-pm1",
    ),
    _mediapipe("palm_detection_lite", "palm_detection/palm_detection_lite.tflite", "blobs"),
    _mediapipe("palm_detection_full", "palm_detection/palm_detection_full.tflite", "blobs"),
    _mediapipe("hand_landmark_lite", "hand_landmark/hand_landmark_lite.tflite", "blobs"),
    _mediapipe("hand_landmark_full", "hand_landmark/hand_landmark_full.tflite", "blobs"),
    _mediapipe("pose_landmark_full", "pose_landmark/pose_landmark_full.tflite", "blobs"),
    _mediapipe("face_landmark", "face_landmark/face_landmark.tflite", "blobs"),
    _mediapipe("iris_landmark", "iris_landmark/iris_landmark.tflite", "blobs"),
]
BY_NAME = {m["name"]: m for m in MODELS}


# ----------------------------------------------------------------------------- environment


def ensure_env(cache: Path, env: str = "torch") -> Path:
    """Create the export environment `env` (CACHE/venv or CACHE/venv-tf) once; returns its
    python. A stamp file named after the environment's version holds its install steps."""
    spec = ENVIRONMENTS[env]
    venv = cache / spec["folder"]
    python = venv / "bin" / "python"
    stamp = venv / spec["stamp"]
    if stamp.exists():
        return python
    print(f"creating the export environment {venv} (once; a few minutes)", file=sys.stderr)
    if not python.exists():
        subprocess.run(["python3.11", "-m", "venv", str(venv)], check=True)
    for args in spec["steps"]:
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *args], check=True)
    stamp.write_text("\n".join(" ".join(a) for a in spec["steps"]) + "\n")
    return python


def _export_stamp(model: dict) -> str:
    """What a cached export was made from: the model's registry entry and its environment's
    version. A cached file whose stamp differs (or is missing) is exported again."""
    env = model.get("env", "torch")
    return json.dumps({"spec": model, "env": ENVIRONMENTS[env]["stamp"]}, sort_keys=True)


def ensure_models(cache: Path, models: list[dict]) -> dict[str, str]:
    """Export (or copy) the models whose ONNX file is not cached, or was cached from another
    spec; returns export failures. Each environment exports its own models."""
    out_dir = cache / "models"

    def cached(m: dict) -> bool:
        stamp = out_dir / f"{m['name']}.stamp.json"
        return (out_dir / f"{m['name']}.onnx").exists() and (
            stamp.exists() and stamp.read_text() == _export_stamp(m)
        )

    failures = {}
    for env, spec in ENVIRONMENTS.items():
        missing = [m for m in models if m.get("env", "torch") == env and not cached(m)]
        if not missing:
            continue
        python = ensure_env(cache, env)
        out_dir.mkdir(parents=True, exist_ok=True)
        spec_file = out_dir / f"export-spec-{env}.json"
        spec_file.write_text(json.dumps(missing, indent=1))
        print(f"exporting {len(missing)} model(s) to {out_dir} ({env})", file=sys.stderr)
        with (out_dir / f"export-{env}.log").open("w") as err:
            proc = subprocess.run(
                [str(python), str(HERE / spec["script"]), str(out_dir), str(spec_file)],
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
        for line in proc.stdout.splitlines():
            print(f"  {line}", file=sys.stderr)
            if line.startswith("fail "):
                name, _, why = line[5:].partition(": ")
                failures[name] = why
        for m in missing:
            if m["name"] not in failures and (out_dir / f"{m['name']}.onnx").exists():
                (out_dir / f"{m['name']}.stamp.json").write_text(_export_stamp(m))
    return failures


# ----------------------------------------------------------------------------- inputs


def _static_shape(model: dict, name: str, shape: list) -> list[int]:
    fixed = model.get("shapes", {}).get(name)
    if fixed is not None:
        return list(fixed)
    dims = []
    for i, d in enumerate(shape):
        if isinstance(d, int) and d > 0:
            dims.append(d)
        elif i == 0:
            dims.append(1)
        else:
            raise ValueError(f"input {name!r} dim {i} is dynamic ({d!r}); add it to 'shapes'")
    return dims


def _is_dynamic(shape: list) -> bool:
    return any(not (isinstance(d, int) and d > 0) for d in shape)


def _text_page(shape: list[int], rng: np.random.Generator) -> np.ndarray:
    """Grey levels in [0, 1] of a synthetic printed page: a light background with lines of dark
    glyph-like strokes. Trained OCR models answer noise with an all-zero map, on which no error
    figure means anything; a page gives them something to find."""
    n, c, h, w = shape
    page = rng.uniform(0.8, 1.0, size=(n, 1, h, w))
    line_h = max(6, min(h // 2, int(rng.integers(12, 33))))
    for k in range(n):
        top = int(rng.integers(0, max(1, line_h // 2)))
        while top + line_h <= h:
            x = int(rng.integers(0, max(1, w // 8)))
            while x < w - 4:
                gw = int(rng.integers(max(2, line_h // 3), line_h + 1))
                for _ in range(int(rng.integers(2, 5))):  # a glyph: a few strokes
                    y0 = top + int(rng.integers(0, line_h // 2))
                    x0 = x + int(rng.integers(0, max(1, gw - 2)))
                    sh = int(rng.integers(2, line_h - (y0 - top) + 1))
                    sw = int(rng.integers(1, max(2, gw // 2)))
                    page[k, 0, y0 : y0 + sh, x0 : x0 + sw] = rng.uniform(0.0, 0.25)
                x += gw + int(rng.integers(1, max(2, line_h // 2)))
                if rng.random() < 0.08:
                    x += line_h * 2  # a space between words
            top += line_h + int(rng.integers(line_h // 2, line_h * 2))
    page += rng.normal(0, 0.02, size=page.shape)
    return np.clip(np.broadcast_to(page, (n, c, h, w)), 0.0, 1.0)


def _blobs(shape: list[int], rng: np.random.Generator) -> np.ndarray:
    """A natural-looking image in [0, 1]: smooth random colour fields (noise upsampled from a
    coarse grid) with a few sharp-edged shapes, rather than pixel noise."""
    n, c, h, w = shape
    coarse = rng.random((n, c, max(2, h // 16), max(2, w // 16)))
    rows = np.minimum(np.arange(h) * coarse.shape[2] // h, coarse.shape[2] - 1)
    cols = np.minimum(np.arange(w) * coarse.shape[3] // w, coarse.shape[3] - 1)
    image = coarse[:, :, rows][:, :, :, cols]
    kernel = np.ones(9) / 9.0  # soften the blocks
    image = np.apply_along_axis(lambda v: np.convolve(v, kernel, "same"), 3, image)
    image = np.apply_along_axis(lambda v: np.convolve(v, kernel, "same"), 2, image)
    for k in range(n):
        for _ in range(int(rng.integers(2, 6))):
            y, x = int(rng.integers(0, h)), int(rng.integers(0, w))
            r = int(rng.integers(h // 16 + 1, h // 4 + 2))
            yy, xx = np.ogrid[:h, :w]
            mask = (yy - y) ** 2 + (xx - x) ** 2 < r * r
            image[k][:, mask] = rng.random((c, 1))
    return np.clip(image + rng.normal(0, 0.02, size=image.shape), 0.0, 1.0)


def _sample(
    dist: str, shape: list[int], rng: np.random.Generator, layout: str = "NCHW"
) -> np.ndarray:
    if layout == "NHWC" and len(shape) == 4:  # TensorFlow's layout: drawn as NCHW, transposed
        n, h, w, c = shape
        return np.ascontiguousarray(_sample(dist, [n, c, h, w], rng).transpose(0, 2, 3, 1))
    if dist == "page-imagenet":  # a text page normalised like ImageNet (PP-OCR detection)
        mean = np.array([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1)
        std = np.array([0.229, 0.224, 0.225]).reshape(1, 3, 1, 1)
        return ((_text_page(shape, rng) - mean) / std).astype(np.float32)
    if dist == "page-pm1":  # a text line in [-1, 1] (PP-OCR recognition and direction)
        return (2.0 * _text_page(shape, rng) - 1.0).astype(np.float32)
    if dist == "blobs":
        return _blobs(shape, rng).astype(np.float32)
    if dist == "blobs-pm1":  # the same images in [-1, 1] (MediaPipe's face and pose detectors)
        return (2.0 * _blobs(shape, rng) - 1.0).astype(np.float32)
    if dist == "caffe" and len(shape) == 4 and shape[1] == 3:
        # Keras' "caffe" preprocessing (ResNet50): RGB pixels 0..255 -> BGR minus channel means
        bgr_mean = np.array([103.939, 116.779, 123.68]).reshape(1, 3, 1, 1)
        return (255.0 * rng.random(shape)[:, ::-1] - bgr_mean).astype(np.float32)
    if dist == IMAGENET and len(shape) == 4 and shape[1] == 3:
        mean = np.array([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1)
        std = np.array([0.229, 0.224, 0.225]).reshape(1, 3, 1, 1)
        return ((rng.random(shape) - mean) / std).astype(np.float32)
    if dist == "pm1":  # uniform [-1, 1]: PaddleOCR's (x/255 - 0.5)/0.5 normalisation
        return (2.0 * rng.random(shape) - 1.0).astype(np.float32)
    if dist == "pixels255":
        return rng.integers(0, 256, size=shape).astype(np.float32)
    if dist == "audio":  # speech-like: harmonics of a random pitch with an envelope, plus noise
        samples = shape[-1]
        t = np.arange(samples) / 16000.0
        f0 = rng.uniform(90, 300)
        x = sum(np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 6.28)) / h for h in range(1, 8))
        env = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(2, 6) * t + rng.uniform(0, 6.28))
        x = 0.3 * x * env + 0.02 * rng.normal(size=samples)
        return np.broadcast_to(np.clip(x, -1, 1), shape).astype(np.float32)
    return rng.random(shape).astype(np.float32)  # "unit": uniform [0, 1] (e.g. OCR grey levels)


def input_specs(model: dict, path: Path) -> list[tuple[str, list, list[int], str]]:
    """(name, declared shape, static shape, element type) of every graph input."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return [
        (i.name, list(i.shape), _static_shape(model, i.name, list(i.shape)), i.type)
        for i in session.get_inputs()
    ]


def make_feeds(
    model: dict, specs, count: int, seed: int, concat: bool = False
) -> dict[str, np.ndarray]:
    """`count` samples of every input, stacked on a new leading axis (held-out inputs), or with
    `concat` joined along the input's own first (batch) axis, as akidac's --samples wants."""
    rng = np.random.default_rng(seed)
    fill = model.get("fill", {})
    feeds: dict[str, list] = {name: [] for name, *_ in specs}
    for _ in range(count):
        for name, _, shape, dtype in specs:
            np_type = np.int64 if "int64" in dtype else np.float32
            if name in fill:
                feeds[name].append(np.full(shape, fill[name], dtype=np_type))
            else:
                layout = model.get("layout", "NCHW")
                feeds[name].append(_sample(model["dist"], shape, rng, layout).astype(np_type))
    join = {
        name: np.concatenate if concat and arrays[0].ndim else np.stack
        for name, arrays in feeds.items()
    }
    return {name: join[name](arrays) for name, arrays in feeds.items()}


# ----------------------------------------------------------------------------- measurement


def sqnr_db(ref: np.ndarray, got: np.ndarray) -> float:
    ref = ref.astype(np.float64)
    noise = float(np.sum((ref - got.astype(np.float64)) ** 2))
    signal = float(np.sum(ref**2))
    if not math.isfinite(noise) or not math.isfinite(signal):
        return -200.0  # an infinite or undefined error: as far from the reference as it gets
    if noise == 0.0:
        return 200.0
    if signal == 0.0:
        return -200.0
    return min(200.0, 10.0 * math.log10(signal / noise))


def quantize_inputs_8bit(feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every float input of more than one value rounded to 256 levels over its own [min, max]:
    the least error any 8-bit input border can have (akidac's calibrated border has more)."""
    out = {}
    for name, x in feed.items():
        if not np.issubdtype(x.dtype, np.floating) or x.size <= 1:
            out[name] = x
            continue
        low, high = float(x.min()), float(x.max())
        step = (high - low) / 255.0 or 1.0
        out[name] = (np.rint((x - low) / step) * step + low).astype(x.dtype)
    return out


class _CalibrationReader:
    """onnxruntime's calibration reader over an npz of samples joined along the batch axis."""

    def __init__(self, calib_path: str, names: list[str], batch: dict[str, int]) -> None:
        data = np.load(calib_path)
        arrays = {n: data[n] for n in names}
        count = min(len(a) // max(batch[n], 1) for n, a in arrays.items())

        def sample(name: str, k: int) -> np.ndarray:
            b = batch[name]  # 0 for a 0-d input: one value per sample
            return np.asarray(arrays[name][k]) if b == 0 else arrays[name][k * b : (k + 1) * b]

        self.feeds = iter([{n: sample(n, k) for n in arrays} for k in range(count)])

    def get_next(self):
        return next(self.feeds, None)


def ort_int8_session(float_path: str, calib_path: str, options, names, batch):
    """The float model quantized the standard way, by onnxruntime's `quantize_static` (QDQ,
    int8 per-channel weights, asymmetric int8 activations, min-max calibration on the samples
    akidac calibrates on): the reference for what 8-bit post-training quantization gives.
    Models below opset 13 are converted first (per-channel DequantizeLinear needs 13). Softmax
    stays in float, as it does in akidac's hybrid model: quantized to int8 with one scale, the
    probabilities of a 1000-class output (about 1/1000 each) round to zero and the figure
    (about 0 dB) would measure that, not the network."""
    import logging
    import tempfile

    import onnx
    import onnxruntime as ort
    from onnx import version_converter
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    logging.getLogger().setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as folder:
        src, dst = Path(folder) / "float.onnx", Path(folder) / "int8.onnx"
        model = onnx.load(float_path)
        opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
        if opset < 13:
            model = version_converter.convert_version(model, 13)
        onnx.save(model, src)
        quantize_static(
            str(src),
            str(dst),
            _CalibrationReader(calib_path, names, batch),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=[n.name for n in model.graph.node if n.op_type == "Softmax"],
        )
        return ort.InferenceSession(str(dst), options, providers=["CPUExecutionProvider"])


def evaluate(float_path: str, hybrid_path: str, feeds_path: str, calib_path: str = "") -> dict:
    """Run in a subprocess: fidelity and timing of the hybrid model against the float model."""
    import onnxruntime as ort

    import akidac
    from akidac.metrics import compare_outputs

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    ref_session = ort.InferenceSession(float_path, options, providers=["CPUExecutionProvider"])
    note = None
    try:
        hybrid = akidac.HybridSession(hybrid_path, sess_options=options)
    except Exception as error:  # noted, then retried as `akidac run` loads it (no options)
        note = f"loads only without sess_options: {type(error).__name__}: {error}"
        note = note.splitlines()[0][:300]
        hybrid = akidac.HybridSession(hybrid_path)
    data = np.load(feeds_path)
    names = [i.name for i in ref_session.get_inputs()]
    count = len(data[names[0]])
    samples = [{n: np.asarray(data[n][k]) for n in names} for k in range(count)]
    out_names = [o.name for o in ref_session.get_outputs()]
    sqnrs, agree, classified, floors, int8 = [], 0, 0, [], []
    per_output: dict[str, float] = {}
    int8_session, int8_note = None, None
    if calib_path:
        batch = {
            n: int(np.asarray(samples[0][n]).shape[0]) if np.asarray(samples[0][n]).ndim else 0
            for n in names
        }
        try:
            int8_session = ort_int8_session(float_path, calib_path, options, names, batch)
        except Exception as error:  # a figure script reports and goes on
            int8_note = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
    refs: dict[str, list] = {name: [] for name in out_names}
    gots: dict[str, list] = {name: [] for name in out_names}
    int8_gots: dict[str, list] = {name: [] for name in out_names}
    floor_gots: dict[str, list] = {name: [] for name in out_names}
    for feed in samples:
        ref = ref_session.run(None, feed)
        if int8_session is not None:
            for name, q in zip(out_names, int8_session.run(None, feed), strict=True):
                int8_gots[name].append(q)
        # the float model's own sensitivity: its output when only its input is 8-bit
        for name, q in zip(
            out_names, ref_session.run(None, quantize_inputs_8bit(feed)), strict=True
        ):
            floor_gots[name].append(q)
        got = hybrid.run(out_names, feed)
        for name, r, g in zip(out_names, ref, got, strict=True):
            refs[name].append(r)
            gots[name].append(np.asarray(g))
            if r.ndim == 2 and r.shape[1] > 1 and np.issubdtype(r.dtype, np.floating):
                classified += r.shape[0]
                agree += int(np.sum(np.argmax(r, 1) == np.argmax(np.asarray(g), 1)))

    def figure(name: str, results: list) -> float:
        """akidac's own definition (`akidac.metrics`): the minimum over samples, an output of
        one value per sample measured over the samples joined; non-float outputs compared as
        they are."""
        if not np.issubdtype(np.asarray(refs[name][0]).dtype, np.floating):
            return min(sqnr_db(r, q) for r, q in zip(refs[name], results, strict=True))
        return float(compare_outputs(refs[name], results)["sqnr_db"])

    for name in out_names:
        per_output[name] = figure(name, gots[name])
        sqnrs.append(per_output[name])
        floors.append(figure(name, floor_gots[name]))
        if int8_session is not None:
            int8.append(figure(name, int8_gots[name]))
    # timing: interleaved, median after one warm-up of each
    feed = samples[0]
    hybrid_ms, float_ms = [], []
    rounds = TIMED_ROUNDS
    for k in range(rounds + 1):
        t0 = time.perf_counter()
        hybrid.run(out_names, feed)
        t1 = time.perf_counter()
        ref_session.run(None, feed)
        t2 = time.perf_counter()
        if k:
            hybrid_ms.append((t1 - t0) * 1e3)
            float_ms.append((t2 - t1) * 1e3)
        if k == 0 and t1 - t0 > 5.0:
            rounds = 2  # a slow hardware model: fewer rounds keep the whole run short
        if k >= rounds:
            break
    return {
        "sqnr_db": min(sqnrs) if sqnrs else None,
        "floor_db": min(floors) if floors else None,
        "ort_int8_db": min(int8) if int8 else None,
        "ort_int8_note": int8_note,
        "sqnr_db_per_output": per_output,
        "top1": agree / classified if classified else None,
        "hybrid_ms": statistics.median(hybrid_ms),
        "float_ms": statistics.median(float_ms),
        "run_note": note,
    }


def _error_line(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if line.startswith(("error", "internal error")):
            return line
    return lines[-1] if lines else ""


def _get(obj, *keys):
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _hardware_passes(report: dict):
    """Hardware passes, when the report has them (a newer schema may add them)."""
    summary = report.get("summary") or {}
    for key in ("hardware_passes", "passes", "hw_passes"):
        if isinstance(summary.get(key), int):
            return summary[key]
    regions = report.get("regions") or []
    counts = [r.get("passes", r.get("hardware_passes")) for r in regions if isinstance(r, dict)]
    if regions and all(isinstance(c, int) for c in counts):
        return sum(counts)
    return None


def run_model(model: dict, cache: Path, args) -> dict:
    name = model["name"]
    row: dict = {"model": name, "source": model["source"]}
    path = cache / "models" / f"{name}.onnx"
    work = cache / "work" / name
    work.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        row.update(compiled="export failed", error=model.get("export_error", "not exported"))
        return row
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    row["nodes"] = sum(1 for n in proto.graph.node if n.op_type != "Constant")
    del proto
    specs = input_specs(model, path)
    hybrid, report_path = work / "hybrid.onnx", work / "report.json"
    for stale in (hybrid, report_path):
        stale.unlink(missing_ok=True)
    command = [str(AKIDAC), "compile", str(path), "-o", str(hybrid)]
    command += ["--report-json", str(report_path)]
    for input_name, declared, shape, _ in specs:
        if declared and _is_dynamic(declared):
            command += ["--input-shape", f"{input_name}={'x'.join(map(str, shape))}"]
    if not args.no_samples:
        calib = work / "calib.npz"
        np.savez(calib, **make_feeds(model, specs, CALIBRATION, seed=1, concat=True))
        command += ["--samples", str(calib)]
    if args.device:
        command += ["--device", args.device]
    command += args.akidac_arg
    row["command"] = " ".join(command)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout)
        code, stderr = proc.returncode, proc.stderr
    except subprocess.TimeoutExpired:
        code, stderr = "timeout", f"timed out after {args.timeout} s"
    row["compile_s"] = time.perf_counter() - t0
    row["compiled"] = code
    (work / "compile.stderr").write_text(stderr)
    if code != 0:
        row["error"] = _error_line(stderr)
    if report_path.exists():
        report = json.loads(report_path.read_text())
        row["akida_nodes_share"] = _get(report, "shares", "nodes", "akida")
        row["akida_macs_share"] = _get(report, "shares", "macs", "akida")
        row["regions"] = _get(report, "summary", "regions")
        row["hw_passes"] = _hardware_passes(report)
        row["transfer_bytes"] = _get(report, "summary", "transfer_bytes")
        row["nodes"] = _get(report, "summary", "nodes_total") or row["nodes"]
        reasons: dict[str, int] = {}
        for node in report.get("nodes") or []:
            for reason in node.get("reasons") or []:
                code_ = reason.get("code")
                if code_ and code_ != "AK-FOLDED":
                    reasons[code_] = reasons.get(code_, 0) + 1
        row["cpu_reasons"] = dict(sorted(reasons.items(), key=lambda kv: -kv[1]))
    if code != 0 or not hybrid.exists():
        return row
    feeds = work / "heldout.npz"
    np.savez(feeds, **make_feeds(model, specs, HELD_OUT, seed=1234))
    evaluate_cmd = [sys.executable, str(Path(__file__).resolve()), "--_evaluate"]
    evaluate_cmd += [str(path), str(hybrid), str(feeds)]
    evaluate_cmd += [str(work / "calib.npz")] if not args.no_samples else []
    try:
        proc = subprocess.run(evaluate_cmd, capture_output=True, text=True, timeout=args.timeout)
        if proc.returncode == 0:
            row.update(json.loads(proc.stdout.strip().splitlines()[-1]))
        else:
            row["run_error"] = f"exit {proc.returncode}: {_error_line(proc.stderr)}"
    except subprocess.TimeoutExpired:
        row["run_error"] = f"hybrid run timed out after {args.timeout} s"
    return row


# ----------------------------------------------------------------------------- table


COLUMNS = [
    ("model", "model"),
    ("source", "source"),
    ("nodes", "nodes"),
    ("compiled", "compiled"),
    ("akida_nodes_share", "Akida nodes"),
    ("akida_macs_share", "Akida MACs"),
    ("regions", "regions"),
    ("hw_passes", "HW passes"),
    ("transfer_bytes", "CPU<->Akida B"),
    ("sqnr_db", "SQNR dB min"),
    ("floor_db", "8-bit-input floor dB"),
    ("ort_int8_db", "ORT int8 dB"),
    ("top1", "top-1"),
    ("compile_s", "compile s"),
    ("hybrid_ms", "hybrid ms"),
    ("float_ms", "ORT ms"),
    ("ratio", "ratio"),
]


def _cell(key: str, row: dict) -> str:
    if key == "ratio":
        h, f = row.get("hybrid_ms"), row.get("float_ms")
        return f"{h / f:.1f}x" if isinstance(h, float) and isinstance(f, float) and f else "-"
    value = row.get(key)
    if value is None:
        return "-"
    if key in ("akida_nodes_share", "akida_macs_share", "top1"):
        return f"{value:.0%}" if isinstance(value, (int, float)) else str(value)
    if key in ("sqnr_db", "floor_db", "ort_int8_db"):
        return f"{value:.1f}"
    if key == "compile_s":
        return f"{value:.1f}"
    if key in ("hybrid_ms", "float_ms"):
        return f"{value:.1f}" if value < 100 else f"{value:.0f}"
    if key == "transfer_bytes":
        return f"{value:,}"
    return str(value)


def print_table(rows: list[dict], markdown: bool) -> None:
    header = [title for _, title in COLUMNS]
    cells = [[_cell(key, row) for key, _ in COLUMNS] for row in rows]
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join(" --- " for _ in header) + "|")
        for line in cells:
            print("| " + " | ".join(line) + " |")
    else:
        widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
        print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
        for line in cells:
            print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)))
    problems = [r for r in rows if r.get("error") or r.get("run_error") or r.get("run_note")]
    if problems:
        print()
        print("failures (exit code: first error line of stderr):")
        for row in problems:
            if row.get("error"):
                print(f"- {row['model']}: {row['compiled']}: {row['error']}")
            if row.get("run_error"):
                print(f"- {row['model']}: hybrid run failed: {row['run_error']}")
            if row.get("run_note"):
                print(f"- {row['model']}: hybrid session {row['run_note']}")
    print()
    print("why nodes stay on the CPU (reason code: nodes, the most frequent first):")
    for row in rows:
        reasons = row.get("cpu_reasons")
        if reasons:
            top = ", ".join(f"{code} {n}" for code, n in list(reasons.items())[:4])
            print(f"- {row['model']}: {top}")


def _akidac_version() -> str:
    """The commit of the akidac checkout (with '+dirty' for local changes), for the record."""
    try:
        git = ["git", "-C", str(ROOT)]
        head = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        )
        dirty = subprocess.run([*git, "status", "--porcelain", "akidac"], capture_output=True)
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except OSError:
        return "?"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", help="comma-separated subset of the models (see --list)")
    parser.add_argument("--list", action="store_true", help="list the models and exit")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--json", type=Path, help="also save the rows to this JSON file")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="cache folder")
    parser.add_argument("--device", help="akidac --device (default: akidac's default)")
    parser.add_argument("--timeout", type=float, default=600, help="per compile / run, seconds")
    parser.add_argument(
        "--no-samples", action="store_true", help="no --samples: akidac's random calibration"
    )
    parser.add_argument(
        "--akidac-arg", action="append", default=[], help="extra argument for akidac compile"
    )
    parser.add_argument("--_evaluate", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._evaluate:
        print(json.dumps(evaluate(*args._evaluate)))
        return 0
    if args.list:
        for m in MODELS:
            size = f" {m['size']}" if m.get("size") and m["kind"] != "logmel" else ""
            print(f"{m['name']:30} {m['source']}{size}")
        return 0
    models = MODELS
    if args.models:
        wanted = [n.strip() for n in args.models.split(",") if n.strip()]
        unknown = [n for n in wanted if n not in BY_NAME]
        if unknown:
            parser.error(f"unknown model(s) {', '.join(unknown)}; see --list")
        models = [BY_NAME[n] for n in wanted]
    cache = args.cache.expanduser().resolve()
    failures = ensure_models(cache, models)
    rows = []
    for model in models:
        if model["name"] in failures:
            model = {**model, "export_error": failures[model["name"]]}
        print(f"[{len(rows) + 1}/{len(models)}] {model['name']}", file=sys.stderr, flush=True)
        try:
            rows.append(run_model(model, cache, args))
        except Exception as error:  # a benchmark reports and goes on
            rows.append(
                {
                    "model": model["name"],
                    "source": model["source"],
                    "compiled": "bench error",
                    "error": f"{type(error).__name__}: {error}",
                }
            )
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1, default=str))
    device = args.device or "akidac default (akida2-12n)"
    calib = "akidac's random default" if args.no_samples else f"{CALIBRATION} samples"
    print(
        f"akidac {_akidac_version()}; device {device}; calibration {calib}; "
        f"{HELD_OUT} held-out inputs; cache {cache}"
    )
    print_table(rows, args.markdown)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    sys.exit(main())
