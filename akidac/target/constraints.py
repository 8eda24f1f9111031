"""The legality rules of one candidate Akida layer: small functions with a code and a sentence.

Every rule is a function registered with `@constraint(code, applies=…, hint=…)`. Its docstring is
the user-facing rule, with `{placeholders}` filled from the layer kind's limits (`limits.py`, the
only place the numbers live); it returns `None` when the candidate satisfies it, or an `Unmet`
with the actual values, which `Constraint.check` turns into a `Violation` naming the node.
`check_layer` runs every rule of the candidate's kind and returns *all* violations, so a report
can say everything that is wrong with a node at once; `docs/reason-codes.md` lists the same rules.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from akidac.target import limits as lim
from akidac.target.limits import LAYER_LIMITS, LayerLimits
from akidac.target.reason_codes import REASON_CODES

#: ONNX / onnx-ir spellings of element types that differ from NumPy's.
_DTYPE_ALIASES = {"float": "float32", "double": "float64"}


@dataclass(frozen=True)
class LayerCandidate:
    """What legalize knows about one would-be Akida layer, independent of any IR.

    `kind` is one of `limits.KINDS`; `op_type` is the ONNX op type, used in messages. Pairs are
    (height, width). `in_channels` counts the channels of the input (of each input for Add, of
    the widest input for Concatenate); `filters` the output channels (dense: the units).
    `padding` is "same", "same_upper", "valid" or "explicit"; `pads` holds the ONNX pads (top,
    left, bottom, right), read only when `padding` is "explicit". `pool` is `None` or (size_h,
    size_w, stride_h, stride_w) of a fused max pooling; `gap` a fused global average pooling.
    `activation` is "none", "relu", "relu_max" or "lut:<name>"; anything else is reported as an
    activation Akida cannot fuse. `input_features` is the flattened input of a dense layer;
    `input_bits` the width of the layer's input activations (the producer's activation bits; 8
    for the model input); `input_dtype` the element type of its input tensor as the model gives
    it (NumPy or ONNX name). `num_inputs` counts the merged tensors of an Add/Concatenate;
    `axis` is the (non-negative, NCHW) concatenation axis.
    """

    node_name: str
    op_type: str
    kind: str
    in_channels: int
    filters: int
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    padding: str = "same"
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    groups: int = 1
    input_hw: tuple[int, int] = (1, 1)
    input_features: int = 0
    pool: tuple[int, int, int, int] | None = None
    activation: str = "none"
    gap: bool = False
    weight_bits: int = 8
    act_bits: int = 8
    input_bits: int = 8
    input_dtype: str = "float32"
    num_inputs: int = 1
    axis: int = lim.CONCAT_AXIS

    def __post_init__(self) -> None:
        if self.kind not in LAYER_LIMITS:
            raise ValueError(
                f"layer kind {self.kind!r} of node {self.node_name!r} is not one of "
                f"{', '.join(lim.KINDS)}"
            )
        if self.padding not in lim.PADDINGS:
            raise ValueError(
                f"padding {self.padding!r} of node {self.node_name!r} is not one of "
                f"{', '.join(lim.PADDINGS)}"
            )
        for name in ("kernel", "stride", "dilation", "input_hw"):
            pair = getattr(self, name)
            if len(pair) != 2 or min(pair) < 1:
                raise ValueError(
                    f"{name} of node {self.node_name!r} must be 2 positive ints: {pair}"
                )
        if self.in_channels < 1 or self.filters < 1:
            raise ValueError(f"node {self.node_name!r} needs at least one input and output channel")
        if len(self.pads) != 4 or min(self.pads) < 0:
            raise ValueError(f"pads of node {self.node_name!r} must be 4 non-negative ints")
        if self.pool is not None and (len(self.pool) != 4 or min(self.pool) < 1):
            raise ValueError(f"pool of node {self.node_name!r} must be 4 positive ints or None")
        dtype = self.input_dtype.lower()
        object.__setattr__(self, "input_dtype", _DTYPE_ALIASES.get(dtype, dtype))

    @property
    def limits(self) -> LayerLimits:
        """The limits of this candidate's layer kind."""
        return LAYER_LIMITS[self.kind]

    @property
    def label(self) -> str:
        """`Conv 'conv3'`: how messages name the node."""
        return f"{self.op_type} '{self.node_name}'"


@dataclass(frozen=True)
class Violation:
    """One broken rule: the reason `code`, a `message` naming the node with its actual values and
    the limit, a `hint` saying what to do, and the `values` (actual and allowed) for reports."""

    code: str
    message: str
    hint: str
    values: dict[str, Any] = field(default_factory=dict)
    node: str = ""

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class Unmet(NamedTuple):
    """What a rule function returns when it is broken: the clause after the node's name (`has
    kernel 9×9; Conv2D supports …`) and the actual and allowed values."""

    detail: str
    values: dict[str, Any]


RuleFn = Callable[[LayerCandidate, LayerLimits], Unmet | None]


@dataclass(frozen=True)
class Constraint:
    """A registered rule: its function `name`, reason `code`, the layer `kinds` it applies to,
    and the rule and hint sentences (templates filled per kind by `rule` and `hint`)."""

    name: str
    code: str
    kinds: tuple[str, ...]
    rule_template: str
    hint_template: str
    fn: RuleFn

    def rule(self, kind: str) -> str:
        """The rule as the user reads it, with the limits of `kind` filled in."""
        return self.rule_template.format(**doc_values(kind))

    def hint(self, kind: str) -> str:
        """What a user can do when the rule is broken by a layer of `kind`."""
        return self.hint_template.format(**doc_values(kind))

    def check(self, candidate: LayerCandidate) -> Violation | None:
        """`None` when `candidate` satisfies the rule, else its `Violation`."""
        unmet = self.fn(candidate, candidate.limits)
        if unmet is None:
            return None
        return Violation(
            code=self.code,
            message=f"{candidate.label} {unmet.detail}",
            hint=self.hint(candidate.kind),
            values=unmet.values,
            node=candidate.node_name,
        )


_constraints: list[Constraint] = []


def constraint(
    code: str, *, applies: Callable[[LayerLimits], bool], hint: str
) -> Callable[[RuleFn], RuleFn]:
    """Register a rule for every layer kind whose limits satisfy `applies`.

    The function's docstring is the rule sentence; `hint` says what to do. Both may hold
    `{placeholders}` of `doc_values`.
    """
    if code not in REASON_CODES:
        raise ValueError(f"constraint code {code} is not registered in reason_codes")

    def register(fn: RuleFn) -> RuleFn:
        kinds = tuple(kind for kind, limits in LAYER_LIMITS.items() if applies(limits))
        if not fn.__doc__ or not kinds:
            raise ValueError(f"constraint {fn.__name__} needs a docstring and at least one kind")
        rule_text = " ".join(inspect.cleandoc(fn.__doc__).split())
        _constraints.append(Constraint(fn.__name__, code, kinds, rule_text, hint, fn))
        return fn

    return register


def constraints_for(kind: str) -> tuple[Constraint, ...]:
    """The rules that apply to layers of `kind`, in check order."""
    if kind not in LAYER_LIMITS:
        raise ValueError(f"layer kind {kind!r} is not one of {', '.join(lim.KINDS)}")
    return tuple(c for c in _constraints if kind in c.kinds)


def all_constraints() -> tuple[Constraint, ...]:
    """Every registered rule, in check order."""
    return tuple(_constraints)


def check_layer(candidate: LayerCandidate) -> list[Violation]:
    """Every rule `candidate` breaks (empty when Akida can run it), in rule order."""
    found = (c.check(candidate) for c in constraints_for(candidate.kind))
    return [v for v in found if v is not None]


# ---------------------------------------------------------------------------------------------
# Geometry: padding, output sizes (vectors/README.md, "Padding" and "Max pooling")
# ---------------------------------------------------------------------------------------------


def same_pads(size: int, kernel: int, stride: int, *, upper: bool = False) -> tuple[int, int]:
    """(before, after) pads of TF-style "same" padding of one axis; `upper` puts the odd extra
    pixel before ("same upper") instead of after."""
    remainder = size % stride
    total = max(kernel - stride, 0) if remainder == 0 else max(kernel - remainder, 0)
    small, large = total // 2, total - total // 2
    return (large, small) if upper else (small, large)


def transposed_pads(kernel: int) -> tuple[int, int]:
    """ONNX (begin, end) pads of a stride-2 ConvTranspose whose output is exactly 2H: the chip
    places `out[2i + a − p]` with `p = (k − 2) // 2` and drops what falls outside [0, 2H)."""
    begin = (kernel - 2) // 2
    return begin, kernel - 2 - begin


def candidate_pads(c: LayerCandidate, mode: str | None = None) -> tuple[int, int, int, int]:
    """The (top, left, bottom, right) pads that padding `mode` (default: the candidate's own)
    implies for the candidate's kernel, stride and input size."""
    mode = mode or c.padding
    if mode == "explicit":
        return c.pads
    if mode == "valid":
        return (0, 0, 0, 0)
    upper = mode == "same_upper"
    eff_kernel = _effective_kernel(c)
    top, bottom = same_pads(c.input_hw[0], eff_kernel[0], c.stride[0], upper=upper)
    left, right = same_pads(c.input_hw[1], eff_kernel[1], c.stride[1], upper=upper)
    return (top, left, bottom, right)


def classify_padding(
    kind: str,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    input_hw: tuple[int, int],
    pads: tuple[int, int, int, int],
) -> str:
    """Name ONNX pads (top, left, bottom, right): "same", "same_upper", "valid" or "explicit".

    "same" wins when several modes give the same pads (a 1×1 kernel pads nothing either way).
    For transposed kinds, "same" means the pads of `transposed_pads` (output exactly 2H × 2W;
    the caller also checks that ONNX `output_padding` is zero).
    """
    if kind not in LAYER_LIMITS:
        raise ValueError(f"layer kind {kind!r} is not one of {', '.join(lim.KINDS)}")
    top, left, bottom, right = pads
    if kind in ("conv2d_transpose", "depthwise_conv2d_transpose"):
        rows, cols = transposed_pads(kernel[0]), transposed_pads(kernel[1])
        return "same" if (top, bottom) == rows and (left, right) == cols else "explicit"
    for mode, upper in (("same", False), ("same_upper", True)):
        rows = same_pads(input_hw[0], kernel[0], stride[0], upper=upper)
        cols = same_pads(input_hw[1], kernel[1], stride[1], upper=upper)
        if (top, bottom) == rows and (left, right) == cols:
            return mode
    return "valid" if pads == (0, 0, 0, 0) else "explicit"


def output_hw(c: LayerCandidate) -> tuple[int, int]:
    """(H, W) of the layer's output before any pooling: the convolution, a transposed 2× output,
    1×1 for a dense layer, the input size for Add and Concatenate."""
    if c.kind in ("conv2d_transpose", "depthwise_conv2d_transpose"):
        return (c.input_hw[0] * lim.TRANSPOSE_STRIDE, c.input_hw[1] * lim.TRANSPOSE_STRIDE)
    if c.kind == "dense1d":
        return (1, 1)
    if c.kind in ("add", "concatenate"):
        return c.input_hw
    top, left, bottom, right = candidate_pads(c)
    eff_kernel = _effective_kernel(c)
    height = (c.input_hw[0] + top + bottom - eff_kernel[0]) // c.stride[0] + 1
    width = (c.input_hw[1] + left + right - eff_kernel[1]) // c.stride[1] + 1
    return (max(height, 0), max(width, 0))


def pooled_hw(c: LayerCandidate) -> tuple[int, int]:
    """(H, W) after the fused max pooling (the input of a fused GAP): TF "SAME" pooling,
    `ceil(n / stride)`, after a padded convolution, valid pooling after a "valid" one."""
    height, width = output_hw(c)
    if c.pool is None:
        return (height, width)
    size_h, size_w, stride_h, stride_w = c.pool
    if c.padding == "valid":
        return (max((height - size_h) // stride_h + 1, 0), max((width - size_w) // stride_w + 1, 0))
    return (math.ceil(height / stride_h), math.ceil(width / stride_w))


def _effective_kernel(c: LayerCandidate) -> tuple[int, int]:
    return (
        (c.kernel[0] - 1) * c.dilation[0] + 1,
        (c.kernel[1] - 1) * c.dilation[1] + 1,
    )


# ---------------------------------------------------------------------------------------------
# How limits read in sentences
# ---------------------------------------------------------------------------------------------


def _square(n: int) -> str:
    return f"{n}×{n}"


def _pair(p: tuple[int, int] | list[int]) -> str:
    return f"{p[0]}×{p[1]}"


def _alternatives(items: list[str]) -> str:
    """`a`, `a or b`, `a, b or c`."""
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} or {items[-1]}"


_ACTIVATION_WORDS = {
    "none": "no activation",
    "relu": "ReLU",
    "relu_max": "ReLU with a maximum",
    "lut": f"a {lim.LUT_ENTRIES}-entry lookup table (`lut:<name>`)",
}


def doc_values(kind: str) -> dict[str, str]:
    """The limits of `kind` as words, for the `{placeholders}` of rule and hint sentences."""
    limits = LAYER_LIMITS[kind]
    pool_pairs = []
    for size in limits.pool_sizes:
        strides = [str(s) for sz, s in limits.max_pools if sz == size]
        pool_pairs.append(f"{_square(size)} with stride {_alternatives(strides)}")
    height = limits.input_height_range or (0, 0)
    return {
        "layer": limits.akida_layer,
        "kernels": _alternatives([_square(k) for k in limits.kernels]),
        "strides": "; ".join(
            f"{_square(k)}: {_alternatives([str(s) for s in strides])}"
            for k, strides in limits.strides_by_kernel.items()
        ),
        "same_upper_stride": str(lim.SAME_UPPER_STRIDE),
        "max_in_channels": str(limits.max_in_channels),
        "channel_table": _alternatives(
            [
                f"{v} ({_square(k)})"
                for k, v in limits.max_in_channels_by_kernel.items()
                if k in limits.kernels
            ]
        ),
        "in_channels": _alternatives([str(n) for n in limits.in_channels or ()]),
        "max_filters": str(limits.max_filters),
        "min_height": str(height[0]),
        "max_height": str(height[1]),
        "max_inputs": str(limits.max_input_features),
        "pool_sizes": _alternatives([_square(s) for s in limits.pool_sizes]),
        "pools": "; ".join(pool_pairs),
        "gap_area": str(lim.GAP_MAX_INPUT_AREA),
        "activations": _alternatives([_ACTIVATION_WORDS[a] for a in limits.activations]),
        "weight_bits": _alternatives([str(b) for b in lim.WEIGHT_BITS]),
        "act_bits": _alternatives([str(b) for b in lim.ACTIVATION_BITS]),
        "dtypes": _alternatives(list(limits.input_dtypes)),
        "merge_inputs": str(lim.MERGE_INPUTS),
        "concat_axis": str(limits.concat_axis),
    }


def _has_kernel(limits: LayerLimits) -> bool:
    return bool(limits.strides_by_kernel)


def _can_max_pool(limits: LayerLimits) -> bool:
    return bool(limits.max_pools)


def _bits_allowed(
    bits: int, allowed: tuple[int, ...], what: str, key: str, limits: LayerLimits
) -> Unmet | None:
    """`None` when `bits` is one of the `allowed` widths of the layer's `what` (weights or
    activations), else the `Unmet` that reports it under `key`."""
    if bits in allowed:
        return None
    return Unmet(
        f"has {bits}-bit {what}; {limits.akida_layer} {what} have "
        f"{_alternatives([str(b) for b in allowed])} bits",
        {key: bits, "allowed": list(allowed)},
    )


def _activation_family(activation: str) -> str | None:
    """ "relu", "relu_max", "none", "lut" (for `lut:<name>` with a name), else None."""
    if activation.startswith("lut:"):
        return "lut" if activation[len("lut:") :] else None
    return activation if activation in ("none", "relu", "relu_max") else None


# ---------------------------------------------------------------------------------------------
# The rules, in check order
# ---------------------------------------------------------------------------------------------


@constraint(
    "AK-KERNEL-SIZE",
    applies=_has_kernel,
    hint="use a {kernels} kernel, or accept CPU execution for this node",
)
def kernel_size_supported(c: LayerCandidate, limits: LayerLimits) -> Unmet | None:
    """{layer} kernels are square, of size {kernels}."""
    kh, kw = c.kernel
    if kh == kw and kh in limits.kernels:
        return None
    return Unmet(
        f"has kernel {_pair(c.kernel)}; {limits.akida_layer} supports "
        f"{_alternatives([_square(k) for k in limits.kernels])}",
        {"kernel": list(c.kernel), "allowed": list(limits.kernels)},
    )


@constraint(
    "AK-STRIDE",
    applies=_has_kernel,
    hint="use a supported stride ({strides}), or accept CPU execution for this node",
)
def stride_supported(c: LayerCandidate, limits: LayerLimits) -> Unmet | None:
    """{layer} strides are square and depend on the kernel size: {strides}."""
    sh, sw = c.stride
    kh, kw = c.kernel
    if kh == kw and kh in limits.strides_by_kernel:
        allowed = limits.strides_by_kernel[kh]
        for_what = f"with a {_square(kh)} kernel"
    else:
        allowed = tuple(sorted({s for ss in limits.strides_by_kernel.values() for s in ss}))
        for_what = "with any kernel"
    if sh == sw and sh in allowed:
        return None
    return Unmet(
        f"has stride {_pair(c.stride)} with a {_pair(c.kernel)} kernel; {limits.akida_layer} "
        f"supports stride {_alternatives([str(s) for s in allowed])} {for_what}",
        {"stride": list(c.stride), "kernel": list(c.kernel), "allowed": list(allowed)},
    )


@constraint(
    "AK-PADDING",
    applies=lambda limits: "same_upper" in limits.paddings,
    hint="export the layer with 'same' padding (PyTorch: padding=kernel//2 for odd kernels), "
    "or accept CPU execution for this node",
)
def padding_same(c: LayerCandidate, limits: LayerLimits) -> Unmet | None:
    """{layer} pads "same" (TF style: the odd extra pixel bottom/right), or "same upper" (extra
    pixel top/left) with stride {same_upper_stride}. Another padding ("valid", explicit pads, or
    "same upper" at another stride) is accepted only where it pads exactly what "same" pads, as
    "valid" does for a 1×1 kernel: then it is the same layer."""
    if c.padding == "same":
        return None
    if c.padding == "same_upper" and c.stride == (lim.SAME_UPPER_STRIDE, lim.SAME_UPPER_STRIDE):
        return None
    same = candidate_pads(c, "same")
    actual = candidate_pads(c)
    if actual == same:
        return None
    return Unmet(
        f'has padding "{c.padding}" (pads top, left, bottom, right = {list(actual)}) with stride '
        f'{_pair(c.stride)}; {limits.akida_layer} pads "same" ({list(same)} here), or "same upper" '
        f"with stride {lim.SAME_UPPER_STRIDE}",
        {"padding": c.padding, "pads": list(actual), "same_pads": list(same)},
    )


@constraint(
    "AK-PADDING",
    applies=lambda limits: limits.paddings == ("same",),
    hint="export the transposed convolution so that its output is exactly twice its input",
)
def transposed_padding_same(c: LayerCandidate, limits: LayerLimits) -> Unmet | None:
    """{layer} has "same" padding only: its output is exactly 2H × 2W."""
    if c.padding == "same":
        return None
    return Unmet(
        f'has padding "{c.padding}" (pads {list(c.pads)}); {limits.akida_layer} only produces '
        'exactly 2H × 2W outputs ("same")',
        {"padding": c.padding, "pads": list(c.pads)},
    )


@constraint(
    "AK-DILATION",
    applies=_has_kernel,
    hint="use an undilated kernel, or accept CPU execution for this node",
)
def no_dilation(c: LayerCandidate, limits: LayerLimits) -> Unmet | None:
    """{layer} has no dilation: the dilation is 1×1."""
    if c.dilation == (1, 1):
        return None
    return Unmet(
        f"has dilation {_pair(c.dilation)}; {limits.akida_layer} supports only 1×1",
        {"dilation": list(c.dilation), "allowed": [1, 1]},
    )


@constraint(
    "AK-GROUPS",
    applies=lambda limits: _has_kernel(limits) and not limits.depthwise,
    hint="use a full (groups=1) or depthwise convolution, or accept CPU execution for this node",
)
def full_conv_groups(c: LayerCandidate, limits: LayerLimits) -> Unmet | None:
    """{layer} is a full convolution: groups is 1."""
    if c.groups == 1:
        return None
    return Unmet(
        f"has groups={c.groups}; {limits.akida_layer} needs groups=1",
        {"groups": c.groups, "allowed": 1},
    )


@constraint(
    "AK-GROUPS",
    applies=lambda limits: limits.depthwise,
    hint="use a depthwise convolution with multiplier 1, or accept CPU execution for this node",
)
def depthwise_groups(c: LayerCandidate, limits: LayerLimits) -> Unmet | None:
    """{layer} convolves each channel with its own kernel: groups equals the input channels and
    there is one output channel per input channel (depth multiplier 1)."""
    if c.groups == c.in_channels == c.filters:
        return None
    return Unmet(
        f"has groups={c.groups}, {c.in_channels} input and {c.filters} output channels; "
        f"{limits.akida_layer} needs groups = input channels = output channels",
        {"groups": c.groups, "in_channels": c.in_channels, "filters": c.filters},
    )


@constraint(
    "AK-CHANNELS",
    applies=lambda limits: limits.max_in_channels is not None,
    hint="reduce the input channels (e.g. a 1×1 convolution first), or accept CPU execution",
)
def in_channels_limit(c: LayerCandidate, limits: LayerLimits) -> Unmet | None:
    """{layer} reads at most {max_in_channels} input channels."""
    if limits.max_in_channels is None or c.in_channels <= limits.max_in_channels:
        return None
    return Unmet(
        f"has {c.in_channels} input channels; {limits.akida_layer} reads at most "
        f"{limits.max_in_channels}",
        {"in_channels": c.in_channels, "limit": limits.max_in_channels},
    )


@constraint(
    "AK-CHANNELS",
    applies=lambda limits: bool(limits.max_in_channels_by_kernel),
    hint="reduce the input channels or use a smaller kernel, or accept CPU execution",
)
def in_channels_by_kernel(c: LayerCandidate, limits: LayerLimits) -> Unmet | None:
    """*Empirical*: a {layer} reads at most {channel_table} input channels, the channels for
    which one group of 8 filters still fits one NP's weight memory. Measured on Conv2D; akidac
    applies it to Conv2DTranspose too, whose weights are laid out alike (the stricter reading).
    Depthwise layers are not limited this way."""
    limit = (
        limits.max_in_channels_by_kernel.get(c.kernel[0]) if c.kernel[0] == c.kernel[1] else None
    )
    if limit is None or c.in_channels <= limit:
        return None
    return Unmet(
        f"has {c.in_channels} input channels with a {_pair(c.kernel)} kernel; "
        f"{limits.akida_layer} reads at most {limit} with that kernel",
        {"in_channels": c.in_channels, "kernel": list(c.kernel), "limit": limit},
    )


@constraint(
    "AK-INPUT-CONV-CHANNELS",
    applies=lambda limits: limits.in_channels is not None,
    hint="feed a grayscale or RGB image, or run the first layer as a regular Conv2D",
)
def input_conv_channels(c: LayerCandidate, limits: LayerLimits) -> Unmet | None:
    """{layer} reads {in_channels} channels: a grayscale or RGB image."""
    allowed = limits.in_channels or ()
    if c.in_channels in allowed:
        return None
    return Unmet(
        f"has {c.in_channels} input channels; {limits.akida_layer} reads "
        f"{_alternatives([str(n) for n in allowed])}",
        {"in_channels": c.in_channels, "allowed": list(allowed)},
    )


@constraint(
    "AK-FILTERS",
    applies=lambda limits: True,
    hint="reduce the output channels or split the layer in two, or accept CPU execution",
)
def filters_limit(c: LayerCandidate, limits: LayerLimits) -> Unmet | None:
    """{layer} produces at most {max_filters} output channels."""
    if c.filters <= limits.max_filters:
        return None
    return Unmet(
        f"has {c.filters} output channels; {limits.akida_layer} produces at most "
        f"{limits.max_filters}",
        {"filters": c.filters, "limit": limits.max_filters},
    )


@constraint(
    "AK-INPUT-CONV-HEIGHT",
    applies=lambda limits: limits.input_height_range is not None,
    hint="resize the input image (--input-shape) to {min_height}–{max_height} rows",
)
def input_conv_height(c: LayerCandidate, limits: LayerLimits) -> Unmet | None:
    """{layer} reads images {min_height} to {max_height} rows high."""
    low, high = limits.input_height_range or (0, 0)
    if low <= c.input_hw[0] <= high:
        return None
    return Unmet(
        f"has an input {c.input_hw[0]} rows high; {limits.akida_layer} reads {low} to {high} rows",
        {"height": c.input_hw[0], "allowed": [low, high]},
    )


@constraint(
    "AK-DENSE-INPUTS",
    applies=lambda limits: limits.max_input_features is not None,
    hint="reduce the features before the dense layer (pooling or a 1×1 convolution)",
)
def dense_inputs_limit(c: LayerCandidate, limits: LayerLimits) -> Unmet | None:
    """{layer} reads at most {max_inputs} flattened inputs (H × W × C)."""
    limit = limits.max_input_features or 0
    if c.input_features <= limit:
        return None
    return Unmet(
        f"has {c.input_features} flattened inputs; {limits.akida_layer} reads at most {limit}",
        {"input_features": c.input_features, "limit": limit},
    )


@constraint(
    "AK-POOL-UNSUPPORTED",
    applies=lambda limits: not limits.max_pools and not limits.gap,
    hint="keep the pooling as a separate node (it runs on the CPU)",
)
def no_pooling(c: LayerCandidate, limits: LayerLimits) -> Unmet | None:
    """{layer} fuses no pooling: neither max pooling nor global average pooling (its parameters
    have no pooling stage)."""
    if c.pool is None and not c.gap:
        return None
    what = "max pooling" if c.pool is not None else "global average pooling"
    return Unmet(
        f"fuses {what}; {limits.akida_layer} has no pooling stage",
        {"pool": list(c.pool) if c.pool else None, "gap": c.gap},
    )


@constraint(
    "AK-POOL-SIZE",
    applies=_can_max_pool,
    hint="use {pool_sizes} max pooling, or keep the pooling on the CPU",
)
def pool_size_supported(c: LayerCandidate, limits: LayerLimits) -> Unmet | None:
    """{layer} fuses square max pooling of size {pool_sizes}."""
    if c.pool is None:
        return None
    size_h, size_w = c.pool[0], c.pool[1]
    if size_h == size_w and size_h in limits.pool_sizes:
        return None
    return Unmet(
        f"has max pooling {size_h}×{size_w}; {limits.akida_layer} fuses "
        f"{_alternatives([_square(s) for s in limits.pool_sizes])}",
        {"pool_size": [size_h, size_w], "allowed": list(limits.pool_sizes)},
    )


@constraint(
    "AK-POOL-STRIDE",
    applies=_can_max_pool,
    hint="use a supported pooling stride ({pools}), or keep the pooling on the CPU",
)
def pool_stride_supported(c: LayerCandidate, limits: LayerLimits) -> Unmet | None:
    """{layer} max pooling has a square stride allowed for its size: {pools}."""
    if c.pool is None:
        return None
    size_h, size_w, stride_h, stride_w = c.pool
    by_size = [s for size, s in limits.max_pools if size == size_h and size_h == size_w]
    allowed = by_size or sorted({s for _, s in limits.max_pools})
    if stride_h == stride_w and stride_h in allowed:
        return None
    return Unmet(
        f"has max-pooling stride {stride_h}×{stride_w} with size {size_h}×{size_w}; "
        f"{limits.akida_layer} pools with stride {_alternatives([str(s) for s in allowed])} there",
        {"pool_stride": [stride_h, stride_w], "pool_size": [size_h, size_w], "allowed": allowed},
    )


@constraint(
    "AK-POOL-WITH-STRIDE2",
    applies=_can_max_pool,
    hint="use a stride-1 convolution before the pooling, or keep the pooling on the CPU",
)
def pool_not_with_strided_conv(c: LayerCandidate, limits: LayerLimits) -> Unmet | None:
    """{layer} fuses max pooling only when its own stride is 1. Akida's hardware rules say "not
    with a stride-2 conv"; akidac applies it to every stride above 1, on the input convolution
    too (the stricter reading)."""
    if c.pool is None or c.stride == (1, 1):
        return None
    return Unmet(
        f"fuses max pooling after stride {_pair(c.stride)}; {limits.akida_layer} pools only "
        "after stride 1",
        {"stride": list(c.stride), "pool": list(c.pool)},
    )


@constraint(
    "AK-POOL-WITH-LUT",
    applies=_can_max_pool,
    hint="use ReLU with this pooling, or keep the pooling on the CPU",
)
def pool_not_with_lut(c: LayerCandidate, limits: LayerLimits) -> Unmet | None:
    """{layer} cannot fuse max pooling together with a lookup-table activation."""
    if c.pool is None or _activation_family(c.activation) != "lut":
        return None
    return Unmet(
        f"fuses max pooling with the lookup-table activation {c.activation}; "
        f"{limits.akida_layer} pools only with ReLU",
        {"activation": c.activation, "pool": list(c.pool)},
    )


@constraint(
    "AK-POOL-WITHOUT-ACTIVATION",
    applies=_can_max_pool,
    hint="keep the pooling on the CPU, or give the layer a ReLU activation",
)
def pool_needs_activation(c: LayerCandidate, limits: LayerLimits) -> Unmet | None:
    """{layer} fuses max pooling only together with an activation: the hardware rules forbid max
    pooling without one (the vendor's software engine accepts it)."""
    if c.pool is None or c.activation != "none":
        return None
    return Unmet(
        f"fuses max pooling without an activation; {limits.akida_layer} pools only with ReLU",
        {"activation": c.activation, "pool": list(c.pool)},
    )


@constraint(
    "AK-POOL-AND-GAP",
    applies=lambda limits: _can_max_pool(limits) and limits.gap,
    hint="keep one of the two poolings as a separate node",
)
def pool_or_gap(c: LayerCandidate, limits: LayerLimits) -> Unmet | None:
    """{layer} has one pooling stage: max pooling or global average pooling, not both.
    The hardware's fusion order lists both, but the layer's single `pool_type` parameter holds
    one (the stricter reading)."""
    if c.pool is None or not c.gap:
        return None
    return Unmet(
        f"fuses both max pooling and global average pooling; {limits.akida_layer} fuses one",
        {"pool": list(c.pool), "gap": c.gap},
    )


@constraint(
    "AK-GAP-SIZE",
    applies=lambda limits: limits.gap,
    hint="downsample further before the global pooling, or keep it on the CPU",
)
def gap_size_limit(c: LayerCandidate, limits: LayerLimits) -> Unmet | None:
    """{layer} fuses global average pooling over at most H × W = {gap_area} positions (the
    layer's output, after any max pooling)."""
    if not c.gap:
        return None
    height, width = pooled_hw(c)
    if height * width <= lim.GAP_MAX_INPUT_AREA:
        return None
    return Unmet(
        f"has global average pooling over {height}×{width} = {height * width} positions; "
        f"{limits.akida_layer} pools at most {lim.GAP_MAX_INPUT_AREA}",
        {"gap_hw": [height, width], "limit": lim.GAP_MAX_INPUT_AREA},
    )


@constraint(
    "AK-ACTIVATION",
    applies=lambda limits: True,
    hint="use one of: {activations}; or accept CPU execution for the activation",
)
def activation_supported(c: LayerCandidate, limits: LayerLimits) -> Unmet | None:
    """{layer} fuses {activations}."""
    if _activation_family(c.activation) in limits.activations:
        return None
    return Unmet(
        f"has activation {c.activation!r}; {limits.akida_layer} fuses "
        f"{_alternatives([_ACTIVATION_WORDS[a] for a in limits.activations])}",
        {"activation": c.activation, "allowed": list(limits.activations)},
    )


@constraint(
    "AK-BITS",
    applies=lambda limits: limits.has_weights,
    hint="choose weights of {weight_bits} bits",
)
def weight_bits_supported(c: LayerCandidate, limits: LayerLimits) -> Unmet | None:
    """{layer} weights have {weight_bits} bits."""
    return _bits_allowed(c.weight_bits, lim.WEIGHT_BITS, "weights", "weight_bits", limits)


@constraint(
    "AK-BITS",
    applies=lambda limits: limits.has_weights,
    hint="use weights no wider than the activations (e.g. 4-bit weights with 4-bit activations)",
)
def input_bits_cover_weight_bits(c: LayerCandidate, limits: LayerLimits) -> Unmet | None:
    """The input of a {layer} has at least as many bits as its weights."""
    if c.input_bits >= c.weight_bits:
        return None
    return Unmet(
        f"reads {c.input_bits}-bit inputs with {c.weight_bits}-bit weights; "
        f"{limits.akida_layer} needs input bits ≥ weight bits",
        {"input_bits": c.input_bits, "weight_bits": c.weight_bits},
    )


@constraint(
    "AK-BITS",
    applies=lambda limits: True,
    hint="choose activations of {act_bits} bits",
)
def activation_bits_supported(c: LayerCandidate, limits: LayerLimits) -> Unmet | None:
    """{layer} activations have {act_bits} bits."""
    return _bits_allowed(c.act_bits, lim.ACTIVATION_BITS, "activations", "act_bits", limits)


@constraint(
    "AK-DTYPE",
    applies=lambda limits: True,
    hint="feed a {dtypes} tensor, or accept CPU execution for this node",
)
def input_dtype_supported(c: LayerCandidate, limits: LayerLimits) -> Unmet | None:
    """{layer} reads {dtypes} inputs; floats are quantized on the host at the region border."""
    if c.input_dtype in limits.input_dtypes:
        return None
    return Unmet(
        f"reads {c.input_dtype} inputs; {limits.akida_layer} reads "
        f"{_alternatives(list(limits.input_dtypes))}",
        {"input_dtype": c.input_dtype, "allowed": list(limits.input_dtypes)},
    )


@constraint(
    "AK-MERGE-INPUT-COUNT",
    applies=lambda limits: limits.merges,
    hint="chain two-input merges instead",
)
def merge_two_inputs(c: LayerCandidate, limits: LayerLimits) -> Unmet | None:
    """{layer} merges exactly {merge_inputs} inputs."""
    if c.num_inputs == lim.MERGE_INPUTS:
        return None
    return Unmet(
        f"has {c.num_inputs} inputs; {limits.akida_layer} merges exactly {lim.MERGE_INPUTS}",
        {"num_inputs": c.num_inputs, "allowed": lim.MERGE_INPUTS},
    )


@constraint(
    "AK-CONCAT-AXIS",
    applies=lambda limits: limits.concat_axis is not None,
    hint="concatenate on the channel axis, or accept CPU execution for this node",
)
def concat_on_channels(c: LayerCandidate, limits: LayerLimits) -> Unmet | None:
    """{layer} joins its inputs on the channel axis (axis {concat_axis} of NCHW)."""
    if c.axis == limits.concat_axis:
        return None
    return Unmet(
        f"concatenates on axis {c.axis}; {limits.akida_layer} joins channels "
        f"(axis {limits.concat_axis})",
        {"axis": c.axis, "allowed": limits.concat_axis},
    )
