"""Peak memory of `akidac compile`, each case in its own process (its maximum resident set size,
the figure `/usr/bin/time -v` prints), against the model's largest tensor.

Cases: a single 3→16 3×3 Conv on a 1000×1000 input (built here), and the torchvision ResNet-50
export at 224×224 when it is cached (`bench/realworld_export.py` writes it; CI never has it). The
baseline is a process that only imports akidac and onnxruntime: what is left, peak − baseline,
is what the compile itself took, given as a multiple of the largest tensor of the model
(activations from ONNX shape inference, initializers included) and of the model's weights (a
model with many layers holds its weights several times over: the loaded model, the IR, the
float session that calibrates and the one that measures fidelity).

`--tree PATH` compiles with the akidac of another checkout (a `git worktree` of an older commit)
to give before/after figures; the compile runs the `akidac compile` command line with its
default options.

    python bench/memory.py [--tree /tmp/old] [--case conv1000|resnet50]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

RESNET50 = Path.home() / ".cache/akidac-realworld/models/resnet50.onnx"
REPO = Path(__file__).resolve().parents[1]

_COMPILE = "import sys; from akidac.cli import main; sys.argv = ['akidac', *sys.argv[1:]]; main()"
_BASELINE = "import onnxruntime, numba, akidac.api"


def conv1000(folder: Path) -> Path:
    """One 3→16 3×3 Conv (pads 1) and a ReLU on a 1×3×1000×1000 input."""
    rng = np.random.default_rng(0)
    weights = numpy_helper.from_array(
        (rng.standard_normal((16, 3, 3, 3)) * 0.2).astype(np.float32), "w"
    )
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w"], ["c"], "conv", pads=[1] * 4),
            helper.make_node("Relu", ["c"], ["y"], "relu"),
        ],
        "conv1000",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 1000, 1000])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, 1000, 1000])],
        [weights],
    )
    path = folder / "conv1000.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def largest_tensor(path: Path) -> tuple[str, int]:
    """The name and float32 bytes of the model's largest tensor (activation or initializer)."""
    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    graph = model.graph
    best = ("", 0)
    for info in [*graph.input, *graph.value_info, *graph.output]:
        dims = info.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") for d in dims):
            size = 4 * int(np.prod([d.dim_value for d in dims]))
            best = max(best, (info.name, size), key=lambda item: item[1])
    for tensor in graph.initializer:
        size = 4 * int(np.prod(tensor.dims))
        best = max(best, (tensor.name, size), key=lambda item: item[1])
    return best


def weight_bytes(path: Path) -> int:
    """float32 bytes of the model's initializers: a floor for any compile, which holds the
    weights in the loaded model, the IR and the float session at least."""
    model = onnx.load(str(path))
    return sum(4 * int(np.prod(t.dims)) for t in model.graph.initializer)


def peak_rss(code: str, args: list[str], tree: Path) -> tuple[int, int, float]:
    """Run `python -c code args` with `tree` first on sys.path; (exit code, max RSS bytes, s)."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
    if process.returncode != 0:
        last = stderr.strip().splitlines()[-1:] or [""]
        print(f"  exit {process.returncode}: {last[0][:200]}", file=sys.stderr)
    return process.returncode, usage.ru_maxrss * 1024, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=REPO, help="checkout whose akidac compiles")
    parser.add_argument("--case", action="append", choices=["conv1000", "resnet50"])
    options = parser.parse_args()
    cases = options.case or ["conv1000", "resnet50"]
    mib = 1 << 20
    with tempfile.TemporaryDirectory() as folder:
        models = {"conv1000": conv1000(Path(folder))}
        if RESNET50.exists():
            models["resnet50"] = RESNET50
        _, baseline, _ = peak_rss(_BASELINE, [], options.tree)
        print(f"akidac from {options.tree}; baseline (imports only) {baseline / mib:.0f} MiB")
        print(
            f"{'case':<10} {'exit':>4} {'time s':>7} {'peak MiB':>9} {'largest tensor':>24} "
            f"{'peak/largest':>12} {'(peak-base)/largest':>20} {'weights MiB':>11} "
            f"{'(peak-base)/weights':>19}"
        )
        for case in cases:
            if case not in models:
                print(f"{case:<10} skipped: {RESNET50} is not cached")
                continue
            name, size = largest_tensor(models[case])
            weights = weight_bytes(models[case])
            out = Path(folder) / f"{case}.hybrid.onnx"
            code, peak, seconds = peak_rss(
                _COMPILE, ["compile", str(models[case]), "-o", str(out)], options.tree
            )
            tensor = f"{name[:12]} {size / mib:.1f} MiB"
            print(
                f"{case:<10} {code:>4} {seconds:>7.1f} {peak / mib:>9.0f} {tensor:>24} "
                f"{peak / size:>12.1f} {(peak - baseline) / size:>20.1f} "
                f"{weights / mib:>11.1f} {(peak - baseline) / weights:>19.1f}"
            )


if __name__ == "__main__":
    main()
