"""`make demo`: compile a CNN akidac generates itself, run the hybrid model, print the figures.

It shows the whole path on one small model: where each node runs, the fidelity of the 8-bit
hybrid model against the float model on held-out inputs, and that the hardware model's output
equals the NumPy reference interpreter's, bit for bit, on every Akida program.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from rich.console import Console
from rich.table import Table

from akidac.api import compile_model
from akidac.backends.akida import hwmodel
from akidac.backends.akida.kernels import kernels_compiled_in_this_process
from akidac.ir import reference
from akidac.metrics import compare_outputs
from akidac.models import conv_net
from akidac.passes import CompileOptions
from akidac.runtime.session import HybridSession

CALIBRATION_SAMPLES = 64
HELD_OUT_SAMPLES = 32


def smooth_images(count: int, seed: int) -> np.ndarray:
    """Images with spatial structure (blurred noise), the same distribution for every seed."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((count, 3, 36, 36)).astype(np.float32)
    kernel = np.ones(5, np.float32) / 5
    blurred = np.apply_along_axis(lambda r: np.convolve(r, kernel, "valid"), 2, noise)
    blurred = np.apply_along_axis(lambda r: np.convolve(r, kernel, "valid"), 3, blurred)
    return (blurred * 2.0).astype(np.float32)


def main() -> None:
    console = Console(width=110)
    model = conv_net()
    folder = Path(tempfile.mkdtemp(prefix="akidac-demo-"))
    float_path, hybrid_path = folder / "conv_net.onnx", folder / "conv_net.hybrid.onnx"
    onnx.save(model, float_path)
    calibration = smooth_images(CALIBRATION_SAMPLES, seed=1)
    held_out = smooth_images(HELD_OUT_SAMPLES, seed=2)
    console.print(
        f"[bold]akidac demo[/]: compiling {float_path.name} "
        f"({len(model.graph.node)} nodes) calibrated on {CALIBRATION_SAMPLES} samples"
    )
    start = time.perf_counter()
    result = compile_model(
        float_path,
        hybrid_path,
        options=CompileOptions(samples={"input": calibration}, num_samples=CALIBRATION_SAMPLES),
    )
    compile_seconds = time.perf_counter() - start
    compiled = kernels_compiled_in_this_process()
    if compiled:
        console.print(
            f"(first run: the compile measured fidelity on the hardware model, which compiled "
            f"{compiled} numba kernels; they are cached for later runs)"
        )
    session = HybridSession(hybrid_path)
    float_session = ort.InferenceSession(str(float_path), providers=["CPUExecutionProvider"])
    float_outs, hybrid_outs, exact = [], [], True
    for i in range(HELD_OUT_SAMPLES):
        feed = {"input": held_out[i : i + 1]}
        env = session.run_all(feed)
        (hybrid_out,) = [env[o.name] for o in session.get_outputs()]
        (float_out,) = float_session.run(None, feed)
        float_outs.append(float_out)
        hybrid_outs.append(hybrid_out)
        for _, program, input_name in session.akida_steps():
            x = env[input_name].reshape(1, *program.input.dims)
            hw = hwmodel.run_layers(program.layers, x)
            ref = reference.run_layers(program.layers, x)
            exact &= all(np.array_equal(hw[k], ref[k]) and hw[k].dtype == ref[k].dtype for k in ref)
    summary = result.report["summary"]
    table = Table(
        title="akidac demo: conv_net (3 conv-relu-maxpool blocks, conv, dense head, Softmax)",
        show_header=False,
    )
    table.add_column("what")
    table.add_column("value", justify="right")
    total = summary["nodes_total"]
    table.add_row("device", result.report["device"]["description"])
    table.add_row(
        "nodes on Akida",
        f"{summary['nodes_on_akida']} of {total} ({100 * summary['nodes_on_akida'] / total:.0f}%)",
    )
    cpu_nodes = [n["name"] for n in result.report["nodes"] if n["target"] == "cpu"]
    table.add_row("nodes on CPU", f"{summary['nodes_on_cpu']} ({', '.join(cpu_nodes)})")
    table.add_row("border nodes added (CPU)", str(summary["border_nodes_added"]))
    table.add_row("Akida regions", str(summary["regions"]))
    table.add_row("compile time", f"{compile_seconds:.2f} s")
    table.add_row("hybrid model", f"{hybrid_path} ({hybrid_path.stat().st_size:,} bytes)")
    figures = compare_outputs(float_outs, hybrid_outs)
    table.add_row(
        f"SQNR vs float ({HELD_OUT_SAMPLES} held-out inputs)",
        f"min {figures['sqnr_db']:.1f} dB "
        f"(a constant output: {figures['constant_sqnr_db']:.1f} dB)",
    )
    table.add_row("Pearson vs float", f"min {figures['pearson']:.4f}")
    table.add_row("top-1 agreement", f"{100 * figures['top1_agreement']:.1f}%")
    table.add_row("max abs error vs float", f"{figures['max_abs_error']:.4g}")
    table.add_row(
        "hardware model == reference interpreter",
        "bit-exact on every layer" if exact else "MISMATCH",
    )
    console.print(table)
    # the demo fails unless the output is faithful well beyond what a constant output scores
    if not exact or figures["sqnr_db"] < max(20.0, figures["constant_sqnr_db"] + 10.0):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
