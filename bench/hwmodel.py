"""Benchmark: the hardware model's layer kernels against onnxruntime, side by side.

Each row is one realistic quantized layer (int8 input, input_shift 0 unless the row says
`<<0-3`: shifts of 0 to 3 across the channels; 8-bit weights, 8-bit ReLU output), timed whole in
the hardware model (shift, accumulate, bias, ReLU, requantize) and as the
equivalent accumulation node in onnxruntime: the exact int8 path (ConvInteger / MatMulInteger on
uint8 × uint8) and float32 (Conv / MatMul), on 1 and 2 threads. Ratios are ORT time / hardware
model time, so > 1 means the hardware model is faster; the targets (issue 5) are >= 0.5× ORT
int8 and >= 0.8× ORT float32 on one thread. The hardware model always runs on one thread: its
numba kernels are not parallel and it calls no BLAS, so no thread variable affects it.

The machine may be shared and noisy: the five timings of a layer (hardware model, ORT int8 and
float32 on 1 and 2 threads) are taken in turn, round after round, and each figure is the median
of its rounds, so that a burst of load hits all of them alike.
Run: `python bench/hwmodel.py [--repeat N]`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from akidac.backends.akida.hwmodel import HardwareModel
from akidac.target.layer_record import LayerRecord

RNG = np.random.default_rng(0)
#: onnxruntime's exact int8 path: uint8 activations × uint8 weights. (The faster u8 × s8 kernel
#: saturates intermediate pair sums and miscomputes when uint8 inputs exceed 127.)
INT8_DTYPES = "u8×u8"


@dataclass
class Case:
    """One benchmark layer: its Akida record and input, and its ONNX equivalents."""

    name: str
    record: LayerRecord
    x: np.ndarray
    int8_model: onnx.ModelProto
    int8_op: str
    float_model: onnx.ModelProto
    float_op: str


def _relu_record(
    name: str, layer_type: str, weights: np.ndarray, params: dict[str, int | str], shifts: int
) -> LayerRecord:
    """A realistic 8-bit ReLU layer: shifts 0, small bias, output scale/shift into int8 range."""
    filters = weights.shape[-1] if layer_type != "DepthwiseConv2D" else weights.shape[2]
    per_filter = {
        "bias": RNG.integers(-64, 64, filters).astype(np.int8),
        "bias_shift": np.full(filters, 4, np.uint8),
        "max_value": np.full(filters, 127, np.uint8),
        "max_value_shift": np.full(filters, 31, np.uint8),
        "output_scales": RNG.integers(64, 256, filters).astype(np.uint8),
        "output_shift": np.full(filters, -18, np.int8),
    }
    return LayerRecord(
        name=name,
        layer_type=layer_type,
        inbounds=[],
        params={
            "activation": "ReLU",
            "buffer_bits": 28,
            "post_op_buffer_bits": 32,
            "output_bits": 8,
            "weights_bits": 8,
            **params,
        },
        variables={
            "weights": weights,
            "input_shift": np.zeros(shifts, np.uint8),
            **per_filter,
        },
    )


def _model(
    op: str,
    x_type: int,
    x_shape: list[int],
    weights: np.ndarray,
    y_type: int,
    **attributes: object,
) -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node(op, ["x", "w"], ["y"], **attributes)],
        "bench",
        [helper.make_tensor_value_info("x", x_type, x_shape)],
        [helper.make_tensor_value_info("y", y_type, None)],
        [numpy_helper.from_array(weights, "w")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def conv_case(name: str, size: int, cin: int, cout: int, kernel: int, max_shift: int = 0) -> Case:
    """A Same-padded stride-1 convolution; with `max_shift`, input shifts of 0 to max_shift
    across the channels, as a quantizer gives a layer whose input scales differ (the shifted
    values no longer fit a byte; the ORT models are unchanged)."""
    weights = RNG.integers(-128, 128, (kernel, kernel, cin, cout)).astype(np.int8)
    record = _relu_record(
        name,
        "Conv2D",
        weights,
        {
            "kernel_size": kernel,
            "kernel_stride": 1,
            "padding": "Same",
            "filters": cout,
            "pool_type": "NoPooling",
        },
        cin,
    )
    record.variables["input_shift"] = (np.arange(cin) % (max_shift + 1)).astype(np.uint8)
    x = RNG.integers(-128, 128, (1, size, size, cin)).astype(np.int8)
    onnx_weights = weights.transpose(3, 2, 0, 1)
    pads = [kernel // 2] * 4
    shape = [1, cin, size, size]
    int8 = _model(
        "ConvInteger",
        TensorProto.UINT8,
        shape,
        (onnx_weights.astype(np.int16) + 128).astype(np.uint8),
        TensorProto.INT32,
        pads=pads,
    )
    f32 = _model(
        "Conv",
        TensorProto.FLOAT,
        shape,
        onnx_weights.astype(np.float32),
        TensorProto.FLOAT,
        pads=pads,
    )
    return Case(name, record, x, int8, "ConvInteger", f32, "Conv")


def depthwise_case(name: str, size: int, channels: int) -> Case:
    weights = RNG.integers(-128, 128, (3, 3, channels, 1)).astype(np.int8)
    record = _relu_record(
        name,
        "DepthwiseConv2D",
        weights,
        {"kernel_size": 3, "kernel_stride": 1, "padding": "Same", "pool_type": "NoPooling"},
        channels,
    )
    x = RNG.integers(-128, 128, (1, size, size, channels)).astype(np.int8)
    onnx_weights = weights.transpose(2, 3, 0, 1)
    shape = [1, channels, size, size]
    attributes = {"pads": [1, 1, 1, 1], "group": channels}
    int8 = _model(
        "ConvInteger",
        TensorProto.UINT8,
        shape,
        (onnx_weights.astype(np.int16) + 128).astype(np.uint8),
        TensorProto.INT32,
        **attributes,
    )
    f32 = _model(
        "Conv",
        TensorProto.FLOAT,
        shape,
        onnx_weights.astype(np.float32),
        TensorProto.FLOAT,
        **attributes,
    )
    return Case(name, record, x, int8, "ConvInteger (group=C)", f32, "Conv (group=C)")


def dense_case(name: str, inputs: int, units: int) -> Case:
    weights = RNG.integers(-128, 128, (inputs, units)).astype(np.int8)
    record = _relu_record(name, "Dense1D", weights, {"units": units}, inputs)
    record.variables["output_shift"] = np.full(units, -16, np.int8)
    x = RNG.integers(-128, 128, (1, 1, 1, inputs)).astype(np.int8)
    int8 = _model(
        "MatMulInteger",
        TensorProto.UINT8,
        [1, inputs],
        (weights.astype(np.int16) + 128).astype(np.uint8),
        TensorProto.INT32,
    )
    f32 = _model(
        "MatMul", TensorProto.FLOAT, [1, inputs], weights.astype(np.float32), TensorProto.FLOAT
    )
    return Case(name, record, x, int8, "MatMulInteger", f32, "MatMul")


#: the issue's targets: hardware model speed / ORT speed on one thread, at least.
TARGET_INT8 = 0.5
TARGET_FLOAT32 = 0.8


def interleaved_median_ms(
    functions: dict[str, Callable[[], object]], repeat: int
) -> dict[str, float]:
    """Median wall time in ms of each function, timed in turn, round after round (after three
    warm-up rounds), so that load on a shared machine falls on all of them alike."""
    for _ in range(3):
        for function in functions.values():
            function()
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeat):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: 1e3 * float(np.median(values)) for name, values in times.items()}


def ort_runner(
    model: onnx.ModelProto, feed: dict[str, np.ndarray], threads: int
) -> Callable[[], object]:
    """A call of an onnxruntime session on `threads` intra-op threads."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    return lambda: session.run(None, feed)


def onnx_input(case: Case, floating: bool) -> np.ndarray:
    """The case input in ONNX layout (NCHW, or (1, E) for dense) and dtype."""
    x = case.x.astype(np.int16)
    x = x.reshape(1, -1) if case.record.layer_type == "Dense1D" else x.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x.astype(np.float32) if floating else (x + 128).astype(np.uint8))


FIRST_RUN_SCRIPT = """
import time
start = time.perf_counter()
import numpy as np
from akidac.backends.akida.hwmodel import HardwareModel
from akidac.target.layer_record import LayerRecord
rng = np.random.default_rng(0)
record = LayerRecord("conv", "Conv2D", [], {
    "activation": "ReLU", "buffer_bits": 28, "post_op_buffer_bits": 32, "output_bits": 8,
    "kernel_size": 3, "kernel_stride": 1, "padding": "Same", "pool_type": "NoPooling"},
    {"weights": rng.integers(-128, 128, (3, 3, 16, 16)).astype(np.int8),
     "input_shift": np.zeros(16, np.uint8), "bias": np.zeros(16, np.int8),
     "bias_shift": np.zeros(16, np.uint8), "max_value": np.full(16, 127, np.uint8),
     "max_value_shift": np.full(16, 31, np.uint8), "output_scales": np.ones(16, np.uint8),
     "output_shift": np.full(16, -8, np.int8)})
HardwareModel([record]).run(rng.integers(-128, 128, (1, 16, 16, 16)).astype(np.int8))
print(time.perf_counter() - start)
"""


def first_inference_seconds() -> float:
    """Import + first inference of a fresh interpreter (the numba cache is warm by then)."""
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    command = [sys.executable, "-c", FIRST_RUN_SCRIPT]
    subprocess.run(command, env=env, check=True, capture_output=True)  # warms the cache
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30, help="timed rounds per layer")
    args = parser.parse_args()
    cases = [
        conv_case("conv 3×3 64→64 @56×56", 56, 64, 64, 3),
        conv_case("conv 3×3 64→64 @56×56 <<0-3", 56, 64, 64, 3, max_shift=3),
        conv_case("conv 3×3 32→32 @8×8 <<0-3", 8, 32, 32, 3, max_shift=3),
        conv_case("conv 1×1 128→128 @28×28", 28, 128, 128, 1),
        depthwise_case("depthwise 3×3 64ch @28×28", 28, 64),
        dense_case("dense 1024→1000", 1024, 1000),
    ]
    header = (
        f"{'layer':<28} {'hwmodel':>8} | {'threads':>7} {'ORT int8':>9} {'ORT f32':>8} "
        f"{'int8/hw':>8} {'f32/hw':>7} {'targets':>8}"
    )
    print(
        f"hardware model: 1 thread; ORT int8 = {INT8_DTYPES}; times in ms (median of "
        f"{args.repeat} interleaved rounds); targets on 1 thread: int8/hw >= {TARGET_INT8}, "
        f"f32/hw >= {TARGET_FLOAT32}"
    )
    print(header)
    print("-" * len(header))
    missed = []
    for case in cases:
        model = HardwareModel([case.record])
        int8_feed = {"x": onnx_input(case, False)}
        float_feed = {"x": onnx_input(case, True)}
        functions: dict[str, Callable[[], object]] = {
            "hw": lambda model=model, case=case: model.run(case.x)
        }
        for threads in (1, 2):
            functions[f"int8/{threads}"] = ort_runner(case.int8_model, int8_feed, threads)
            functions[f"f32/{threads}"] = ort_runner(case.float_model, float_feed, threads)
        medians = interleaved_median_ms(functions, args.repeat)
        hw = medians["hw"]
        for threads in (1, 2):
            int8 = medians[f"int8/{threads}"]
            f32 = medians[f"f32/{threads}"]
            label = case.name if threads == 1 else ""
            hw_text = f"{hw:8.3f}" if threads == 1 else " " * 8
            verdict = ""
            if threads == 1:
                met = int8 / hw >= TARGET_INT8 and f32 / hw >= TARGET_FLOAT32
                verdict = "met" if met else "MISSED"
                if not met:
                    missed.append(case.name)
            print(
                f"{label:<28} {hw_text} | {threads:>7} {int8:9.3f} {f32:8.3f} "
                f"{int8 / hw:8.2f} {f32 / hw:7.2f} {verdict:>8}"
            )
    print("-" * len(header))
    print("ORT ops: " + "; ".join(f"{c.name}: {c.int8_op} / {c.float_op}" for c in cases))
    print("targets missed: " + (", ".join(missed) if missed else "none"))
    seconds = first_inference_seconds()
    print(f"first inference of a fresh process (import + run, warm numba cache): {seconds:.2f} s")


if __name__ == "__main__":
    main()
