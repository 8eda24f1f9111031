"""Every numeric and enumerated limit of the Akida 2 target, as named constants and per-kind tables.

The source is the team's description of the chip (`AKIDA.md`, cited by section) and the vendor
engine's measured behaviour (`vectors/README.md`, cited as "vectors"); a value marked *empirical*
was measured, not read from a datasheet. Legality (`constraints`), resource estimates
(`footprint`), the IR verifier, the quantizer and the generated docs all read this module, so a
limit changes in exactly one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

# ---------------------------------------------------------------------------------------------
# The machine (AKIDA.md, "The machine")
# ---------------------------------------------------------------------------------------------

#: neural processors per node.
NPS_PER_NODE: Final = 4
#: input/activation SRAM of one NP (v2): 64 KiB.
INPUT_SRAM_PER_NP_BYTES: Final = 64 * 1024
#: weight memory of one NP: 4096 words of 100 bits.
WEIGHT_WORDS_PER_NP: Final = 4096
WEIGHT_WORD_BITS: Final = 100
WEIGHT_BITS_PER_NP: Final = WEIGHT_WORDS_PER_NP * WEIGHT_WORD_BITS  # 409,600 bits
WEIGHT_BYTES_PER_NP: Final = WEIGHT_BITS_PER_NP // 8  # 51,200 bytes, as AKIDA.md states
#: on-chip weights of an FNP3: "about 48 KB"; the stricter reading is 48,000 bytes (not 48 KiB).
FNP3_WEIGHT_BYTES: Final = 48_000
#: weight slots of a CNP kernel row: 3×3 rows take 25 bits, 5×5 rows 50 bits, 7×7 rows 100 bits
#: (AKIDA.md, "The machine", weight footprint).
WEIGHT_SLOT_BITS: Final = (25, 50, 100)
#: filters are stored in groups of 8: the `ceil8(filters)` of the footprint formula.
WEIGHT_FILTER_GROUP: Final = 8
#: a dense layer stores `units × (inputs + 8)` bytes: 8 bytes per unit besides its weights.
DENSE_BYTES_PER_UNIT_OVERHEAD: Final = 8
#: splitting a layer over NPs: at most 512 filters per NP, input column strips of at most 64
#: columns plus the kernel halo, row strips of at most 256 rows (AKIDA.md, "The machine").
MAX_FILTERS_PER_NP: Final = 512
MAX_STRIP_COLUMNS: Final = 64
MAX_STRIP_ROWS: Final = 256
#: a single-pass program pipelines up to 16 batches; a multi-pass program runs batch 1 only.
MAX_PIPELINED_BATCH: Final = 16
MULTIPASS_MAX_BATCH: Final = 1

# ---------------------------------------------------------------------------------------------
# Layer kinds and their vocabulary (AKIDA.md, "Layers")
# ---------------------------------------------------------------------------------------------

#: the layer kinds a legal Akida layer can have, in the order of AKIDA.md's table.
KINDS: Final = (
    "input_conv2d",
    "conv2d",
    "depthwise_conv2d",
    "conv2d_transpose",
    "depthwise_conv2d_transpose",
    "dense1d",
    "add",
    "concatenate",
)
#: padding modes a candidate may carry: "same" puts the odd extra pixel bottom/right,
#: "same_upper" top/left (vectors, "Padding"), "valid" pads nothing, "explicit" is anything else.
PADDINGS: Final = ("same", "same_upper", "valid", "explicit")
#: activation families: none, ReLU, ReLU with a maximum, or a lookup table (written "lut:<name>").
ACTIVATIONS: Final = ("none", "relu", "relu_max", "lut")
#: input element types akidac can bring onto the chip: floats are quantized on the host at the
#: region border (AKIDA.md, "Layers": Quantizer at the borders), 8-bit integers are read as they
#: are. Names are NumPy's.
FLOAT_DTYPES: Final = ("float32", "float16", "bfloat16", "float64")
INTEGER_INPUT_DTYPES: Final = ("int8", "uint8")
#: the model input of the chip is uint8 (AKIDA.md, "Numbers").
MODEL_INPUT_DTYPE: Final = "uint8"

# ---------------------------------------------------------------------------------------------
# Channels and filters (AKIDA.md, "Layers")
# ---------------------------------------------------------------------------------------------

MAX_IN_CHANNELS: Final = 2048
MAX_FILTERS: Final = 2048
#: *empirical* per-layer input-channel limit by kernel size. These are exactly the channels for
#: which 8 filters (one `ceil8` group) still fit one NP's weight memory:
#: floor(409,600 / (8 × K × slot(K))) = 682, 204, 73 for K = 3, 5, 7. Measured on Conv2D.
EMPIRICAL_MAX_IN_CHANNELS_BY_KERNEL: Final = MappingProxyType({3: 682, 5: 204, 7: 73})

# ---------------------------------------------------------------------------------------------
# Per-kind geometry (AKIDA.md, "Layers" table)
# ---------------------------------------------------------------------------------------------

#: Conv2D: kernel 1/3/5/7; stride 1 or 2, 2 only for kernels 1 and 3.
CONV_STRIDES_BY_KERNEL: Final = MappingProxyType({1: (1, 2), 3: (1, 2), 5: (1,), 7: (1,)})
#: "same upper" padding is allowed with stride 2 (TF-style) only.
SAME_UPPER_STRIDE: Final = 2
#: DepthwiseConv2D: kernel 3/5/7; stride 2 only for kernel 3.
DEPTHWISE_STRIDES_BY_KERNEL: Final = MappingProxyType({3: (1, 2), 5: (1,), 7: (1,)})
#: Conv2DTranspose and DepthwiseConv2DTranspose: kernel 3 or 4, stride 2 (output exactly 2H × 2W).
TRANSPOSE_STRIDE: Final = 2
TRANSPOSE_STRIDES_BY_KERNEL: Final = MappingProxyType({3: (2,), 4: (2,)})
#: InputConv2D: 1 or 3 input channels, uint8 input, kernel 3/4/5/7, stride ≤ min(kernel, 6),
#: ≤ 512 filters, input height 5–384, max pooling only 2×2 or 3×3 with stride 2.
INPUT_CONV_CHANNELS: Final = (1, 3)
INPUT_CONV_KERNELS: Final = (3, 4, 5, 7)
INPUT_CONV_MAX_STRIDE: Final = 6
INPUT_CONV_STRIDES_BY_KERNEL: Final = MappingProxyType(
    {k: tuple(range(1, min(k, INPUT_CONV_MAX_STRIDE) + 1)) for k in INPUT_CONV_KERNELS}
)
INPUT_CONV_MAX_FILTERS: Final = 512
INPUT_CONV_MIN_HEIGHT: Final = 5
INPUT_CONV_MAX_HEIGHT: Final = 384
#: (pool size, pool stride) pairs the input conv can fuse.
INPUT_CONV_MAX_POOLS: Final = ((2, 2), (3, 2))
#: Dense1D: flattened input ≤ 2048.
DENSE_MAX_INPUTS: Final = 2048

# ---------------------------------------------------------------------------------------------
# Fusion: pooling and activation (AKIDA.md, "Layers", fusion rules)
# ---------------------------------------------------------------------------------------------

#: max pooling of a CNP layer: size 1 or 2, stride ≤ size.
MAX_POOL_SIZES: Final = (1, 2)
CNP_MAX_POOLS: Final = tuple(
    (size, stride) for size in MAX_POOL_SIZES for stride in range(1, size + 1)
)
#: global average pooling needs H × W ≤ 144 at its input.
GAP_MAX_INPUT_AREA: Final = 144
#: the lookup-table activation has 2048 entries, indexed by an 11-bit signed index.
LUT_ENTRIES: Final = 2048
LUT_INDEX_MIN: Final = -1024
LUT_INDEX_MAX: Final = 1023
#: the entry of index 0 (index i reads entry i + LUT_OFFSET) and the index width in bits.
LUT_OFFSET: Final = -LUT_INDEX_MIN
LUT_INDEX_BITS: Final = (LUT_ENTRIES - 1).bit_length()

# ---------------------------------------------------------------------------------------------
# Numbers (AKIDA.md, "Numbers (quantization)" and "The integer pipeline of one CNP/FNP layer")
# ---------------------------------------------------------------------------------------------

#: weights: 4 or 8 bits, symmetric, per output channel; input bits ≥ weight bits.
WEIGHT_BITS: Final = (4, 8)
#: activations after an activation function: 4 or 8 bits.
ACTIVATION_BITS: Final = (4, 8)
#: a layer without activation outputs 8 bits, or 28 bits (32 for Dense1D) when it feeds the host.
LINEAR_OUTPUT_BITS: Final = 8
HOST_OUTPUT_BITS: Final = 28
DENSE_HOST_OUTPUT_BITS: Final = 32
#: output ranges: 8-bit activated outputs are int8 0..127; 4-bit outputs are uint8 0..15.
RELU8_OUTPUT_RANGE: Final = (0, 127)
ACT4_OUTPUT_RANGE: Final = (0, 15)
#: accumulator ("buffer_bits"): 28 bits for CNP/FNP layers, 32 for InputConv2D and Add (vectors);
#: the post-operation width is 32 bits.
ACCUMULATOR_BITS: Final = 28
INPUT_CONV_ACCUMULATOR_BITS: Final = 32
ADD_ACCUMULATOR_BITS: Final = 32
POST_OP_BITS: Final = 32
#: bias and ReLU maximum are an 8-bit mantissa with a left shift; the output scale an unsigned
#: 8-bit multiplier with a shift.
SCALE_MANTISSA_BITS: Final = 8
#: output shift range: the engine crashes on −32, so akidac never emits a shift below −31.
OUTPUT_SHIFT_MIN: Final = -31
OUTPUT_SHIFT_MAX: Final = 31
#: Add: −4 ≤ out_shift + max(a_shift, b_shift) ≤ 3; its input scales are powers of two.
ADD_SHIFT_SUM_MIN: Final = -4
ADD_SHIFT_SUM_MAX: Final = 3

# ---------------------------------------------------------------------------------------------
# Graph rules (AKIDA.md, "Layers", graph rules)
# ---------------------------------------------------------------------------------------------

#: a layer has at most 2 consumers.
MAX_CONSUMERS: Final = 2
#: a mapped program has one output.
PROGRAM_OUTPUTS: Final = 1
#: Add and Concatenate take exactly 2 inputs.
MERGE_INPUTS: Final = 2
#: Concatenate joins its inputs on the channel axis: axis 1 of an NCHW (or N, C) tensor.
CONCAT_AXIS: Final = 1
#: the only Resize Akida runs is nearest-neighbour 2× upsampling (as a transposed depthwise conv).
RESIZE_SCALE: Final = 2
RESIZE_MODE: Final = "nearest"


@dataclass(frozen=True)
class LayerLimits:
    """The limits of one layer kind, gathered from the constants above.

    `strides_by_kernel` maps each allowed square kernel size to its allowed square strides (empty
    for kinds without a kernel). `max_pools` lists the allowed (size, stride) max-pooling pairs
    (empty: the kind fuses no max pooling). `max_in_channels_by_kernel` holds the empirical
    channel limits that apply to this kind; `in_channels` the only channel counts allowed (the
    input conv). `merges` marks Add and Concatenate; `concat_axis` is Concatenate's axis.
    """

    kind: str
    akida_layer: str
    np_type: str
    strides_by_kernel: MappingProxyType[int, tuple[int, ...]]
    paddings: tuple[str, ...]
    in_channels: tuple[int, ...] | None
    max_in_channels: int | None
    max_in_channels_by_kernel: MappingProxyType[int, int]
    max_filters: int
    depthwise: bool
    has_weights: bool
    max_pools: tuple[tuple[int, int], ...]
    gap: bool
    activations: tuple[str, ...]
    input_dtypes: tuple[str, ...]
    input_height_range: tuple[int, int] | None = None
    max_input_features: int | None = None
    merges: bool = False
    concat_axis: int | None = None

    @property
    def kernels(self) -> tuple[int, ...]:
        """The allowed (square) kernel sizes."""
        return tuple(self.strides_by_kernel)

    @property
    def pool_sizes(self) -> tuple[int, ...]:
        """The allowed (square) max-pooling sizes."""
        return tuple(sorted({size for size, _ in self.max_pools}))


_NO_KERNEL: Final[MappingProxyType[int, tuple[int, ...]]] = MappingProxyType({})
_NO_CHANNEL_TABLE: Final[MappingProxyType[int, int]] = MappingProxyType({})
_CHIP_INPUT_DTYPES: Final = FLOAT_DTYPES + INTEGER_INPUT_DTYPES
#: the input conv reads uint8 images; a float model input is quantized to uint8 on the host.
_INPUT_CONV_DTYPES: Final = (*FLOAT_DTYPES, MODEL_INPUT_DTYPE)
_SAME_PADDINGS: Final = ("same", "same_upper")
#: what a kind has unless its entry in `LAYER_LIMITS` says otherwise: a CNP layer with weights
#: and no kernel, any channel count up to the maximum, every activation, no pooling.
_USUAL_LIMITS: Final = MappingProxyType(
    {
        "np_type": "CNP",
        "strides_by_kernel": _NO_KERNEL,
        "paddings": (),
        "in_channels": None,
        "max_in_channels": MAX_IN_CHANNELS,
        "max_in_channels_by_kernel": _NO_CHANNEL_TABLE,
        "max_filters": MAX_FILTERS,
        "depthwise": False,
        "has_weights": True,
        "max_pools": (),
        "gap": False,
        "activations": ACTIVATIONS,
        "input_dtypes": _CHIP_INPUT_DTYPES,
    }
)


def _limits(kind: str, akida_layer: str, **unusual: Any) -> LayerLimits:
    """The limits of `kind`: the `unusual` ones as given, every other one from `_USUAL_LIMITS`."""
    return LayerLimits(kind=kind, akida_layer=akida_layer, **{**_USUAL_LIMITS, **unusual})


#: the limits of every layer kind, by kind name. Which kinds fuse pooling follows the vendor
#: engine's parameters (vectors): only InputConv2D, Conv2D and DepthwiseConv2D carry `pool_type`
#: (Max or Average = GAP); Add and Concatenate carry no activation.
LAYER_LIMITS: Final[MappingProxyType[str, LayerLimits]] = MappingProxyType(
    {
        limits.kind: limits
        for limits in (
            _limits(
                "input_conv2d",
                "InputConv2D",
                np_type="HRC",
                strides_by_kernel=INPUT_CONV_STRIDES_BY_KERNEL,
                paddings=_SAME_PADDINGS,
                in_channels=INPUT_CONV_CHANNELS,
                max_in_channels=None,
                max_filters=INPUT_CONV_MAX_FILTERS,
                max_pools=INPUT_CONV_MAX_POOLS,
                gap=True,
                input_dtypes=_INPUT_CONV_DTYPES,
                input_height_range=(INPUT_CONV_MIN_HEIGHT, INPUT_CONV_MAX_HEIGHT),
            ),
            _limits(
                "conv2d",
                "Conv2D",
                strides_by_kernel=CONV_STRIDES_BY_KERNEL,
                paddings=_SAME_PADDINGS,
                max_in_channels_by_kernel=EMPIRICAL_MAX_IN_CHANNELS_BY_KERNEL,
                max_pools=CNP_MAX_POOLS,
                gap=True,
            ),
            _limits(
                "depthwise_conv2d",
                "DepthwiseConv2D",
                strides_by_kernel=DEPTHWISE_STRIDES_BY_KERNEL,
                paddings=_SAME_PADDINGS,
                depthwise=True,
                max_pools=CNP_MAX_POOLS,
                gap=True,
            ),
            _limits(
                "conv2d_transpose",
                "Conv2DTranspose",
                strides_by_kernel=TRANSPOSE_STRIDES_BY_KERNEL,
                paddings=("same",),
                max_in_channels_by_kernel=EMPIRICAL_MAX_IN_CHANNELS_BY_KERNEL,
            ),
            _limits(
                "depthwise_conv2d_transpose",
                "DepthwiseConv2DTranspose",
                strides_by_kernel=TRANSPOSE_STRIDES_BY_KERNEL,
                paddings=("same",),
                depthwise=True,
            ),
            _limits(
                "dense1d",
                "Dense1D",
                np_type="FNP",
                max_in_channels=None,
                max_input_features=DENSE_MAX_INPUTS,
            ),
            _limits("add", "Add", has_weights=False, activations=("none",), merges=True),
            _limits(
                "concatenate",
                "Concatenate",
                has_weights=False,
                activations=("none",),
                merges=True,
                concat_axis=CONCAT_AXIS,
            ),
        )
    }
)
