"""Where accuracy is lost: every value the hybrid model and the float model both compute,
compared layer by layer in topological order (`akidac bisect`).

For each Akida layer the hardware model's integers are dequantized at the layer's output and
compared with the float model's value at the same point (the output of the last ONNX node the
layer was fused from), once as the hybrid model runs (`sqnr_db`: the error accumulated up to
there, across Akida/CPU borders) and once with the layer's own input taken from the float model
and quantized as the layer reads it (`own_sqnr_db`: the error the layer adds by itself). CPU
nodes are compared as the hybrid model runs them (their own error is zero: they run in float).
The first layer whose accumulated SQNR falls below the threshold is `first_divergent`, and the
suggestions name what to try for it.

SQNR weighs values by their energy, so a layer whose output channels span very different
ranges scores well although its small channels keep a code or two (quantize gives a small
channel a finer power-of-two scale, but at most 256× the tensor's, and only where its readers
can take it: an outlier channel 10^4× the others, or one read by an Add, stays coarse): the
next layer, which may weigh those channels as much as the big one, is then where the SQNR
falls. Each Akida layer therefore also reports
`channel_sqnr_db`, the worst SQNR of its output channels (maps of at least 16 pixels; channels
with at least 1/1000 of the median channel energy: dead channels do not count), and a layer
counts as divergent when either figure is below the threshold.

The float values come from onnxruntime running the float model with every node output exposed;
the hybrid values from `HybridSession.run_all` (every value it computes, AkidaOp inputs
included) and the hardware model run layer by layer on each AkidaOp's input. The JSON form is
versioned (`SCHEMA_VERSION`) and documented in docs/bisect.md.

It sits beside `akidac.precision`, below the API and above the runtime: it needs the compiled
IR (to name each layer and find its float counterpart) as well as `HybridSession`, so it is
not part of `akidac.runtime`, which runs a hybrid model without the compiler.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import helper

from akidac.backends.akida.hwmodel import HardwareModel, run_layer
from akidac.backends.akida.program import Program
from akidac.backends.akida.region_fidelity import _dequantize
from akidac.ir.graph import Op, Value
from akidac.metrics import sqnr_db

SCHEMA_VERSION = 1
#: the SQNR (dB) below which a layer counts as divergent: the fidelity guard's default.
DEFAULT_THRESHOLD_DB = 20.0
#: a layer whose float output lies beyond its quantized range this often is said to clip.
CLIP_WARNING_SHARE = 1e-3


@dataclass
class LayerFigures:
    """The comparison at one value: an Akida layer's output or a CPU node's."""

    name: str  # the ONNX node the value comes from
    value: str  # the ONNX tensor compared
    target: str  # "akida" or "cpu"
    op_type: str
    sqnr_db: float
    own_sqnr_db: float | None = None
    bits: int | None = None
    scale: float | None = None
    clipped_share: float | None = None
    region: int | None = None
    layer: str | None = None  # the Akida layer (its anchor node: what the options name)
    channel_sqnr_db: float | None = None

    @property
    def worst_db(self) -> float:
        """The lower of the SQNR and the worst channel's SQNR."""
        if self.channel_sqnr_db is None:
            return self.sqnr_db
        return min(self.sqnr_db, self.channel_sqnr_db)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "layer": self.layer,
            "value": self.value,
            "target": self.target,
            "op_type": self.op_type,
            "sqnr_db": _finite(self.sqnr_db),
            "own_sqnr_db": _finite(self.own_sqnr_db),
            "channel_sqnr_db": _finite(self.channel_sqnr_db),
            "bits": self.bits,
            "scale": self.scale,
            "clipped_share": self.clipped_share,
            "region": self.region,
        }


@dataclass
class BisectResult:
    """Per-layer figures in topological order, the first divergent layer and suggestions."""

    threshold_db: float
    samples: int
    layers: list[LayerFigures] = field(default_factory=list)
    first_divergent: str | None = None
    suggestions: list[str] = field(default_factory=list)
    note: str = ""  # what the samples are

    def as_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "threshold_db": self.threshold_db,
            "samples": self.samples,
            "samples_note": self.note,
            "layers": [layer.as_json() for layer in self.layers],
            "first_divergent": self.first_divergent,
            "suggestions": list(self.suggestions),
        }


def _finite(value: float | None) -> float | None:
    """JSON has no infinity: an exact match (SQNR +inf) is written as 200 dB, like metrics."""
    if value is None:
        return None
    return float(min(value, 200.0)) if np.isfinite(value) or value > 0 else -200.0


# ----------------------------------------------------------------------------- float values


def _float_values(
    proto: onnx.ModelProto, feeds: list[dict[str, np.ndarray]]
) -> list[dict[str, np.ndarray]]:
    """Every node output of the float model, per sample (onnxruntime, all outputs exposed)."""
    import onnxruntime as ort

    exposed = onnx.ModelProto()
    exposed.CopyFrom(proto)
    have = {o.name for o in exposed.graph.output}
    for node in exposed.graph.node:
        for name in node.output:
            if name and name not in have:
                exposed.graph.output.append(helper.make_empty_tensor_value_info(name))
                have.add(name)
    options = ort.SessionOptions()
    options.log_severity_level = 4
    session = ort.InferenceSession(
        exposed.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    names = [o.name for o in session.get_outputs()]
    values = []
    for feed in feeds:
        results = dict(zip(names, session.run(names, feed), strict=True))
        results.update(feed)
        values.append(results)
    return values


def _hybrid_values(
    hybrid: onnx.ModelProto, reference: dict[str, np.ndarray], feeds: list[dict[str, np.ndarray]]
):
    """Every value of the hybrid model per sample, with the CPU nodes' outputs that the float
    model also has made graph outputs (so their parts return them)."""
    from akidac.runtime.session import HybridSession

    traced = onnx.ModelProto()
    traced.CopyFrom(hybrid)
    have = {o.name for o in traced.graph.output}
    for node in traced.graph.node:
        if node.op_type == "AkidaOp":
            continue
        for name in node.output:
            array = reference.get(name)
            if name in have or array is None or not isinstance(array, np.ndarray):
                continue
            if not np.issubdtype(array.dtype, np.floating):
                continue
            elem = helper.np_dtype_to_tensor_dtype(array.dtype)
            traced.graph.output.append(helper.make_tensor_value_info(name, elem, array.shape))
            have.add(name)
    session = HybridSession(traced.SerializeToString())
    return session, [session.run_all(feed) for feed in feeds]


# ----------------------------------------------------------------------------- helpers


def _nhwc(array: np.ndarray) -> np.ndarray:
    return np.transpose(array, (0, 2, 3, 1)) if array.ndim == 4 else array


def _float_source(value: Value, reference: dict[str, np.ndarray]) -> tuple[str, bool] | None:
    """The float model tensor behind a region input (through the border's Transpose), and
    whether it is NCHW to be transposed."""
    producer = value.producer
    if producer is not None and producer.kind == "onnx.QuantizeLinear":
        value = producer.inputs[0]  # type: ignore[assignment]
    transposed = False
    while value.name not in reference and value.producer is not None:
        producer = value.producer
        if producer.kind not in (
            "onnx.Transpose",
            "onnx.DequantizeLinear",
            "onnx.Mul",
            "onnx.Reshape",
            "onnx.Flatten",
        ):
            return None
        transposed = transposed or producer.kind == "onnx.Transpose"
        value = producer.inputs[0]  # type: ignore[assignment]
    if value.name not in reference:
        return None
    return value.name, transposed


def _quantize_like(value: Value, real: np.ndarray) -> np.ndarray:
    """Codes of `real` as the hardware reads `value` (its scale and zero point)."""
    quant = value.type.quant
    if quant is None:
        raise ValueError(f"value '{value.name}' is not quantized")
    dtype = np.dtype({"i8": np.int8, "u8": np.uint8}.get(value.type.dtype, np.int8))
    info = np.iinfo(dtype)
    real = np.asarray(real, np.float64)
    scales = quant.channel_scales()
    with np.errstate(all="ignore"):
        codes = np.rint(real.reshape(-1, scales.size) / scales) + quant.zero_point
    return np.clip(codes, info.min, info.max).astype(dtype).reshape(real.shape)


def _clipped_share(value: Value, real: np.ndarray) -> float | None:
    quant = value.type.quant
    if quant is None:
        return None
    top = 2 ** (quant.bits - 1) - 1 if quant.bits > 4 or quant.signed else 2**quant.bits - 1
    bottom = -(2 ** (quant.bits - 1)) if quant.signed else 0
    scales = quant.channel_scales()
    high = (top - quant.zero_point) * scales
    low = (bottom - quant.zero_point) * scales
    real = np.asarray(real).reshape(-1, scales.size)
    return float(np.mean((real > high * (1 + 1e-6)) | (real < low * (1 + 1e-6))))


def _sqnr_min(refs: list[np.ndarray], gots: list[np.ndarray]) -> float:
    return min(
        sqnr_db(np.asarray(r, np.float64).reshape(-1), np.asarray(g, np.float64).reshape(-1))
        for r, g in zip(refs, gots, strict=True)
    )


# ----------------------------------------------------------------------------- the walk


def bisect_hybrid(
    proto: onnx.ModelProto,
    hybrid: onnx.ModelProto,
    regions: list[Any],
    programs: list[Program],
    feeds: list[dict[str, np.ndarray]],
    threshold_db: float = DEFAULT_THRESHOLD_DB,
) -> BisectResult:
    """Compare every value both models compute on `feeds` (one dict per sample, batch 1)."""
    floats = _float_values(proto, feeds)
    session, hybrids = _hybrid_values(hybrid, floats[0], feeds)
    order = {node.name: index for index, node in enumerate(proto.graph.node)}
    node_output = {node.name: node.output[0] for node in proto.graph.node if node.output}
    node_type = {node.name: node.op_type for node in proto.graph.node}
    rows: list[tuple[int, LayerFigures]] = []
    akida_nodes: set[str] = set()
    for region, program in zip(regions, programs, strict=True):
        rows += _region_rows(region, program, floats, hybrids, order, node_output, node_type)
        akida_nodes.update(name for op in region.ops for name in op.origin)
    for node in proto.graph.node:
        if node.name in akida_nodes or not node.output:
            continue
        name = node.output[0]
        if not all(name in h for h in hybrids) or name not in floats[0]:
            continue
        refs = [f[name] for f in floats]
        if not np.issubdtype(np.asarray(refs[0]).dtype, np.floating) or np.size(refs[0]) < 2:
            continue
        gots = [h[name] for h in hybrids]
        if any(np.shape(r) != np.shape(g) for r, g in zip(refs, gots, strict=True)):
            continue
        figure = LayerFigures(node.name, name, "cpu", node.op_type, _sqnr_min(refs, gots))
        rows.append((order[node.name], figure))
    rows.sort(key=lambda row: row[0])
    result = BisectResult(threshold_db, len(feeds), [figure for _, figure in rows])
    for figure in result.layers:
        if figure.worst_db < threshold_db:
            result.first_divergent = figure.name
            break
    result.suggestions = suggestions(result)
    del session
    return result


def _region_rows(
    region: Any,
    program: Program,
    floats: list[dict[str, np.ndarray]],
    hybrids: list[dict[str, np.ndarray]],
    order: dict[str, int],
    node_output: dict[str, str],
    node_type: dict[str, str],
) -> list[tuple[int, LayerFigures]]:
    """Accumulated and own figures of every layer of one region."""
    model = HardwareModel(program.layers)
    border = region.input
    records = program.layers[len(program.layers) - len(region.ops) :]
    per_sample = [
        list(model.run_layers(_program_input(program, h[border.name])).values())[-len(region.ops) :]
        for h in hybrids
    ]
    source = _float_source(border, floats[0])
    float_of: dict[int, list[np.ndarray]] = {}
    if source is not None:
        name, transposed = source
        float_of[id(border)] = [
            _nhwc(f[name]) if transposed else np.asarray(f[name]) for f in floats
        ]
    rows = []
    for index, (op, record) in enumerate(zip(region.ops, records, strict=True)):
        last = _last_origin(op, order)
        if last is None:
            continue
        tensor = node_output.get(last)
        if tensor is None or tensor not in floats[0]:
            continue
        refs = [_nhwc(np.asarray(f[tensor])) for f in floats]
        float_of[id(op.outputs[0])] = refs
        if op.annotations.get("inserted") == "identity":
            continue  # the merge before it is reported under the same node
        gots = [
            _dequantize(op.outputs[0], codes[index]).reshape(ref.shape)
            for codes, ref in zip(per_sample, refs, strict=True)
            if np.size(codes[index]) == ref.size
        ]
        if len(gots) != len(refs):
            continue
        refs_flat = [r.reshape(-1) for r in refs]
        gots_flat = [g.reshape(-1) for g in gots]
        if any(r.size != g.size for r, g in zip(refs_flat, gots_flat, strict=True)):
            continue
        quant = op.outputs[0].type.quant
        figure = LayerFigures(
            name=last,
            value=tensor,
            target="akida",
            op_type=node_type.get(last, op.kind),
            sqnr_db=_sqnr_min(refs_flat, gots_flat),
            own_sqnr_db=_own_sqnr(op, record, float_of, refs_flat),
            bits=quant.bits if quant is not None else None,
            scale=float(quant.scale) if quant is not None else None,
            clipped_share=_clipped_share(op.outputs[0], np.concatenate(refs_flat)),
            region=region.index,
            layer=op.display_name,
            channel_sqnr_db=_channel_sqnr(refs, gots),
        )
        rows.append((order[last], figure))
    return rows


#: `channel_sqnr_db` needs at least this many pixels per channel and sample.
MIN_CHANNEL_PIXELS = 16
#: channels below this share of the median channel energy are left out of `channel_sqnr_db`.
CHANNEL_ENERGY_FLOOR = 1e-3


def _channel_sqnr(refs: list[np.ndarray], gots: list[np.ndarray]) -> float | None:
    """The worst SQNR over the output channels (last axis, NHWC) of a 4-D value, all samples
    joined; None for other ranks or a single channel."""
    if refs[0].ndim != 4 or refs[0].shape[-1] < 2:
        return None
    if refs[0].shape[1] * refs[0].shape[2] < MIN_CHANNEL_PIXELS:
        return None  # a squeeze-and-excitation vector: a few values per channel tell nothing
    channels = refs[0].shape[-1]
    ref = np.concatenate([np.asarray(r, np.float64).reshape(-1, channels) for r in refs])
    got = np.concatenate([np.asarray(g, np.float64).reshape(-1, channels) for g in gots])
    energy = np.sum(ref**2, axis=0)
    noise = np.sum((ref - got) ** 2, axis=0)
    floor = CHANNEL_ENERGY_FLOOR * float(np.median(energy))
    kept = energy > max(floor, 0.0)
    if not np.any(kept):
        return None
    with np.errstate(divide="ignore"):
        figures = 10.0 * np.log10(energy[kept] / np.maximum(noise[kept], 1e-300))
    return float(min(figures.min(), 200.0))


def _program_input(program: Program, codes: np.ndarray) -> np.ndarray:
    return np.asarray(codes).reshape(-1, *program.input.dims)


def _last_origin(op: Op, order: dict[str, int]) -> str | None:
    names = [name for name in op.origin if name in order]
    return max(names, key=order.__getitem__) if names else None


def _own_sqnr(
    op: Op,
    record: Any,
    float_of: dict[int, list[np.ndarray]],
    refs_flat: list[np.ndarray],
) -> float | None:
    """The layer run alone on its float inputs, quantized as it reads them."""
    count = 2 if op.kind in ("akida.add", "akida.concat") else 1
    operands = [v for v in op.inputs[:count] if v is not None]
    if len(operands) < count or any(
        id(v) not in float_of or v.type.quant is None for v in operands
    ):
        return None
    gots = []
    for sample in range(len(refs_flat)):
        inputs = []
        for value in operands:
            real = float_of[id(value)][sample]
            dims = _layer_input_dims(value, real)
            if np.size(real) != int(np.prod(dims)):
                return None  # the float model has no value of this shape at that point
            inputs.append(_quantize_like(value, real).reshape(1, *dims))
        codes = run_layer(record, inputs)
        gots.append(_dequantize(op.outputs[0], codes).reshape(-1))
    return _sqnr_min(refs_flat, gots)


def _layer_input_dims(value: Value, real: np.ndarray) -> tuple[int, ...]:
    """The NHWC dims a layer reads `value` in, for one sample (a flat value is 1×1×C)."""
    shape = value.type.shape
    if shape is not None and len(shape) == 4 and all(isinstance(d, int) for d in shape):
        return tuple(int(d) for d in shape[1:])  # type: ignore[arg-type]
    return (1, 1, int(np.size(real)))


# ----------------------------------------------------------------------------- advice


def suggestions(result: BisectResult) -> list[str]:
    """What to try for the first divergent layer, as command-line fragments."""
    if result.first_divergent is None:
        return []
    index = next(i for i, f in enumerate(result.layers) if f.name == result.first_divergent)
    first = result.layers[index]
    lines: list[str] = []
    if (
        first.channel_sqnr_db is not None
        and first.channel_sqnr_db < result.threshold_db <= first.sqnr_db
    ):
        layer = first.layer or first.name
        lines.append(
            f"'{layer}' outputs channels of very different ranges: its activation scales leave "
            f"its weakest channel at {first.channel_sqnr_db:.1f} dB, which the next layer "
            "reads; equalise the channel ranges (scale a large channel's weights down and the "
            f"next layer's matching weights up), or run it on the CPU: --keep-on-cpu {layer}"
        )
        return lines
    if first.target == "cpu":
        before = [f for f in result.layers[:index] if f.own_sqnr_db is not None]
        if before:
            worst = min(before, key=lambda f: f.own_sqnr_db or 0.0)
            lines.append(
                f"'{first.name}' runs on the CPU: the error comes from earlier Akida layers; the "
                f"one that adds most is '{worst.name}' ({worst.own_sqnr_db:.1f} dB on its own)"
            )
            first = worst
        else:
            return [f"'{first.name}' runs on the CPU and no Akida layer precedes it"]
    own = first.own_sqnr_db
    if own is not None and own >= result.threshold_db and first is result.layers[index]:
        before = [f for f in result.layers[:index] if f.own_sqnr_db is not None]
        if before:
            worst = min(before, key=lambda f: f.own_sqnr_db or 0.0)
            lines.append(
                f"'{first.name}' adds little on its own ({own:.1f} dB): the error accumulates "
                f"from earlier layers; the one that adds most is '{worst.name}' "
                f"({worst.own_sqnr_db:.1f} dB on its own)"
            )
            first = worst
    layer = first.layer or first.name
    if first.bits is not None and first.bits < 8:
        lines.append(
            f"keep '{layer}' at 8 bits: a --quant-config file with "
            f'[layers."{layer}"] wbits = 8, abits = 8'
        )
    if first.clipped_share is not None and first.clipped_share > CLIP_WARNING_SHARE:
        lines.append(
            f"'{layer}' clips {first.clipped_share:.2%} of its values: try "
            "--calibration minmax (or representative --samples)"
        )
    elif first.target == "akida":
        lines.append(
            f"'{layer}' is limited by its resolution: try --calibration mse, or "
            "representative --samples"
        )
    if first.target == "akida":
        lines.append(f"run it on the CPU: --keep-on-cpu {layer}")
    return lines
