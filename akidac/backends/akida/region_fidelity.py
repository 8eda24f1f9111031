"""The fidelity guard's measurement: how far one Akida region's quantized output is from the
float model, with the region's input taken from the float model (its own error, not the error
it inherits from earlier regions).

For each region, the float values the model computes at the region's input and output on the
calibration samples (recorded by `quantize`) are run through the region's program on the
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
    if quant is not None:
        return (codes.astype(np.float64) - quant.zero_point) * quant.scale
    producer = value.producer
    assert producer is not None
    per_channel = np.asarray(producer.attrs["acc_scale"].array, np.float64)  # type: ignore[union-attr]
    return codes.astype(np.float64) * per_channel


def region_own_sqnr(
    program: Program,
    region_input: Value,
    region_output: Value,
    float_inputs: list[np.ndarray],
    float_outputs: list[np.ndarray],
) -> float:
    """Minimum over samples of the SQNR (dB) of the region's dequantized output against the
    float output, the region reading the float input (quantized at its border)."""
    count = min(GUARD_SAMPLES, len(float_inputs), len(float_outputs))
    if count == 0:
        return float("inf")
    codes = _border_codes(program, region_input, float_inputs, count)
    y = _dequantize(region_output, run_program(program, codes))
    references = [np.asarray(a, np.float64) for a in float_outputs[:count]]
    y = y.reshape(count, -1)
    return min(sqnr_db(ref.reshape(-1), y[i]) for i, ref in enumerate(references))


def _border_codes(
    program: Program, region_input: Value, float_inputs: list[np.ndarray], count: int
):
    scale, zero, dtype = _border_quantization(region_input)
    info = np.iinfo(dtype)
    x = np.concatenate([np.asarray(a, np.float64) for a in float_inputs[:count]])
    with np.errstate(all="ignore"):
        codes = np.clip(np.rint(x / scale) + zero, info.min, info.max).astype(dtype)
    # each calibration sample holds the model's batch (1, or 2 and more for a static batch)
    return codes.reshape(-1, *program.input.dims)


def first_divergent_layer(
    program: Program,
    ops: list[Op],
    region_input: Value,
    float_inputs: list[np.ndarray],
    float_layers: dict[int, list[np.ndarray]],
    threshold: float,
) -> tuple[Op, float] | None:
    """The first layer of the region (program order) whose output, dequantized, scores below
    `threshold` dB against the float model (minimum over the samples both have), with its
    figure; None when every layer holds (or nothing was observed)."""
    count = min([len(float_inputs)] + [len(v) for v in float_layers.values()])
    if count == 0:
        return None
    codes = _border_codes(program, region_input, float_inputs, count)
    outputs = list(HardwareModel(program.layers).run_layers(codes).values())
    layer_outputs = outputs[len(outputs) - len(ops) :]  # after the InputData record, if any
    for op, codes in zip(ops, layer_outputs, strict=True):
        references = float_layers.get(id(op))
        if not references:
            continue
        y = _dequantize(op.outputs[0], codes).reshape(count, -1)
        figure = min(
            sqnr_db(np.asarray(ref, np.float64).reshape(-1), y[i])
            for i, ref in enumerate(references[:count])
        )
        if figure < threshold:
            return op, figure
    return None
