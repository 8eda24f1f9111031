"""`quantize`: calibrate, then give every Akida layer its integer variables.

Scales. Every activation value v of a region has one real scale s_v (real = s_v · q), or per
channel s_v · 2^−k[c] for an activated output with channel scales (`channel_scales.py`). A layer
with input scale `s_in` and symmetric per-output-channel weight scales `s_w[f]` accumulates in
units `a[f] = s_in · s_w[f]`. Then (fixed-point forms in `fixed_point.py`, LUTs in `lut.py`):
- bias `b[f]` becomes `bias << bias_shift ≈ b[f] / a[f]`; the weight scale is kept ≥
  |b[f]| / (s_in · 2^26) so a bias never leaves the 32-bit range (its channel's weights are then
  ~0 anyway);
- a ReLU ceiling `m` becomes `max_value << max_value_shift ≈ m / a[f]`;
- an output of scale `s_out` needs `output_scales · 2^output_shift ≈ u[f] / (s_out · H·W)` with
  u = a[f] (ReLU or none) or the LUT's value unit `s_lut`, and H·W the GAP area (1 without GAP);
- a layer without activation whose result leaves the region keeps its raw sum (28 bits, 32 for
  Dense1D and InputConv2D; `output_scales = 1`, `output_shift = 0`) and a per-channel
  DequantizeLinear of scale a[f] / (H·W) restores floats exactly.
Bits. Activated outputs take the layer's `abits` (8: int8 0..127 for ReLU, −128..127 for a LUT;
4: uint8 0..15, negatives clip); outputs without activation are 8-bit signed; Add outputs are
signed with the Add's `abits`. A layer's weight bits never exceed its input bits (AKIDA.md): a
layer reading 4-bit activations gets 4-bit weights, with a warning.
Desired scales come from calibration (range / largest code, the ReLU ceiling when smaller) on
the samples of `PassContext.calibration`: the driver loads them, quantize reads no files.
Constraints. Concatenate rescales nothing, so its two inputs and its output share one scale
(the largest desired one) and one width. Add rescales only by shifts: its inputs and output are
S · 2^k for one S per connected group of Adds, each k rounded up (never clipping, at most one bit
coarser), then raised until −4 ≤ out_shift + max(a_shift, b_shift) ≤ 3 holds.
Borders. A region input read by an InputConv2D becomes uint8 with a zero point z (calibrated
[min, max] over 255); z is folded into the bias, `b/a[f] − z · Σ w_q[f]`, and into
`padding_value = z`, so padded pixels are real zeros. Any other region input becomes int8
(symmetric). The region output gets a DequantizeLinear (per-tensor; for a raw sum per-channel
on a 2-D value, else a DequantizeLinear of scale 1 and a broadcast Mul, as before opset 13).
After it every akida op is `quantized = true` with the variables of
`akidac.target.layer_record` as attributes and int8 weights as its weight operand; a layer that
cannot be expressed raises `UnsupportedModelError` (AK-QUANT) naming it.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from akidac.errors import FallbackToCpu, UnsupportedModelError, UsageError
from akidac.ir.akida_dialect import akida_attr, akida_ints, akida_optional_float, akida_str
from akidac.ir.analyses import Region
from akidac.ir.attributes import AttrValue, DenseAttr, as_int
from akidac.ir.graph import Graph, Op, Value
from akidac.ir.onnx_export import preactivation_name
from akidac.ir.types import Quantization, TensorType
from akidac.passes.base import CalibrationSamples, PassContext, PassResult, register_pass
from akidac.passes.calibration import (
    ACTIVATION_OBSERVERS,
    WEIGHT_OBSERVERS,
    abs_range,
    activation_range,
    min_max_range,
    mse_weight_peaks,
)
from akidac.passes.channel_scales import (
    ABSORBING_READERS,
    ACCUMULATOR_LIMIT,
    SHIFTING_READERS,
    accumulator_peak,
    activation_channel_peaks,
    channel_shifts,
    fitting_shifts,
    input_shifts,
)
from akidac.passes.fixed_point import (
    ADD_SHIFT_HIGH,
    ADD_SHIFT_LOW,
    MIN_OUTPUT_SHIFT,
    add_shifts,
    channel_peaks,
    encode_bias,
    encode_relu_max,
    encode_scale,
    min_safe_shift,
    quantize_with_scale,
    weight_limit,
)
from akidac.passes.lut import (
    INDEX_LIMIT,
    LUT_FUNCTIONS,
    build_table,
    encode_index_scale,
    index_scale,
)
from akidac.passes.observation import Observation, ValueStats, observe
from akidac.passes.partition import region_boundary
from akidac.passes.quant_config import ALLOWED_BITS, load_quant_config
from akidac.target import limits as lim

NEURAL_KINDS = (
    "akida.conv2d",
    "akida.depthwise_conv2d",
    "akida.input_conv2d",
    "akida.conv2d_transpose",
    "akida.depthwise_conv2d_transpose",
    "akida.dense",
)
MERGE_KINDS = ("akida.add", "akida.concat")
#: activations after which a layer's output may carry per-channel scales.
ACTIVATED = ("relu", "lut")
#: a per-axis DequantizeLinear (a region output with channel scales) needs opset 13.
PER_AXIS_DEQUANTIZE_OPSET = 13
#: the bias of a layer, in accumulator units, stays below this (see module docstring).
BIAS_ACC_LIMIT = 2.0**26
#: a shifted Add operand stays below 2^31: 8-bit operands shift by at most 23.
MAX_ADD_OPERAND_SHIFT = 23
RAW_OUTPUT_BITS = lim.DENSE_HOST_OUTPUT_BITS
#: an output multiplier of at least 16 keeps 4 significant bits (`fixed_point.scale_is_exact`).
MIN_EXACT_MANTISSA = 16


def activation_limit(bits: int) -> int:
    """Largest activated output: 8-bit ReLU outputs are int8 0..127, 4-bit are 0..15."""
    return int(2**bits - 1 if bits <= 4 else 2 ** (bits - 1) - 1)


def output_limit(bits: int, signed: bool) -> int:
    """Largest code of an output: 2^(b−1) − 1 signed, 2^b − 1 unsigned."""
    return int(2 ** (bits - 1) - 1 if signed else 2**bits - 1)


def weight_axis(kind: str) -> int:
    """Output-channel axis of the float weight: ConvTranspose (Cin, F, …) and dense (in, units)
    use axis 1; Conv (F, Cin, …) and depthwise (C, 1, …) axis 0."""
    return 1 if kind in ("akida.conv2d_transpose", "akida.dense") else 0


def raw_bits(kind: str) -> int:
    """Width of a raw sum sent to the host: 32 for Dense1D and InputConv2D, else 28."""
    if kind in ("akida.dense", "akida.input_conv2d"):
        return lim.DENSE_HOST_OUTPUT_BITS
    return lim.HOST_OUTPUT_BITS


def _reads_unpadded(op: Op, x: Value) -> bool:
    """`op` reads `x` as its data input and never reads a padded pixel of it: a Dense layer,
    or a (non-transposed) Conv2D that is 1×1 or 'valid'."""
    if op.inputs[0] is not x or any(v is x for v in op.inputs[1:]):
        return False
    if op.kind == "akida.dense":
        return True
    if op.kind != "akida.conv2d":
        return False
    return akida_ints(op, "kernel") == [1, 1] or akida_str(op, "pad") == "valid"


def _input_elements(op: Op) -> int:
    """Entries of a layer's `input_shift`: one per flattened input element for Dense1D, one
    per input channel otherwise."""
    dims = op.operand(0).type.dims
    return int(np.prod(dims[1:])) if op.kind == "akida.dense" else int(dims[-1])


def quant_error(op: Op, message: str) -> UnsupportedModelError:
    """AK-QUANT: the layer cannot be quantized; the message names it and says why. The error
    carries the ONNX nodes the layer came from (`origins`), which then run on the CPU."""
    error = UnsupportedModelError(
        f"cannot quantize {op.kind} '{op.display_name}': {message}",
        code="AK-QUANT",
        node=op.display_name,
    )
    error.origins = tuple(op.origin or (op.display_name,))  # type: ignore[attr-defined]
    return error


def fallback_nodes(error: UnsupportedModelError, region: Region) -> dict[str, tuple[str, str]]:
    """The CPU overrides that answer a quantization failure in `region`: the failing layer's
    ONNX nodes when the error names a layer, else every node of the region."""
    origins = getattr(error, "origins", None)
    if not origins:
        origins = tuple(name for op in region.ops for name in (op.origin or (op.display_name,)))
    return {name: (error.code, error.message) for name in origins}


@dataclass
class _ValueQ:
    """What quantize decides for one region value."""

    bits: int
    signed: bool
    raw: bool = False
    desired: float = 0.0
    scale: float = 0.0
    zero_point: int = 0
    #: finer power-of-two scales of single channels: channel c is `scale · 2^−channel_shift[c]`
    channel_shift: np.ndarray | None = None

    def channel_scales(self) -> Any:
        """The real scale of every channel (last axis), or the one scale of the tensor."""
        if self.channel_shift is None:
            return self.scale
        return self.scale * np.exp2(-self.channel_shift.astype(np.float64))


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, key: int) -> int:
        self.parent.setdefault(key, key)
        while self.parent[key] != key:
            self.parent[key] = self.parent[self.parent[key]]
            key = self.parent[key]
        return key

    def union(self, a: int, b: int) -> None:
        root_a, root_b = self.find(a), self.find(b)
        if root_a != root_b:
            self.parent[max(root_a, root_b)] = min(root_a, root_b)


@register_pass
@dataclass(frozen=True)
class Quantize:
    """Calibrate on samples and quantize every Akida layer to its fixed-point variables."""

    name: ClassVar[str] = "quantize"

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        regions: list[Region] = ctx.analyses.get("regions", [])
        if not regions:
            return PassResult(graph, False)
        options = ctx.options
        _check_options(options)
        on_cpu = []
        if options.quant_config:
            on_cpu = _apply_quant_config(graph, regions, options.quant_config)
        samples = calibration_samples(graph, ctx)
        if samples.random:
            ctx.sink.warning(
                "AK-CALIBRATION-RANDOM",
                f"no --samples given: calibrating on {len(samples.feeds)} random "
                "standard-normal inputs; accuracy may suffer. Pass --samples "
                "data.npz with representative inputs",
            )
        ops = [op for region in regions for op in region.ops]
        watched = [r.input for r in regions if r.input is not None]
        watched += [op.outputs[0] for op in ops]
        # once each: a value observed twice would get every sample twice in its list
        watched = list({v.name: v for v in watched}.values())
        lut_ops = [op for op in ops if op.attrs.get("act") == "lut"]
        started = time.perf_counter()
        seen = observe(
            graph,
            watched,
            samples.feeds,
            [preactivation_name(op) for op in lut_ops],
            percentile=options.percentile,
            keep_subsample=_may_use_mse(options, ops),
        )
        # the fidelity guard replays the first samples from it (api._guard_regions)
        ctx.analyses["observation"] = seen
        ctx.analyses["calibration_seconds"] = time.perf_counter() - started  # --time-passes
        ctx.analyses["calibration"] = {
            "samples": len(samples.feeds),
            "random": samples.random,
            "source": samples.source,
            "activation_observer": options.calibration,
            "weight_observer": options.weight_observer,
            "config_nodes_on_cpu": on_cpu,
        }
        # a region that cannot be quantized does not stop the others: every failure is
        # collected, and the compile driver sends those nodes to the CPU and compiles again
        failed: dict[str, tuple[str, str]] = {}
        for region in regions:
            try:
                _RegionQuantizer(graph, ctx, region, seen).run()
            except FallbackToCpu as error:
                failed.update(error.nodes)
            except UnsupportedModelError as error:
                failed.update(fallback_nodes(error, region))
        if failed:
            raise FallbackToCpu(failed)
        return PassResult(graph, True)


def _may_use_mse(options: Any, ops: list[Op]) -> bool:
    """Whether an activation observer may be MSE: `--calibration mse`, or `auto` with a layer
    at 4 bits or less (bits come from the op, set by a quant config, or the options)."""
    if options.calibration == "mse":
        return True
    if options.calibration != "auto":
        return False
    return any(int(op.attrs.get("abits", options.abits)) <= 4 for op in ops)


def calibration_samples(graph: Graph, ctx: PassContext) -> CalibrationSamples:
    """The samples of `ctx.calibration` (loaded now when it is a function of the graph); a
    `UsageError` when there are none: quantize never loads files itself."""
    source = ctx.calibration
    if source is None:
        raise UsageError(
            "quantize needs calibration samples: set PassContext.calibration to a SampleSet of "
            "feeds (akidac.frontend.samples), or build the context with "
            "akidac.api.pass_context(options), which loads options.samples or samples_dir"
        )
    samples = source(graph) if callable(source) else source
    if not samples.feeds:
        raise UsageError("quantize needs calibration samples: PassContext.calibration has no feeds")
    return samples


def _check_options(options: Any) -> None:
    if options.calibration not in ACTIVATION_OBSERVERS:
        raise UsageError(
            f"calibration observer {options.calibration!r} is not one of "
            f"{', '.join(ACTIVATION_OBSERVERS)}"
        )
    if options.weight_observer not in WEIGHT_OBSERVERS:
        raise UsageError(
            f"weight observer {options.weight_observer!r} is not one of "
            f"{', '.join(WEIGHT_OBSERVERS)}"
        )
    for key in ("wbits", "abits"):
        if getattr(options, key) not in ALLOWED_BITS:
            raise UsageError(f"{key} must be 4 or 8, not {getattr(options, key)!r}")
    if not 0 < float(options.percentile) <= 100:
        raise UsageError(f"percentile must be in (0, 100], not {options.percentile}")


def _apply_quant_config(graph: Graph, regions: list[Region], path: str) -> list[str]:
    """Set `wbits`/`abits` of the layers the override file names (by ONNX node name).

    A name that no op of the graph comes from is a `UsageError` (AK-USAGE-QUANT-CONFIG); the
    names of nodes that run on the CPU are returned (their settings have no effect).
    """
    config = load_quant_config(path)
    known = {name for op in graph.ops for name in op.origin}
    unknown = sorted(set(config.layers) - known)
    if unknown:
        raise UsageError(
            f"{config.source} names node(s) {', '.join(unknown)} that the model does not have "
            "(or that were folded away)",
            code="AK-USAGE-QUANT-CONFIG",
        )
    matched: set[str] = set()
    for region in regions:
        for op in region.ops:
            name, bits = config.bits_for(op.origin)
            if name is not None:
                matched.add(name)
            if bits.wbits is not None and op.kind in NEURAL_KINDS:
                op.attrs["wbits"] = bits.wbits
            if bits.abits is not None and op.kind != "akida.concat":
                op.attrs["abits"] = bits.abits
    return sorted(set(config.layers) - matched)


@dataclass(frozen=True)
class _FloatParameters:
    """A conv or dense layer's float weights (float64) and bias per filter, checked finite and
    constant; `axis` is the weights' filter axis."""

    weight: Value
    w: np.ndarray
    bias_value: Value | None
    bias: np.ndarray
    axis: int

    @property
    def filters(self) -> int:
        return int(self.w.shape[self.axis])


def _float_parameters(op: Op) -> _FloatParameters:
    """The layer's weights and bias, or a quantization error saying why they cannot be used."""
    weight = op.inputs[1]
    assert weight is not None
    if weight.const is None:
        raise quant_error(op, "its weights are not constant")
    axis = weight_axis(op.kind)
    w = np.asarray(weight.const, np.float64)
    bias_value = op.inputs[2] if len(op.inputs) > 2 else None
    bias = np.zeros(w.shape[axis])
    if bias_value is not None:
        if bias_value.const is None:
            raise quant_error(op, "its bias is not constant")
        bias = np.asarray(bias_value.const, np.float64).reshape(-1)
    if not (np.isfinite(w).all() and np.isfinite(bias).all()):
        raise quant_error(op, "its weights or bias hold NaN or infinity")
    return _FloatParameters(weight, w, bias_value, bias, axis)


class _RegionQuantizer:
    """Quantize one region: bits, desired scales, shared scales, integer variables, borders."""

    def __init__(self, graph: Graph, ctx: PassContext, region: Region, seen: Observation) -> None:
        self.graph = graph
        self.ctx = ctx
        self.options = ctx.options
        self.region = region
        self.seen = seen
        self.info: dict[int, _ValueQ] = {}
        self.image_input = False
        self.exponent: dict[int, int] = {}
        self.weight_peaks: dict[int, np.ndarray] = {}

    # --------------------------------------------------------------------------- driver
    def run(self) -> None:
        self._infer_bits()
        self._desired_scales()
        self._solve_scales()
        self._assign_channel_shifts()
        # where the float values at the region's borders are, for the fidelity guard (api) to
        # replay: the names of the observed values the float model computes there
        assert self.region.input is not None and self.region.output is not None
        self.ctx.analyses.setdefault("region_float_io", {})[self.region.index] = (
            self._observed_name(self.region.input),
            self._observed_name(self.region.output),
        )
        # and at every layer's output of a region of several, for the guard to find the layer
        # where the region first drifts
        if len(self.region.ops) > 1:
            self.ctx.analyses.setdefault("region_float_layers", {})[self.region.index] = {
                id(op): self._observed_name(op.outputs[0]) for op in self.region.ops
            }
        self._quantize_input()
        for op in self.region.ops:
            if op.kind in NEURAL_KINDS:
                self._emit_neural(op)
            elif op.kind == "akida.add":
                self._emit_add(op)
            elif op.kind == "akida.concat":
                self._emit_concat(op)
            else:
                raise quant_error(op, "this op kind has no Akida quantization")
        self._dequantize_output()

    # ----------------------------------------------------------------------------- bits
    def _bits_attr(self, op: Op, key: str) -> int:
        value = op.attrs.get(key, getattr(self.options, key))
        if value not in ALLOWED_BITS:
            raise quant_error(op, f"{key} = {value!r}; Akida supports 4 or 8 bits")
        bits = as_int(value, f"{key} of '{op.display_name}'")
        op.attrs[key] = bits
        return bits

    def _infer_bits(self) -> None:
        region = self.region
        # a region that reads the previous region's output now reads its DequantizeLinear
        (x,), _ = region_boundary(region.ops, self.graph)
        region.input = x
        if not x.type.dtype.startswith("f"):
            raise UnsupportedModelError(
                f"Akida region {region.index} reads '{x.name}' of type {x.type.dtype}; "
                "quantize expects a float region input",
                code="AK-QUANT",
                node=region.ops[0].display_name,
            )
        readers = [op for op in region.ops if x in op.inputs]
        self.image_input = any(op.kind == "akida.input_conv2d" for op in readers)
        if self.image_input:
            other = [op for op in readers if op.kind != "akida.input_conv2d"]
            if other or len(readers) > 1:
                raise quant_error(
                    (other or readers)[0],
                    "the uint8 image input of an InputConv2D cannot feed another layer",
                )
        self.info[id(x)] = _ValueQ(8, signed=not self.image_input)
        for op in region.ops:
            out = op.outputs[0]
            if op.kind in NEURAL_KINDS:
                self._bits_attr(op, "wbits")
                abits = self._bits_attr(op, "abits")
                if abits <= 4 and _lut_goes_negative(op):
                    abits = op.attrs["abits"] = 8
                    self.ctx.sink.warning(
                        "AK-BITS",
                        f"layer '{op.display_name}' ends in a {akida_attr(op, 'lut')} lookup "
                        "table with negative values, which a 4-bit (unsigned 0..15) output "
                        "would clip: its output stays 8 bits",
                        node=op.display_name,
                    )
                if akida_attr(op, "act") in ("relu", "lut"):
                    self.info[id(out)] = _ValueQ(abits, abits > 4)
                elif self._is_raw(op):
                    self.info[id(out)] = _ValueQ(raw_bits(op.kind), True, raw=True)
                else:
                    self.info[id(out)] = _ValueQ(lim.LINEAR_OUTPUT_BITS, True)
            elif op.kind == "akida.add":
                self.info[id(out)] = _ValueQ(self._bits_attr(op, "abits"), True)
            elif op.kind == "akida.concat":
                self.info[id(out)] = _ValueQ(8, True)
        self._unify_concat_bits()
        for op in region.ops:
            if op.kind in NEURAL_KINDS and op.kind != "akida.input_conv2d":
                in_bits = self.info[id(op.inputs[0])].bits
                if op.int_attr("wbits") > in_bits:
                    op.attrs["wbits"] = in_bits
                    self.ctx.sink.warning(
                        "AK-BITS",
                        f"layer '{op.display_name}' reads {in_bits}-bit activations, so its "
                        f"weights are quantized to {in_bits} bits (Akida needs input bits ≥ "
                        "weight bits)",
                        node=op.display_name,
                    )

    def _is_raw(self, op: Op) -> bool:
        """A layer without activation whose result only leaves the region: raw sum to the host."""
        out = op.outputs[0]
        members = {id(member) for member in self.region.ops}
        return out is self.region.output and not any(id(u) in members for u in out.users)

    def _concat_groups(self) -> _UnionFind:
        groups = _UnionFind()
        for op in self.region.ops:
            if op.kind == "akida.concat":
                a, b = op.inputs[0], op.inputs[1]
                groups.union(id(a), id(b))
                groups.union(id(a), id(op.outputs[0]))
        return groups

    def _unify_concat_bits(self) -> None:
        """Concatenate rescales nothing: its inputs and output share one width and signedness."""
        groups = self._concat_groups()
        producers = {id(op.outputs[0]): op for op in self.region.ops}
        members: dict[int, list[int]] = {}
        for key in self.info:
            if key in groups.parent:
                members.setdefault(groups.find(key), []).append(key)
        for keys in members.values():
            sources = [k for k in keys if getattr(producers.get(k), "kind", "") != "akida.concat"]
            bits = max(self.info[k].bits for k in sources)
            signs = {self.info[k].signed for k in sources}
            if bits <= 4 and len(signs) > 1:
                bits = 8  # uint8 0..15 and signed 4-bit Add outputs cannot share a type
            signed = bits > 4 or True in signs
            for key in keys:
                info = self.info[key]
                producer = producers.get(key)
                if (info.bits, info.signed) != (bits, signed) and producer is not None:
                    if producer.kind != "akida.concat":
                        producer.attrs["abits"] = bits
                        self.ctx.sink.warning(
                            "AK-BITS",
                            f"layer '{producer.display_name}' outputs {bits} bits like the other "
                            "input of the Concatenate it feeds",
                            node=producer.display_name,
                        )
                info.bits, info.signed = bits, signed

    # -------------------------------------------------------------------------- scales
    def _observed_name(self, value: Value) -> str:
        """The observed value that holds `value`'s float data: itself, or what an earlier
        region's DequantizeLinear restores."""
        producer = value.producer
        if value.name not in self.seen and producer is not None:
            if (
                producer.kind in ("onnx.DequantizeLinear", "onnx.Mul")
                and producer.created_by == "quantize"
            ):
                return self._observed_name(producer.operand(0))
        return value.name

    def _observed(self, value: Value) -> ValueStats:
        """Calibration statistics of a value (`_observed_name`)."""
        return self.seen[self._observed_name(value)]

    def _range(self, value: Value, bits: int, signed: bool) -> float:
        options = self.options
        return activation_range(
            self._observed(value),
            options.calibration,
            options.percentile,
            bits,
            signed,
            name=value.name,
        )

    def _desired_scales(self) -> None:
        x = self.region.input
        assert x is not None
        if self.image_input:
            percentile = 100.0 if self.options.calibration == "minmax" else self.options.percentile
            low, high = min_max_range(self._observed(x), percentile, name=x.name)
            scale = (high - low) / 255.0
            info = self.info[id(x)]
            info.scale = scale
            info.zero_point = int(np.clip(np.floor(-low / scale + 0.5), 0, 255))
        else:
            try:
                self.info[id(x)].desired = self._range(x, 8, True) / 127.0
                self._offset_input(x)
            except UnsupportedModelError as error:
                # blame the layers that read the input: they are what cannot be quantized
                readers = [op for op in self.region.ops if x in op.inputs]
                raise FallbackToCpu(
                    {
                        name: (error.code, error.message)
                        for op in readers
                        for name in (op.origin or (op.display_name,))
                    }
                ) from None
        for op in self.region.ops:
            out = op.outputs[0]
            info = self.info[id(out)]
            if info.raw or op.kind == "akida.concat":
                continue
            try:
                top = self._range(out, info.bits, info.signed)
            except UnsupportedModelError as error:
                raise quant_error(op, error.message) from None
            ceiling = op.optional_float_attr("act_max")
            if op.attrs.get("act") == "relu" and ceiling is not None and not op.attrs.get("gap"):
                top = min(top, ceiling)
            if not math.isfinite(top) or top <= 0:
                raise quant_error(op, f"calibration gave no usable output range ({top})")
            info.desired = top / output_limit(info.bits, info.signed)

    def _offset_input(self, x: Value) -> None:
        """Give a one-sided region input an int8 zero point where that is exact.

        A value read from the CPU is often nearly one-sided (the output of a hardswish, a ReLU
        the CPU computed, a sigmoid): symmetric int8 spends half its codes on negatives that
        never come, one bit of resolution (about 6 dB of SQNR) lost at every border. With a
        zero point z the codes cover [low, high]; a layer reading them computes
        Σ w·(q − z) = Σ w·q − z·Σ w, so z folds into its bias exactly as for the InputConv2D
        (module docstring) — but only where no padding is read (a padded pixel is code 0, real
        −z·s, and only the InputConv2D has a `padding_value`): 1×1 or 'valid' convolutions and
        Dense layers. Used when every reader is such a layer and the fold gains at least a
        third of the codes.
        """
        readers = [op for op in self.region.ops if x in op.inputs]
        if not readers or not all(_reads_unpadded(op, x) for op in readers):
            return
        percentile = 100.0 if self.options.calibration == "minmax" else self.options.percentile
        low, high = min_max_range(self._observed(x), percentile, name=x.name)
        info = self.info[id(x)]
        scale = (high - low) / 255.0
        if not (math.isfinite(scale) and scale > 0) or scale > info.desired * 2.0 / 3.0:
            return
        info.scale = scale
        info.zero_point = int(np.clip(np.floor(-low / scale + 0.5) - 128, -128, 127))

    def _solve_scales(self) -> None:
        """Concat groups share a scale; Add-connected groups are S · 2^k (module docstring)."""
        groups = self._concat_groups()
        keys = [k for k, info in self.info.items() if not info.raw and info.scale == 0.0]
        desired: dict[int, float] = {}
        for key in keys:
            root = groups.find(key)
            desired[root] = max(desired.get(root, 0.0), self.info[key].desired)
        domains = _UnionFind()
        adds = [op for op in self.region.ops if op.kind == "akida.add"]
        for op in adds:
            a, b, out = (groups.find(id(v)) for v in (op.inputs[0], op.inputs[1], op.outputs[0]))
            domains.union(a, b)
            domains.union(a, out)
        base: dict[int, float] = {}
        for root, value in desired.items():
            domain = domains.find(root)
            base[domain] = max(base.get(domain, 0.0), value)
        exponent = {
            root: math.ceil(math.log2(value / base[domains.find(root)]) - 1e-9)
            for root, value in desired.items()
        }
        self._satisfy_add_rule(adds, groups, exponent)
        for key in keys:
            root = groups.find(key)
            self.info[key].scale = base[domains.find(root)] * 2.0 ** exponent[root]
            self.exponent[key] = exponent[root]

    def _satisfy_add_rule(
        self, adds: list[Op], groups: _UnionFind, exponent: dict[int, int]
    ) -> None:
        """Raise exponents (coarser scales never clip) until every Add obeys the shift rules."""
        for _ in range(16 * (len(adds) + 1)):
            changed = False
            for op in adds:
                a, b, out = (
                    groups.find(id(v)) for v in (op.inputs[0], op.inputs[1], op.outputs[0])
                )
                high = max(exponent[a], exponent[b])
                for operand in (a, b):
                    if exponent[operand] < high - MAX_ADD_OPERAND_SHIFT:
                        exponent[operand] = high - MAX_ADD_OPERAND_SHIFT
                        changed = True
                if high - exponent[out] > ADD_SHIFT_HIGH:
                    exponent[out] = high - ADD_SHIFT_HIGH
                    changed = True
                elif high - exponent[out] < ADD_SHIFT_LOW:
                    larger = a if exponent[a] >= exponent[b] else b
                    exponent[larger] = exponent[out] + ADD_SHIFT_LOW
                    changed = True
            if not changed:
                return
        raise quant_error(adds[0], "no power-of-two input scales satisfy the Add shift rules")

    def _assign_channel_shifts(self) -> None:
        """Finer power-of-two scales for the channels of an activated layer output whose
        calibrated peaks lie far below the tensor's range, where every reader can take them
        back exactly (`channel_scales` module docstring)."""
        members = {id(op) for op in self.region.ops}
        opset = self.graph.opset_imports.get("", 0)
        for op in self.region.ops:
            out = op.outputs[0]
            info = self.info[id(out)]
            if op.kind not in NEURAL_KINDS or info.raw or akida_attr(op, "act") not in ACTIVATED:
                continue
            readers = [user for user in out.users if id(user) in members]
            if not all(
                r.kind in SHIFTING_READERS + ABSORBING_READERS and r.inputs[0] is out
                for r in readers
            ) or (out is self.region.output and opset < PER_AXIS_DEQUANTIZE_OPSET):
                continue
            limit = output_limit(info.bits, info.signed)
            peaks = activation_channel_peaks(self._observed(out))
            if peaks is None:
                continue
            shifts = channel_shifts(info.scale * limit, peaks)
            for reader in readers:
                fits = functools.partial(
                    self._reader_fits, reader, input_limit=limit, tensor_scale=info.scale
                )
                shifts = fitting_shifts(shifts, fits)
            if shifts.any():
                info.channel_shift = shifts

    def _reader_fits(
        self, reader: Op, shifts: np.ndarray, input_limit: int, tensor_scale: float
    ) -> bool:
        """Whether a reader takes these channel shifts without loss: a Conv2D/Dense keeps
        every accumulator inside 28 bits at the largest input codes, and no filter's
        accumulator unit falls below what its output (or LUT index) rescale expresses exactly
        where it did not without shifts (its weight scale would then be raised)."""
        params = _float_parameters(reader)
        wbits = reader.int_attr("wbits")
        peaks = self._weight_peaks(reader, params, wbits)
        w_scale = np.where(peaks > 0, peaks / weight_limit(wbits), 1.0)
        if reader.kind in SHIFTING_READERS:
            weights_q = quantize_with_scale(params.w, w_scale, wbits, params.axis)
            per_input = input_shifts(shifts, _input_elements(reader))
            if accumulator_peak(weights_q, params.axis, per_input, input_limit) > ACCUMULATOR_LIMIT:
                return False
            s_in: Any = tensor_scale * 2.0 ** -int(shifts.max(initial=0))
        else:
            s_in = tensor_scale * np.exp2(-shifts.astype(np.float64))
        lowest = self._lowest_unit(reader)
        if lowest is None:
            return True
        lost = (s_in * w_scale < lowest) & (tensor_scale * w_scale >= lowest)
        return not bool(np.any(lost))

    def _lowest_unit(self, op: Op) -> float | None:
        """The smallest accumulator unit the layer's rescale expresses with a multiplier of at
        least `MIN_EXACT_MANTISSA`: for its output (ReLU or none), or its LUT index; None for a
        raw output (nothing rescaled) or a LUT whose range calibration did not see."""
        info = self.info[id(op.outputs[0])]
        if info.raw:
            return None
        if akida_attr(op, "act") == "lut":
            name = preactivation_name(op)
            if name not in self.seen:
                return None
            percentile = 100.0 if self.options.calibration == "minmax" else self.options.percentile
            step = index_scale(abs_range(self.seen[name], percentile, name=op.display_name))
            return float(MIN_EXACT_MANTISSA * 2.0 ** min_safe_shift(INDEX_LIMIT) * step)
        gap_area = self._pre_gap_area(op) if op.attrs.get("gap") else 1
        shift = max(MIN_OUTPUT_SHIFT, min_safe_shift(output_limit(info.bits, info.signed)))
        return float(MIN_EXACT_MANTISSA * 2.0**shift * info.scale * gap_area)

    # ------------------------------------------------------------------------- borders
    def _retype(self, value: Value) -> None:
        info = self.info[id(value)]
        if info.raw:
            value.type = TensorType("i32", value.type.shape, value.type.layout)
            return
        dtype = "i8" if info.signed else "u8"
        shifts = () if info.channel_shift is None else tuple(int(k) for k in info.channel_shift)
        quant = Quantization(info.scale, info.zero_point, info.bits, info.signed, shifts)
        value.type = TensorType(dtype, value.type.shape, value.type.layout, quant)

    def _quantize_input(self) -> None:
        graph, region = self.graph, self.region
        x = region.input
        assert x is not None
        info = self.info[id(x)]
        zero_type = np.uint8 if self.image_input else np.int8
        quant = graph.make_op(
            "onnx.QuantizeLinear",
            [
                x,
                graph.add_constant(f"{x.name}_scale", np.array(info.scale, np.float32), fresh=True),
                graph.add_constant(
                    f"{x.name}_zero_point", np.array(info.zero_point, zero_type), fresh=True
                ),
            ],
            [x.type],
            result_names=[f"{x.name}_q"],
            created_by="quantize",
            fresh_names=True,
            index=graph.ops.index(region.ops[0]),
        )
        xq = quant.outputs[0]
        self.info[id(xq)] = info
        if id(x) in self.exponent:
            self.exponent[id(xq)] = self.exponent[id(x)]
        self._retype(xq)
        for op in region.ops:
            for i, operand in enumerate(op.inputs):
                if operand is x:
                    graph.set_input(op, i, xq)
        region.input = xq

    def _dequantize_output(self) -> None:
        graph, region = self.graph, self.region
        out = region.output
        assert out is not None and out.producer is not None
        producer = out.producer
        per_channel = producer.dense_attr("acc_scale")
        float_type = TensorType("f32", out.type.shape, out.type.layout)
        if out.type.quant is not None:
            # per channel (axis: the last, NHWC) when the layer wrote channel scales
            scale = out.type.quant.channel_scales().astype(np.float32)
            zero = np.zeros(scale.shape, np.int8 if out.type.dtype == "i8" else np.uint8)
            attrs: dict[str, AttrValue] = {"axis": (out.type.rank or 1) - 1} if scale.ndim else {}
        elif graph.opset_imports.get("", 0) >= 13 and (out.type.rank or 0) <= 2:
            scale = per_channel.astype(np.float32)
            zero = np.zeros(scale.shape, np.int32)
            attrs = {"axis": (out.type.rank or 1) - 1}
        else:
            # per-axis DequantizeLinear needs opset 13, and onnxruntime (1.32) rejects an int32
            # per-axis one followed by the border Transpose: scale by a broadcast Mul instead
            scale = np.array(1.0, np.float32)
            zero = np.array(0, np.int32)
            attrs = {}
        dq = graph.make_op(
            "onnx.DequantizeLinear",
            [
                out,
                graph.add_constant(f"{out.name}_scale", scale, fresh=True),
                graph.add_constant(f"{out.name}_zero_point", zero, fresh=True),
            ],
            [float_type],
            result_names=[f"{out.name}_dq"],
            attrs=attrs,
            created_by="quantize",
            fresh_names=True,
            index=graph.ops.index(producer) + 1,
        )
        dequantize = dq
        if out.type.quant is None and not attrs:
            dq = graph.make_op(
                "onnx.Mul",
                [
                    dq.outputs[0],
                    graph.add_constant(
                        f"{out.name}_channel_scale", per_channel.astype(np.float32), fresh=True
                    ),
                ],
                [float_type],
                result_names=[f"{out.name}_scaled"],
                created_by="quantize",
                fresh_names=True,
                index=graph.ops.index(dq) + 1,
            )
        graph.redirect_uses(out, dq.outputs[0], skip=dequantize)
        region.output = out

    # -------------------------------------------------------------------------- layers
    def _pre_gap_area(self, op: Op) -> int:
        """H · W that GAP sums over: the conv (and max pooling) output size."""
        x_shape = op.operand(0).type.dims
        kernel = akida_ints(op, "kernel")
        stride = akida_ints(op, "stride")
        valid = akida_str(op, "pad") == "valid"
        sizes = []
        for axis in (0, 1):
            n = x_shape[1 + axis]
            if op.kind in ("akida.conv2d_transpose", "akida.depthwise_conv2d_transpose"):
                size = 2 * n
            elif valid:
                size = (n - kernel[axis]) // stride[axis] + 1
            else:
                size = -(-n // stride[axis])
            if akida_str(op, "pool") == "max":
                pool = akida_ints(op, "pool_size")[axis]
                pool_stride = akida_ints(op, "pool_stride")[axis]
                size = (size - pool) // pool_stride + 1 if valid else -(-size // pool_stride)
            sizes.append(size)
        return sizes[0] * sizes[1]

    def _emit_neural(self, op: Op) -> None:
        """A conv or dense layer's integer variables, in the order they depend on each other:
        float parameters → weight scales → integer weights and accumulator scale → input
        handling and bias → activation → output rescaling; then the integer weights replace
        the float ones (the bias is now an attribute)."""
        x = op.inputs[0]
        assert x is not None
        params = _float_parameters(op)
        wbits = op.int_attr("wbits")
        gap_area = self._pre_gap_area(op) if op.attrs.get("gap") else 1
        s_in, shift_in = self._input_unit(op, x)
        w_scale = self._weight_scale(op, params, s_in, wbits, gap_area)
        weights_q = quantize_with_scale(params.w, w_scale, wbits, params.axis)
        acc_scale = s_in * w_scale
        self._emit_input_and_bias(op, params, weights_q, acc_scale, shift_in)
        unit = self._emit_activation(op, acc_scale, params.filters)
        self._emit_output_scale(op, unit, acc_scale, gap_area, params.filters)
        graph = self.graph
        graph.set_input(op, 1, graph.add_constant(f"{params.weight.name}_q", weights_q, fresh=True))
        if params.bias_value is not None:
            graph.set_input(op, 2, None)
            op.inputs.pop()
        self._retype(op.outputs[0])

    def _input_unit(self, op: Op, x: Value) -> tuple[Any, np.ndarray | None]:
        """What one input code is worth in the layer's accumulator (one number, or one per
        channel for a depthwise reading channel scales), and the input shifts that bring a
        Conv2D/Dense's channels to one unit (None: no shifts; `channel_scales`)."""
        info = self.info[id(x)]
        if info.channel_shift is None:
            return info.scale, None
        if op.kind in ABSORBING_READERS:
            return info.channel_scales(), None
        finest = info.scale * 2.0 ** -int(info.channel_shift.max())
        return finest, input_shifts(info.channel_shift, _input_elements(op))

    def _weight_peaks(self, op: Op, params: _FloatParameters, wbits: int) -> np.ndarray:
        """Per-filter clip value of the weights by the weight observer (computed once)."""
        if id(op) not in self.weight_peaks:
            observer = self.options.weight_observer
            if observer == "mse" or (observer == "auto" and wbits <= 4):
                peaks = mse_weight_peaks(params.w, wbits, params.axis, name=op.display_name)
            else:
                peaks = channel_peaks(params.w, params.axis)
            self.weight_peaks[id(op)] = peaks
        return self.weight_peaks[id(op)]

    def _weight_scale(
        self, op: Op, params: _FloatParameters, s_in: Any, wbits: int, gap_area: int
    ) -> np.ndarray:
        """Per-filter weight scale: the observer's peak over the weight limit, raised so the
        bias fits the accumulator, and (for a rescaled output) so a dead channel's output
        multiplier stays expressible."""
        peaks = self._weight_peaks(op, params, wbits)
        w_scale = np.maximum(
            peaks / weight_limit(wbits), np.abs(params.bias) / (s_in * BIAS_ACC_LIMIT)
        )
        w_scale = np.where(w_scale > 0, w_scale, 1.0)
        info = self.info[id(op.outputs[0])]
        if not info.raw and akida_attr(op, "act") != "lut":
            # a channel whose weights are tiny next to its output scale (a dead or pruned
            # channel, 1e-30 weights) would need an output multiplier below what an 8-bit
            # mantissa and the lowest shift express; its weights then round to zero at any
            # scale that does express it, so raising its weight scale to that floor is exact
            # to within half an output step (docs/quantization.md)
            lowest = max(MIN_OUTPUT_SHIFT, min_safe_shift(output_limit(info.bits, info.signed)))
            floor = MIN_EXACT_MANTISSA * 2.0**lowest * info.channel_scales() * gap_area / s_in
            w_scale = np.asarray(np.maximum(w_scale, floor))
        return w_scale

    def _emit_input_and_bias(
        self,
        op: Op,
        params: _FloatParameters,
        weights_q: np.ndarray,
        acc_scale: np.ndarray,
        input_shift: np.ndarray | None,
    ) -> None:
        """The input's padding value (input conv) or input shift (others: zeros unless the
        input has channel scales), and the bias in accumulator units with the input's zero
        point folded into it."""
        x = op.inputs[0]
        assert x is not None
        x_info, attrs = self.info[id(x)], op.attrs
        bias_acc = params.bias / acc_scale
        if x_info.zero_point:  # folded into the bias (module docstring, `_offset_input`)
            other_axes = tuple(i for i in range(weights_q.ndim) if i != params.axis)
            bias_acc = bias_acc - x_info.zero_point * weights_q.astype(np.int64).sum(other_axes)
        if op.kind == "akida.input_conv2d":
            channels = x.type.dims[-1]
            attrs["padding_value"] = DenseAttr(np.full(channels, x_info.zero_point, np.uint8))
        elif input_shift is not None:
            attrs["input_shift"] = DenseAttr(input_shift)
        else:
            attrs["input_shift"] = DenseAttr(np.zeros(_input_elements(op), np.uint8))
        bias_q, bias_shift = encode_bias(bias_acc)
        attrs["bias"], attrs["bias_shift"] = DenseAttr(bias_q), DenseAttr(bias_shift)

    def _emit_activation(self, op: Op, acc_scale: np.ndarray, filters: int) -> Any:
        """The bounded ReLU's ceiling or the LUT's variables; returns the unit of the
        activation's output (the accumulator's, unless a LUT maps it to its own)."""
        attrs = op.attrs
        act = akida_attr(op, "act")
        if act == "relu":
            ceiling = op.optional_float_attr("act_max")
            if ceiling is not None:
                mv, mvs = encode_relu_max(ceiling / acc_scale)
            else:
                mv, mvs = np.full(filters, 127, np.uint8), np.full(filters, 31, np.uint8)
            attrs["max_value"], attrs["max_value_shift"] = DenseAttr(mv), DenseAttr(mvs)
        elif act == "lut":
            return self._emit_lut(op, acc_scale)
        return acc_scale

    def _emit_output_scale(
        self, op: Op, unit: Any, acc_scale: np.ndarray, gap_area: int, filters: int
    ) -> None:
        """The output rescaling (multiplier and shift per filter) from the activation's unit to
        the output's scale (none for a raw output), and the output's bits and scale."""
        info, attrs = self.info[id(op.outputs[0])], op.attrs
        if info.raw:
            attrs["output_scales"] = DenseAttr(np.ones(filters, np.uint8))
            attrs["output_shift"] = DenseAttr(np.zeros(filters, np.int8))
            unit_out = acc_scale / gap_area
        else:
            scales = info.channel_scales()
            ratio = np.broadcast_to(unit, (filters,)) / (scales * gap_area)
            limit = output_limit(info.bits, info.signed)
            mantissas, shifts = encode_scale(ratio, max(MIN_OUTPUT_SHIFT, min_safe_shift(limit)))
            if np.any((mantissas == 0) & (ratio > 0)):
                raise quant_error(
                    op,
                    f"its output scale ratio {float(ratio.min()):.3g} is below what an 8-bit "
                    "multiplier and a shift ≥ −24 can express (the accumulator would saturate)",
                )
            attrs["output_scales"], attrs["output_shift"] = DenseAttr(mantissas), DenseAttr(shifts)
            unit_out = np.broadcast_to(scales, (filters,))
        attrs["output_bits"] = info.bits
        attrs["quantized"] = True
        attrs["acc_scale"] = DenseAttr(np.asarray(unit_out, np.float64).astype(np.float32))

    def _emit_lut(self, op: Op, acc_scale: np.ndarray) -> float:
        """LUT variables from the calibrated pre-activation range; returns the table's unit."""
        function = str(akida_attr(op, "lut"))
        if function not in LUT_FUNCTIONS:
            raise quant_error(op, f"no lookup table for the function {function!r}")
        alpha = op.optional_float_attr("lut_alpha")
        name = preactivation_name(op)
        if name not in self.seen:
            raise quant_error(op, "calibration did not observe its pre-activation")
        percentile = 100.0 if self.options.calibration == "minmax" else self.options.percentile
        step = index_scale(abs_range(self.seen[name], percentile, name=op.display_name))
        scales, shifts = encode_index_scale(acc_scale, step)
        if np.any(scales == 0):
            raise quant_error(op, "its accumulator cannot be rescaled to the 11-bit LUT index")
        scale, offset = op.optional_float_attr("lut_scale"), op.optional_float_attr("lut_offset")
        table, value_unit = build_table(
            function,
            alpha,
            step,
            1.0 if scale is None else scale,
            0.0 if offset is None else offset,
        )
        op.attrs["activation_scales"] = DenseAttr(scales)
        op.attrs["activation_shift"] = DenseAttr(shifts)
        op.attrs["lut_values"] = DenseAttr(table)
        return value_unit

    def _emit_add(self, op: Op) -> None:
        a, b, out = op.inputs[0], op.inputs[1], op.outputs[0]
        assert a is not None and b is not None
        a_shift, b_shift, out_shift = add_shifts(
            self.exponent[id(a)], self.exponent[id(b)], self.exponent[id(out)]
        )
        info = self.info[id(out)]
        channels = out.type.dims[-1]
        attrs = op.attrs
        attrs["a_shift"] = DenseAttr(np.full(channels, a_shift, np.uint8))
        attrs["b_shift"] = DenseAttr(np.full(channels, b_shift, np.uint8))
        attrs["output_shift"] = DenseAttr(np.full(channels, out_shift, np.int8))
        attrs["output_bits"] = info.bits
        attrs["quantized"] = True
        attrs["acc_scale"] = DenseAttr(np.full(channels, info.scale, np.float32))
        self._retype(out)

    def _emit_concat(self, op: Op) -> None:
        out = op.outputs[0]
        info = self.info[id(out)]
        channels = out.type.dims[-1]
        op.attrs["output_bits"] = info.bits
        op.attrs["quantized"] = True
        op.attrs["acc_scale"] = DenseAttr(np.full(channels, info.scale, np.float32))
        self._retype(out)


#: LUT functions that take negative values (a 4-bit activated output is unsigned 0..15).
NEGATIVE_LUTS = frozenset({"gelu", "swish", "hardswish", "leaky_relu", "tanh", "elu", "identity"})


def _lut_goes_negative(op: Op) -> bool:
    if akida_attr(op, "act") != "lut":
        return False
    scale, offset = akida_optional_float(op, "lut_scale"), akida_optional_float(op, "lut_offset")
    flipped = scale is not None and scale < 0
    lowered = offset is not None and offset < 0
    return akida_attr(op, "lut") in NEGATIVE_LUTS or flipped or lowered
