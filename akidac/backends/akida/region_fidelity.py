"""The fidelity guard's measurement: how far one Akida region's quantized output is from the
float model, with the region's input taken from the float model (its own error, not the error
it inherits from earlier regions).

For each region, the float values the model computes at the region's input and output on the
first calibration samples (computed again, one sample at a time, by
`akidac.passes.observation.Observation.replay`) are run through the region's program on the
hardware model: the input quantized exactly as the hybrid model's border QuantizeLinear does
(round half to even, then saturate), the output dequantized as its DequantizeLinear does. The
figure is the SQNR (dB) per sample, its minimum over the samples (`akidac.metrics.sqnr_db`).
"""

from __future__ import annotations

import numpy as np

from akidac.backends.akida.executor import run_program
from akidac.backends.akida.hwmodel import HardwareModel
from akidac.backends.akida.program import Program
from akidac.ir.graph import Op, Value
from akidac.metrics import sqnr_db

#: calibration samples the guard measures on (the first ones): enough for a minimum over
#: samples to be meaningful, few enough to cost little next to calibration itself.
GUARD_SAMPLES = 8
#: calibration samples the guard measures every layer of a failing region on, to find the
#: layer where it first drifts.
LAYER_GUARD_SAMPLES = 4


def _border_quantization(value: Value) -> tuple[float, int, np.dtype]:
    """Scale, zero point and integer type of the region input's QuantizeLinear."""
    producer = value.producer
    if producer is None or producer.kind != "onnx.QuantizeLinear":
        raise ValueError(f"region input '{value.name}' is not produced by a QuantizeLinear")
    scale = float(np.asarray(producer.inputs[1].const).reshape(()))  # type: ignore[union-attr]
    zero = np.asarray(producer.inputs[2].const)  # type: ignore[union-attr]
    return scale, int(zero.reshape(())), zero.dtype


def _dequantize(value: Value, codes: np.ndarray) -> np.ndarray:
    """What the region output's DequantizeLinear (and per-channel Mul) restores."""
    quant = value.type.quant
    if quant is not None:  # per channel (the last axis) when the layer wrote channel scales
        return (codes.astype(np.float64) - quant.zero_point) * quant.channel_scales()
    producer = value.producer
    assert producer is not None
    per_channel = np.asarray(producer.attrs["acc_scale"].array, np.float64)  # type: ignore[union-attr]
    return codes.astype(np.float64) * per_channel


def region_sample_sqnr(
    program: Program,
    region_input: Value,
    region_output: Value,
    float_input: np.ndarray,
    float_output: np.ndarray,
) -> float:
    """The SQNR (dB) of the region's dequantized output against the float output on one
    calibration sample, the region reading the float input (quantized at its border)."""
    codes = _border_codes(program, region_input, float_input)
    y = _dequantize(region_output, run_program(program, codes))
    return sqnr_db(np.asarray(float_output, np.float64).reshape(-1), y.reshape(-1))


def _border_codes(program: Program, region_input: Value, float_input: np.ndarray) -> np.ndarray:
    scale, zero, dtype = _border_quantization(region_input)
    info = np.iinfo(dtype)
    x = np.asarray(float_input, np.float64)
    with np.errstate(all="ignore"):
        codes = np.clip(np.rint(x / scale) + zero, info.min, info.max).astype(dtype)
    # each calibration sample holds the model's batch (1, or 2 and more for a static batch)
    return codes.reshape(-1, *program.input.dims)


def layer_sample_sqnrs(
    program: Program,
    ops: list[Op],
    region_input: Value,
    float_input: np.ndarray,
    float_layers: dict[int, np.ndarray],
) -> dict[int, float]:
    """Per layer of the region (`id(op)` → dB), the SQNR of its dequantized output against the
    float model on one calibration sample, the region reading the float input."""
    codes = _border_codes(program, region_input, float_input)
    outputs = list(HardwareModel(program.layers).run_layers(codes).values())
    layer_outputs = outputs[len(outputs) - len(ops) :]  # after the InputData record, if any
    figures = {}
    for op, layer_codes in zip(ops, layer_outputs, strict=True):
        reference = float_layers.get(id(op))
        if reference is None:
            continue
        y = _dequantize(op.outputs[0], layer_codes).reshape(-1)
        figures[id(op)] = sqnr_db(np.asarray(reference, np.float64).reshape(-1), y)
    return figures


def first_divergent_layer(
    ops: list[Op], figures: dict[int, float], threshold: float
) -> tuple[Op, float] | None:
    """The first layer of the region (program order) whose figure (the minimum over samples of
    `layer_sample_sqnrs`) is below `threshold` dB, with that figure; None when every layer
    holds (or nothing was measured)."""
    for op in ops:
        figure = figures.get(id(op))
        if figure is not None and figure < threshold:
            return op, figure
    return None
