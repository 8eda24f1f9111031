"""The registry of every stable reason code akidac emits, with its title, meaning and remedy.

A reason code (`AK-KERNEL-SIZE`) is the machine-readable half of a diagnostic: reports, JSON
output and CI filters key on it, so codes never change meaning once published. Layer-legality
codes are emitted by `constraints`; the others by the passes, the allocator and the error
classes. `docs/reason-codes.md` is generated from this registry (`docgen`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from akidac.target import limits as lim


@dataclass(frozen=True)
class ReasonCode:
    """One stable reason code: `code` is `AK-…`, `title` a short phrase, `description` what the
    rule is and why it exists, `hint` what the user can do, `category` a key of `CATEGORIES`."""

    code: str
    title: str
    description: str
    hint: str
    category: str


#: the categories of reason codes, in documentation order, with their headings.
CATEGORIES: Final = MappingProxyType(
    {
        "layer": "Layer legality (one candidate Akida layer)",
        "op": "ONNX operators",
        "region": "Regions and graph structure",
        "quantization": "Quantization",
        "device": "Device and mapping",
        "error": "Errors (process exit codes)",
        "notice": "Notes and warnings (compilation goes on)",
        "user": "Choices of the user",
    }
)

_registry: dict[str, ReasonCode] = {}


def _register(code: str, category: str, title: str, description: str, hint: str) -> None:
    if code in _registry:
        raise ValueError(f"reason code {code} is registered twice")
    if category not in CATEGORIES:
        raise ValueError(f"reason code {code} has unknown category {category!r}")
    _registry[code] = ReasonCode(code, title, description, hint, category)


def _listing(items: Iterable[object], last_word: str = "or") -> str:
    """`a`, `a or b`, `a, b or c` (or `and`)."""
    words = [str(item) for item in items]
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} {last_word} {words[-1]}"


# --- layer legality ---------------------------------------------------------------------------
_register(
    "AK-KERNEL-SIZE",
    "layer",
    "Kernel size not supported",
    "Akida layers have square kernels of a few fixed sizes, which depend on the layer kind "
    f"(Conv2D {_listing(lim.LAYER_LIMITS['conv2d'].kernels)}; DepthwiseConv2D "
    f"{_listing(lim.LAYER_LIMITS['depthwise_conv2d'].kernels)}; transposed convolutions "
    f"{_listing(lim.TRANSPOSE_STRIDES_BY_KERNEL)}; InputConv2D "
    f"{_listing(lim.INPUT_CONV_KERNELS)}).",
    "Use a supported kernel size (e.g. 3×3), or accept CPU execution for this node.",
)
_register(
    "AK-STRIDE",
    "layer",
    "Stride not supported",
    "Strides are square, and each layer kind allows a few strides per kernel size (the rules "
    "below give them); Conv2D and DepthwiseConv2D downsample by 2 only with small kernels, "
    "transposed convolutions always upsample by 2.",
    "Use stride 1 (and downsample with a 3×3 stride-2 layer or pooling), or accept CPU "
    "execution for this node.",
)
_register(
    "AK-PADDING",
    "layer",
    "Padding not supported",
    "Convolutions pad 'same' (TF style, the odd extra pixel bottom/right); a "
    f"stride-{lim.SAME_UPPER_STRIDE} layer may pad 'same upper' (extra pixel top/left). There is "
    "no 'valid' padding (except where it pads "
    "exactly what 'same' pads) and no arbitrary explicit padding. Transposed convolutions "
    "produce exactly 2H × 2W.",
    "Export the convolution with 'same' padding (PyTorch: padding=kernel//2 for odd kernels), "
    "or accept CPU execution for this node.",
)
_register(
    "AK-DILATION",
    "layer",
    "Dilation not supported",
    "Akida layers have no dilation: the kernel, stride and padding are all a layer can say.",
    "Replace the dilated convolution by an undilated one, or accept CPU execution for it.",
)
_register(
    "AK-GROUPS",
    "layer",
    "Grouped convolution not supported",
    "A convolution is either full (groups = 1) or depthwise (groups = input channels, one "
    "output channel per input channel); other group counts and depth multipliers have no Akida "
    "layer.",
    "Use a full or a depthwise (multiplier 1) convolution, or accept CPU execution.",
)
_register(
    "AK-CHANNELS",
    "layer",
    "Too many input channels",
    f"A layer reads at most {lim.MAX_IN_CHANNELS} channels; a full convolution with a larger "
    "kernel reads fewer, at most "
    + ", ".join(f"{v} ({k}×{k})" for k, v in lim.EMPIRICAL_MAX_IN_CHANNELS_BY_KERNEL.items())
    + " (empirical: the channels for which one group of 8 filters still fits one NP's weights).",
    "Reduce the channels (a 1×1 convolution first), use a smaller kernel, or accept CPU "
    "execution for this node.",
)
_register(
    "AK-FILTERS",
    "layer",
    "Too many filters",
    f"A layer produces at most {lim.MAX_FILTERS} channels (filters, dense units, merged "
    f"channels); InputConv2D at most {lim.INPUT_CONV_MAX_FILTERS}.",
    "Reduce the number of filters or split the layer in two, or accept CPU execution.",
)
_register(
    "AK-INPUT-CONV-CHANNELS",
    "layer",
    "Input convolution channel count",
    f"The input convolution (HRC) reads {_listing(lim.INPUT_CONV_CHANNELS)} "
    "channels: a grayscale or RGB image.",
    "Feed a 1- or 3-channel image to the first convolution, or let the first layer run as a "
    "regular Conv2D on quantized inputs.",
)
_register(
    "AK-INPUT-CONV-HEIGHT",
    "layer",
    "Input convolution image height",
    f"The input convolution accepts images {lim.INPUT_CONV_MIN_HEIGHT} to "
    f"{lim.INPUT_CONV_MAX_HEIGHT} rows high.",
    "Resize the input image (--input-shape) into the supported range.",
)
_register(
    "AK-POOL-UNSUPPORTED",
    "layer",
    "Layer kind cannot fuse pooling",
    "Only "
    + _listing((x.akida_layer for x in lim.LAYER_LIMITS.values() if x.max_pools or x.gap), "and")
    + " carry a pooling stage (max pooling or global average pooling); "
    + _listing(
        (x.akida_layer for x in lim.LAYER_LIMITS.values() if not (x.max_pools or x.gap)), "and"
    )
    + " have none.",
    "Keep the pooling as a separate node (it runs on the CPU), or move it after a convolution.",
)
_register(
    "AK-POOL-SIZE",
    "layer",
    "Max-pooling size not supported",
    f"A CNP layer fuses square max pooling of size {_listing(lim.MAX_POOL_SIZES)}; the input "
    "convolution " + _listing(sorted({size for size, _ in lim.INPUT_CONV_MAX_POOLS})) + ".",
    "Use a supported pooling size, or accept CPU execution for the pooling.",
)
_register(
    "AK-POOL-STRIDE",
    "layer",
    "Max-pooling stride not supported",
    "The max-pooling stride is square and at most the pooling size; the input convolution pools "
    "with stride "
    + _listing(sorted({stride for _, stride in lim.INPUT_CONV_MAX_POOLS}))
    + " only.",
    "Use a supported pooling stride (the rules below), or accept CPU execution for the pooling.",
)
_register(
    "AK-POOL-WITH-STRIDE2",
    "layer",
    "Max pooling after a strided convolution",
    "A layer that fuses max pooling cannot itself have a stride above 1.",
    "Use a stride-1 convolution before the pooling, or drop the pooling.",
)
_register(
    "AK-POOL-WITH-LUT",
    "layer",
    "Max pooling with a lookup-table activation",
    "A layer cannot fuse both max pooling and a lookup-table activation (GELU, Swish, …).",
    "Use ReLU with this pooling, or keep the pooling as a separate node.",
)
_register(
    "AK-POOL-WITHOUT-ACTIVATION",
    "layer",
    "Max pooling without an activation",
    "The hardware applies max pooling only in a layer that also has a ReLU activation (the "
    "vendor's software engine accepts pooling without activation; the hardware rules do not).",
    "Add a ReLU after the pooling if the model allows it, or keep the pooling on the CPU.",
)
_register(
    "AK-POOL-AND-GAP",
    "layer",
    "Max pooling and global average pooling together",
    "A layer has one pooling stage: max pooling or global average pooling, not both.",
    "Keep one of the two poolings as a separate layer.",
)
_register(
    "AK-GAP-SIZE",
    "layer",
    "Global average pooling too large",
    f"Global average pooling needs H × W ≤ {lim.GAP_MAX_INPUT_AREA} at its input.",
    "Downsample further before the global pooling, or accept CPU execution for it.",
)
_register(
    "AK-DENSE-INPUTS",
    "layer",
    "Dense layer has too many inputs",
    f"A Dense1D layer reads at most {lim.DENSE_MAX_INPUTS} flattened inputs (H × W × C).",
    "Reduce the features before the dense layer (pooling or a 1×1 convolution).",
)
_register(
    "AK-ACTIVATION",
    "layer",
    "Activation cannot be fused",
    f"A layer fuses ReLU, ReLU with a maximum (ReLU6, Clip(0, x)), or a {lim.LUT_ENTRIES}-entry "
    "lookup table for other pointwise functions; Add and Concatenate fuse none. Other "
    "activations (or one that is not a pointwise function of a single value) stay on the CPU.",
    "Use ReLU, ReLU6 or a pointwise function such as GELU or Swish, or accept CPU execution.",
)
_register(
    "AK-BITS",
    "layer",
    "Bit width not supported",
    f"Weights have {_listing(lim.WEIGHT_BITS)} bits and activations "
    f"{_listing(lim.ACTIVATION_BITS)} bits; a layer's input has at least as many "
    "bits as its weights.",
    "Choose 4- or 8-bit weights and activations (--weight-bits, --activation-bits).",
)
_register(
    "AK-DTYPE",
    "layer",
    "Input element type not supported",
    "Akida reads 8-bit integers (the input convolution reads uint8 images); float inputs are "
    "quantized on the host at the region border. Other types (int32, int64, bool, …) cannot "
    "enter a region.",
    "Cast the input to float or uint8, or accept CPU execution for this node.",
)
_register(
    "AK-MERGE-INPUT-COUNT",
    "layer",
    "Add or Concatenate input count",
    f"Add and Concatenate take exactly {lim.MERGE_INPUTS} inputs.",
    "Chain two-input merges instead of one many-input node.",
)
_register(
    "AK-CONCAT-AXIS",
    "layer",
    "Concatenation axis",
    "Concatenate joins its inputs on the channel axis only.",
    "Concatenate on channels, or accept CPU execution for this node.",
)

# --- ONNX operators ---------------------------------------------------------------------------
_register(
    "AK-OP-UNSUPPORTED",
    "op",
    "Operator has no Akida lowering",
    "The ONNX operator type has no Akida layer (attention, MatMul between activations, "
    "LayerNorm, Softmax, standalone Sigmoid, arbitrary elementwise math, …).",
    "Nothing to change: the node runs on the CPU in the hybrid model.",
)
_register(
    "AK-NOT-CONSTANT",
    "op",
    "Weights are not constant",
    "Akida layers hold their weights and biases on chip, so they must be constants (an "
    "initializer or a constant-foldable subgraph), not values computed at run time.",
    "Make the weights initializers (export with constant folding), or accept CPU execution.",
)
_register(
    "AK-RANK",
    "op",
    "Tensor rank not supported",
    "Akida layers read 4-D NCHW feature maps, or 2-D (N, features) tensors for dense layers.",
    "Reshape to 4-D NCHW or 2-D, or accept CPU execution for this node.",
)
_register(
    "AK-RESIZE",
    "op",
    "Resize other than nearest 2×",
    f"The only Resize Akida runs is {lim.RESIZE_MODE}-neighbour upsampling by exactly "
    f"{lim.RESIZE_SCALE}× in H and W (as a transposed depthwise convolution).",
    "Use nearest 2× upsampling, or accept CPU execution for this Resize.",
)
_register(
    "AK-RESHAPE",
    "op",
    "Reshape or Transpose inside a region",
    "Reshape, Transpose and Flatten do not run on Akida; only the flattening that feeds a "
    "dense layer is absorbed into it.",
    "Nothing to change: the node runs on the CPU and splits the region there.",
)
_register(
    "AK-SHAPE-MISMATCH",
    "op",
    "Shapes do not match",
    "Add needs two inputs of the same shape (no broadcasting), Concatenate inputs that agree "
    "on every axis but the channels.",
    "Make the shapes equal (no broadcasting) or accept CPU execution for this node.",
)

# --- regions and graph structure --------------------------------------------------------------
_register(
    "AK-REGION-MAXPOOL-LAST",
    "region",
    "Max pooling ends a sequence",
    "A layer with max pooling cannot be the last layer of a sequence; akidac moves that "
    "pooling to the CPU instead of dropping the region.",
    "Nothing required; to keep the pooling on Akida, follow it with another Akida layer.",
)
_register(
    "AK-REGION-CONSUMERS",
    "region",
    "Too many consumers",
    f"An Akida layer feeds at most {lim.MAX_CONSUMERS} consumers.",
    "Nothing required: the region is cut after the layer; restructure the graph to keep it.",
)
_register(
    "AK-REGION-OUTPUTS",
    "region",
    "Region with several outputs",
    f"A mapped program has {lim.PROGRAM_OUTPUTS} output; a region whose results leave at "
    "several places is split.",
    "Nothing required: akidac splits the region.",
)
_register(
    "AK-REGION-COST",
    "region",
    "Region demoted: it would compute nothing",
    "Every layer of the region is an Add or Concatenate, so as an Akida program it would compute "
    "no MACs of its own: its CPU↔Akida transfers (quantize, transpose, copy) could only cost more "
    "than it saves, and it runs on the CPU. This is the only region the partitioner demotes for "
    "cost; it does not weigh transfer time against MACs saved for other regions "
    "(`akidac device` estimates both for a compiled model).",
    "Nothing required; a merge in one region with a convolution or dense layer stays on Akida.",
)
_register(
    "AK-MERGE-INPUTS",
    "region",
    "Add inputs from the same layer",
    "The two inputs of an Add come from different Conv/Add/Concatenate layers.",
    "Nothing required: the Add runs on the CPU; an identity convolution on one branch would "
    "make it legal.",
)
_register(
    "AK-MERGE-CONSUMER",
    "region",
    "Merge not followed by a CNP layer",
    "Add and Concatenate are performed by the next CNP layer through its skip DMA, so they must "
    "be followed by one; akidac inserts an identity layer (a 3×3 depthwise convolution whose "
    "centre tap is 1) where it can.",
    "Nothing required, or follow the merge with a convolution.",
)

_register(
    "AK-FAN-OUT",
    "region",
    "Map read by more than two layers",
    "An Akida layer has at most two consumers. When a map is read by more ops and at least two "
    "of them run on Akida, akidac chains identity layers (3×3 depthwise convolutions whose "
    "centre tap is 1) after it, each passing the map on to one more reader, so the readers "
    "stay in one program instead of each starting its own.",
    "Nothing required.",
)

_register(
    "AK-REGION-FIDELITY",
    "region",
    "Region too far from the float model",
    "After quantization, the region's own output (its input taken from the float model) scored "
    "below --min-region-sqnr (default 20 dB) against the float model on the calibration "
    "samples. The layer where the region first drifts below the threshold runs on the CPU (the "
    "whole region when it has one layer, or in the last compile rounds), and the model is "
    "partitioned again: the layers after it form a new region that is measured afresh.",
    "Calibrate with representative samples (--samples), use 8 bits, lower --min-region-sqnr, or "
    "turn the guard off with --no-fidelity-guard.",
)
_register(
    "AK-OUTPUT-GUARD",
    "region",
    "Model output too far from the float model",
    "After compiling, a floating-point output of the hybrid model scored below "
    "--min-output-sqnr (default 20 dB) against the float model on the calibration samples, "
    "although every Akida region passed the region guard on its own: errors add up over a "
    "chain of regions, or CPU layers after them amplify them. Of the Akida regions upstream of "
    "that output, the one whose own output loses most runs on the CPU, and the model is "
    "compiled again until the output is 1.5 dB above the threshold (room for samples the guard "
    "has not seen); a move is kept only when it lifts the output (at most four moves are "
    "tried, at 8 bits only). When no single region is worth it (the error is spread over "
    "them), the regions upstream go to the CPU together, noisiest first, as few as clear the "
    "output (found by bisection in at most five compiles).",
    "Calibrate with representative samples (--samples), lower --min-output-sqnr, or turn the "
    "guards off with --no-fidelity-guard.",
)
_register(
    "AK-REGION-NO-MACS",
    "region",
    "Region computes nothing of the model's own",
    "Every layer of the region was inserted by the compiler (identity layers after "
    "merges) or is an Add/Concatenate: running it on Akida would only add transfers and "
    "quantization error.",
    "Nothing required; it runs on the CPU.",
)
_register(
    "AK-USER-CPU",
    "user",
    "Kept on the CPU by the user",
    "The node was named in --keep-on-cpu.",
    "Drop it from --keep-on-cpu to let Akida run it.",
)
# --- quantization -----------------------------------------------------------------------------
_register(
    "AK-QUANT",
    "quantization",
    "Quantization failed for the layer",
    "The layer's scales could not be expressed in Akida's fixed-point form (8-bit mantissas and "
    f"shifts, output shifts {lim.OUTPUT_SHIFT_MIN}..{lim.OUTPUT_SHIFT_MAX}, power-of-two Add "
    "input scales), or calibration gave no usable range.",
    "Calibrate with representative samples (--samples), or use 8-bit weights and activations.",
)

# --- device and mapping -----------------------------------------------------------------------
_register(
    "AK-DEVICE-TOO-SMALL",
    "device",
    "Device too small",
    "A layer or region needs more NPs, weight memory or input SRAM than the chosen device has.",
    "Choose a larger device (--device akida2-12n), or let `akidac device` pick the smallest one "
    "that fits.",
)

# --- errors (the default codes of akidac.errors; their exit codes) ----------------------------
_register(
    "AK-INTERNAL",
    "error",
    "Internal error (exit code 1)",
    "A bug in akidac.",
    "Report it with the command line and the model.",
)
_register(
    "AK-USAGE",
    "error",
    "Usage error (exit code 2)",
    "Bad command-line or API arguments: an unknown option value, device or pass name.",
    "Check the option against `akidac --help`.",
)
_register(
    "AK-GATE",
    "error",
    "A gate failed (exit code 7)",
    "A threshold given on the command line (--min-akida-share, --min-sqnr, --max-regions, "
    "--max-transfer, run's --min-sqnr/--atol) was not met; the outputs were written anyway.",
    "Look at the figure the message names, or relax the gate.",
)
_register(
    "AK-BATCH",
    "error",
    "Some models of a batch failed (exit code 8)",
    "`compile --batch` compiled every model it could; at least one failed to compile (its own "
    "exit code and reason are in the batch's summary.json).",
    "Read summary.json or the batch table for the failing models and their reasons.",
)
_register(
    "AK-MODEL",
    "error",
    "Invalid model (exit code 3)",
    "The model file is missing, unreadable, not ONNX, or an invalid graph.",
    "Check the file with onnx.checker.",
)
_register(
    "AK-UNSUPPORTED",
    "error",
    "Unsupported model feature (exit code 4)",
    "A valid model uses a feature akidac cannot handle at all (opset, dynamic shape, dtype).",
    "Fix the named feature, e.g. give static shapes with --input-shape.",
)
_register(
    "AK-ALLOC",
    "error",
    "Allocation failure (exit code 5)",
    "The model does not fit the chosen device, or NP/SRAM allocation failed.",
    "Choose a larger device, or let `akidac device` pick one.",
)
_register(
    "AK-PROGRAM",
    "error",
    "Corrupt program or hybrid model (exit code 6)",
    "A program binary or hybrid model is corrupt, truncated or inconsistent.",
    "Recompile the model.",
)


# --- specific error codes: each names one way a model, option or program is rejected --------
for _code, _title, _description, _hint in (
    (
        "AK-MODEL-MISSING",
        "Model file missing (exit 3)",
        "The model path does not exist.",
        "Check the path.",
    ),
    (
        "AK-MODEL-NOT-ONNX",
        "Not an ONNX model (exit 3)",
        "The file is empty, truncated, or not an ONNX protobuf.",
        "Export the model to ONNX again.",
    ),
    (
        "AK-MODEL-INVALID",
        "Invalid ONNX graph (exit 3)",
        "The ONNX checker rejects the model, or a node reads a value nothing defines.",
        "Run onnx.checker.check_model on it and fix the exporter's output.",
    ),
    (
        "AK-MODEL-CYCLE",
        "Cyclic graph (exit 3)",
        "The graph has a cycle; ONNX graphs are acyclic.",
        "Fix the exporter's output.",
    ),
    (
        "AK-MODEL-OPSET",
        "No default opset (exit 3)",
        "The model imports no default ONNX opset.",
        "Export the model with a default-domain opset.",
    ),
    (
        "AK-MODEL-EXTERNAL-DATA",
        "External weights unreadable (exit 3)",
        "Weights stored beside the model could not be loaded.",
        "Keep the external data files next to the model.",
    ),
    (
        "AK-MODEL-NAN",
        "NaN weights (exit 3)",
        "An initializer holds NaN values.",
        "Fix the model's weights.",
    ),
    (
        "AK-MODEL-SHAPES",
        "Shape inference failed (exit 3)",
        "ONNX shape inference rejected the model.",
        "Check the input shapes you gave.",
    ),
    (
        "AK-OPSET",
        "Unsupported opset (exit 4)",
        "The default-domain opset is outside 11 to 21.",
        "Convert the model with onnx.version_converter.",
    ),
    (
        "AK-DYNAMIC-SHAPE",
        "Dynamic input shape (exit 4)",
        "An input has a dynamic dimension other than a leading batch.",
        "Give --input-shape NAME=D1xD2x...",
    ),
    (
        "AK-ATTRIBUTE",
        "Unsupported attribute kind (exit 4)",
        "A node has an attribute kind akidac cannot carry (sparse tensors, type protos).",
        "Re-export the model without it.",
    ),
    (
        "AK-VERIFY",
        "IR verification failed (exit 1)",
        "A pass produced malformed IR: a bug in akidac or in a user pass.",
        "Report it with --dump-after all output.",
    ),
    (
        "AK-PROGRAM-MISSING",
        "AkidaOp without program (exit 6)",
        "An AkidaOp node carries no program attribute.",
        "Recompile the model.",
    ),
    (
        "AK-PROGRAM-MODEL",
        "Unreadable hybrid model (exit 6)",
        "The hybrid model file is not readable ONNX, or an AkidaOp output has no type.",
        "Recompile the model.",
    ),
    (
        "AK-USAGE-QUANT-CONFIG",
        "Bad quantization config (exit 2)",
        "The --quant-config file is malformed or names unknown layers.",
        "Fix the file; see docs/quantization.md.",
    ),
):
    _register(_code, "error", _title, _description, _hint)

# --- notices ---------------------------------------------------------------------------------
_register(
    "AK-DYNAMIC-BATCH",
    "notice",
    "Dynamic batch set to 1",
    "An input's only dynamic dimension is the leading batch; akidac compiles for batch 1.",
    "Nothing required; give --input-shape to choose another size.",
)
_register(
    "AK-CALIBRATION-RANDOM",
    "notice",
    "Calibration on random samples",
    "No calibration samples were given, so quantization ranges come from random inputs.",
    "Pass --samples data.npz with representative inputs.",
)
_register(
    "AK-INPUT-NONFINITE",
    "notice",
    "Input holds NaN or infinity",
    "An input given to `akidac run` holds NaN or infinite values; the hybrid model runs on them "
    "as given, and the outputs and comparison figures follow from them.",
    "Check the data; clean or drop the samples that hold them.",
)
_register(
    "AK-REWRITE-NEAR-MISS",
    "notice",
    "A rewrite almost applied",
    "A rewrite that widens what Akida runs matched the op's type but not one of its conditions; "
    "the note says which.",
    "Change the model as the note says if you want the rewrite.",
)
_register(
    "AK-FOLDED",
    "notice",
    "Node folded away",
    "An earlier rewrite removed the node (constant folding, BatchNorm folding, no-op removal).",
    "Nothing required.",
)
_register(
    "AK-OUTPUT-FIDELITY",
    "notice",
    "Model output far from the float model",
    "After compiling, the hybrid model's output scored below the fidelity guard's threshold "
    "(--min-region-sqnr, default 20 dB; the 4-bit threshold when a region holds a 4-bit "
    "layer) against the float model on the fidelity samples. The guard measures each Akida "
    "region on its own, from float inputs; errors that add up over several regions, or that "
    "CPU layers after them amplify, show only at the output.",
    "Run `akidac bisect` to find the layer where the output drifts, calibrate with "
    "representative samples (--samples), or raise the bits of the layers that lose most "
    "(--target-sqnr).",
)
_register(
    "AK-UNQUANTIZED",
    "notice",
    "Akida regions left unquantized",
    "A custom pass pipeline formed Akida regions but did not quantize them (no `quantize` pass "
    "after `partition`); a program holds integer layers only, so those regions run on the CPU.",
    "Add `quantize` after `partition` to the pipeline (`--passes`, `compile_model(passes=...)`).",
)
_register(
    "AK-NOT-MAPPED",
    "notice",
    "Layer legal but not mapped",
    "The node could run on Akida but no region took it (a region rule or the cost model).",
    "See the region reasons in the report.",
)
_register(
    "AK-REGION-INPUTS",
    "region",
    "A program has one input",
    "The layer reads two values that no single Akida program can provide (e.g. an Add whose "
    "second input comes from the CPU), so it runs on the CPU.",
    "Keep both branches of a merge on Akida.",
)

#: every reason code, by code, in documentation order.
REASON_CODES: Final = MappingProxyType(dict(_registry))


def reason_code(code: str) -> ReasonCode:
    """Return the registered reason code `code`; a `KeyError` names the unknown code."""
    try:
        return REASON_CODES[code]
    except KeyError:
        raise KeyError(f"{code!r} is not a registered akidac reason code") from None


def codes_in(category: str) -> tuple[ReasonCode, ...]:
    """The reason codes of one category, in registration order."""
    if category not in CATEGORIES:
        raise ValueError(
            f"unknown reason-code category {category!r}; known: {', '.join(CATEGORIES)}"
        )
    return tuple(rc for rc in REASON_CODES.values() if rc.category == category)
