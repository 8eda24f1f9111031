"""`HybridSession`: runs a hybrid model — CPU parts in onnxruntime, AkidaOps on the hardware model.

At load it checks the model (`onnx.checker.check_model`, topological order, every AkidaOp's
types against its program), decodes every embedded program (a corrupt or inconsistent model is a
`ProgramError`, exit 6) and splits the node list into steps: each `AkidaOp` is one step, and
the other nodes run in as few onnxruntime sessions as the data flow allows (`_schedule`). At
run time it checks the feeds against the model inputs (a bad feed is a `UsageError`, exit 2),
walks the steps and passes NumPy arrays between them. It mirrors
`onnxruntime.InferenceSession`: `get_inputs()`, `get_outputs()`, `get_providers()`,
`get_modelmeta()`, `get_session_options()` and `run(output_names, feeds, run_options)`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

try:
    from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument as _OrtInvalidArgument
except ImportError:  # pragma: no cover - the module of ORT's exception types moved
    _OrtInvalidArgument = ()

from akidac.backends.akida.akida_node import DYNAMIC_BATCH_KEY, is_akida_node, program_bytes
from akidac.backends.akida.executor import PreparedProgram
from akidac.backends.akida.program import Program, decode_program
from akidac.errors import AkidacError, ModelError, ProgramError, UsageError
from akidac.runtime import border, elementwise


@dataclass(frozen=True)
class TensorInfo:
    """Name, shape and element type of a model input or output (like ORT's NodeArg)."""

    name: str
    shape: list[int | str | None]
    type: str


@dataclass(frozen=True)
class ModelMetadata:
    """The hybrid model's metadata, with the fields of ORT's `ModelMetadata`."""

    producer_name: str
    graph_name: str
    graph_description: str
    domain: str
    description: str
    version: int
    custom_metadata_map: dict[str, str] = field(default_factory=dict)


class _CpuStep:
    """One onnxruntime session running a part of the CPU nodes (`_schedule` groups them).

    `run(output_names, feeds, run_options)` is onnxruntime's C++ session's own `run` when the
    binding exposes it: the Python wrapper re-validates the feed names (checked here already)
    and costs ~5 µs per call, a quarter of a small CPU part.
    """

    def __init__(
        self,
        session: ort.InferenceSession,
        inputs: list[str],
        outputs: list[str],
        label: str,
        nodes: Sequence[onnx.NodeProto] = (),
    ) -> None:
        self.inputs = inputs
        self.outputs = outputs
        self.label = label
        self.nodes = list(nodes)
        self.session = session

    @property
    def session(self) -> ort.InferenceSession:
        return self._session

    @session.setter
    def session(self, session: ort.InferenceSession) -> None:
        self._session = session
        inner = getattr(session, "_sess", None)
        self.run = getattr(inner, "run", None) or session.run

    def execute(self, env: dict[str, np.ndarray], run_options: ort.RunOptions | None) -> None:
        """Feed the part its inputs from `env` and store its outputs there; an onnxruntime
        error is one line naming the part (a UsageError for an invalid argument)."""
        try:
            results = self.run(self.outputs, {name: env[name] for name in self.inputs}, run_options)
        except AkidacError:
            raise
        except Exception as error:  # onnxruntime's exception types derive from Exception
            message = f"{self.label} failed in onnxruntime: {_one_line(error)}"
            if isinstance(error, _OrtInvalidArgument):
                raise UsageError(message) from None
            raise ProgramError(message) from None
        env.update(zip(self.outputs, results, strict=True))


@dataclass
class _BorderStep:
    """A CPU part made of border fragments (`border.plan_part`: Transpose, Quantize/
    DequantizeLinear, a constant Mul; one chain, or one per parallel branch), each run in one
    numba pass instead of the part's onnxruntime session; `cpu` is that session's step, which
    still runs the part when a value reaching it is not what a fragment was planned for."""

    fragments: list[border.BorderFragment]
    cpu: _CpuStep

    def execute(self, env: dict[str, np.ndarray], run_options: ort.RunOptions | None) -> None:
        for fragment in self.fragments:
            if not fragment.accepts(env[fragment.input]):
                self.cpu.execute(env, run_options)
                return
        for fragment in self.fragments:
            env[fragment.output] = fragment.run(env[fragment.input])


@dataclass
class _FusedStep:
    """A CPU part of elementwise arithmetic between AkidaOps (`elementwise.plan_part`: one
    numba row program per connected piece), which the session checked at load against the
    part's onnxruntime session (`cpu`); `cpu` still runs the part when its inputs are not what
    the programs were planned for."""

    parts: list[elementwise.ElementwisePart]
    cpu: _CpuStep

    def execute(self, env: dict[str, np.ndarray], run_options: ort.RunOptions | None) -> None:
        for part in self.parts:
            if not part.accepts(env):
                self.cpu.execute(env, run_options)
                return
        for part in self.parts:
            part.run(env)


@dataclass
class _AkidaStep:
    """One AkidaOp, its program decoded, validated and prepared for the hardware model once.

    `input_shape` and `output_shape` are the border values' shapes in the hybrid model (batch
    first); their dims after the batch are the program's NHWC dims, or (C,) for a 1×1×C tensor.
    """

    name: str
    program: Program
    input: str
    output: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    prepared: PreparedProgram
    #: the program's input dims batch excluded, and whether the border value is a flat (N, C)
    #: vector that the hardware model takes as (N, 1, 1, C)
    input_dims: tuple[int, ...] = ()
    output_item: tuple[int, ...] = ()
    flat_input: bool = False
    flat_output: bool = False

    def __post_init__(self) -> None:
        self.input_dims = self.prepared.input_dims
        self.output_item = self.output_shape[1:]
        self.flat_input = self.input_shape[1:] != self.input_dims
        self.flat_output = self.output_item != self.prepared.output_dims
        # read on every run: looked up once here, not through three attributes per call
        self.input_item = self.input_shape[1:]
        self.input_dtype = self.prepared.input_dtype
        self.output_index = self.prepared.output_index
        self.run_to = self.prepared.model.run_to

    def execute(self, env: dict[str, np.ndarray], run_options: ort.RunOptions | None) -> None:
        env[self.output] = _run_akida(self, env[self.input])


#: onnxruntime's registrations of its transpose optimizer (see `HybridSession._part_kwargs`)
TRANSPOSE_OPTIMIZERS = ("TransposeOptimizer", "TransposeOptimizer_CPUExecutionProvider")

#: the seed of the probe inputs that a fused part and its onnxruntime session must agree on
PROBE_SEED = 20261206


def _matches_onnxruntime(
    parts: list[elementwise.ElementwisePart],
    step: _CpuStep,
    shapes: dict[str, tuple[int | None, ...]],
    types: dict[str, int],
) -> bool:
    """Whether `parts` give the very bits of the part's onnxruntime session on a probe input.

    onnxruntime documents no summation order, and its builds differ (MLAS's lanes on x86 and
    ARM); the probe makes the fused program prove itself on this machine, this onnxruntime and
    these session options, once at load: random integers over the whole range of an integer
    input, normal floats (spread over several binades) for a float one, with NaN, infinities,
    signed zeros and subnormals among them."""
    rng = np.random.default_rng(PROBE_SEED)
    feeds: dict[str, np.ndarray] = {}
    for name in step.inputs:
        dims = shapes[name]
        shape = (1, *(int(d) for d in dims[1:]))  # type: ignore[arg-type]
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(types[name]))
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            low, high = (int(info.min), int(info.max)) if dtype.itemsize == 1 else (-(2**27), 2**27)
            feeds[name] = rng.integers(low, high, shape, endpoint=True).astype(dtype)
        else:
            values = rng.standard_normal(shape) * np.exp2(rng.integers(-4, 6, shape))
            flat = values.reshape(-1)
            # the values where operation orders show (NaN through max/min/select, signed
            # zeros, infinities, subnormals), spread over the probe
            specials = np.array([np.nan, np.inf, -np.inf, -0.0, 1e-40, -1e-40, 3e38, -3e38])
            picks = rng.permutation(flat.size)[: min(flat.size // 4, 4 * specials.size)]
            flat[picks] = np.resize(specials, picks.size)
            feeds[name] = values.astype(dtype)
    try:
        expected = step.run(step.outputs, feeds, None)
    except Exception:  # the session cannot run a probe: leave the part to it
        return False
    env = dict(feeds)
    for part in parts:
        part.run(env)
    for name, value in zip(step.outputs, expected, strict=True):
        got = env.get(name)
        if got is None or got.dtype != value.dtype or got.shape != value.shape:
            return False
        if got.tobytes() != np.ascontiguousarray(value).tobytes():
            return False
    return True


def ort_type_name(elem_type: int) -> str:
    """onnxruntime's spelling of a tensor type: `tensor(float)`, `tensor(int64)`, ...

    ORT names a type after the ONNX `TensorProto.DataType` enum in lower case.
    """
    try:
        name = onnx.TensorProto.DataType.Name(elem_type).lower()
    except ValueError:
        name = "undefined"
    return f"tensor({name})"


def _elem_np_dtype(elem_type: int) -> np.dtype | None:
    """The NumPy dtype of an ONNX element type, or None when it has none."""
    try:
        return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type))
    except (KeyError, TypeError, ValueError):
        return None


def _elem_name(elem_type: int) -> str:
    dtype = _elem_np_dtype(elem_type)
    return dtype.name if dtype is not None else ort_type_name(elem_type)[7:-1]


def _dims(value: onnx.ValueInfoProto) -> list[int | str | None]:
    return [
        d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
        for d in value.type.tensor_type.shape.dim
    ]


def _info(value: onnx.ValueInfoProto) -> TensorInfo:
    return TensorInfo(value.name, _dims(value), ort_type_name(value.type.tensor_type.elem_type))


def _shape_text(dims: Iterable[int | str | None]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


def _border_forms(dims: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
    """The per-item shapes an AkidaOp border value may have for a program tensor of `dims`."""
    return (dims, (dims[2],)) if len(dims) == 3 and dims[:2] == (1, 1) else (dims,)


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


def _subgraphs(node: onnx.NodeProto) -> list[onnx.GraphProto]:
    graphs: list[onnx.GraphProto] = []
    for attr in node.attribute:
        if attr.type == onnx.AttributeProto.GRAPH:
            graphs.append(attr.g)
        elif attr.type == onnx.AttributeProto.GRAPHS:
            graphs.extend(attr.graphs)
    return graphs


def free_names(graph: onnx.GraphProto) -> set[str]:
    """The outer-scope names a (sub)graph reads: names its nodes (and, recursively, their own
    subgraphs) use that it does not define as an input, initializer or node output."""
    defined = {v.name for v in graph.input}
    defined.update(t.name for t in graph.initializer)
    defined.update(t.values.name for t in graph.sparse_initializer)
    defined.update(name for node in graph.node for name in node.output)
    used: set[str] = set()
    for node in graph.node:
        used.update(node.input)
        for sub in _subgraphs(node):
            used |= free_names(sub)
    return used - defined - {""}


def node_reads(node: onnx.NodeProto) -> list[str]:
    """Every value a node reads: its inputs, then the outer-scope names its subgraphs use."""
    names = [name for name in node.input if name]
    captured: set[str] = set()
    for sub in _subgraphs(node):
        captured |= free_names(sub)
    names.extend(sorted(captured - set(names)))
    return names


def _node_label(node: onnx.NodeProto, index: int) -> str:
    return f"'{node.name}'" if node.name else f"#{index} ({node.op_type})"


#: operators that compute each sample of a batch-major tensor from that sample alone, whatever
#: their attributes (constants broadcast over the batch): a CPU part made only of these, and of
#: the operators `_per_sample` accepts for their attributes, runs a whole batch at once.
_PER_SAMPLE_OPS = frozenset(
    [
        "Abs",
        "Acos",
        "Acosh",
        "Add",
        "And",
        "Asin",
        "Asinh",
        "Atan",
        "Atanh",
        "AveragePool",
        "BatchNormalization",
        "BitShift",
        "Cast",
        "Ceil",
        "Celu",
        "Clip",
        "Conv",
        "ConvInteger",
        "ConvTranspose",
        "Cos",
        "Cosh",
        "DequantizeLinear",
        "Div",
        "Dropout",
        "Elu",
        "Equal",
        "Erf",
        "Exp",
        "Floor",
        "Gelu",
        "GlobalAveragePool",
        "GlobalLpPool",
        "GlobalMaxPool",
        "Greater",
        "GreaterOrEqual",
        "HardSigmoid",
        "HardSwish",
        "Identity",
        "InstanceNormalization",
        "IsInf",
        "IsNaN",
        "LeakyRelu",
        "Less",
        "LessOrEqual",
        "Log",
        "LpPool",
        "MaxPool",
        "Max",
        "Mean",
        "Min",
        "Mish",
        "Mod",
        "Mul",
        "Neg",
        "Not",
        "Or",
        "PRelu",
        "Pow",
        "QLinearConv",
        "QuantizeLinear",
        "Reciprocal",
        "Relu",
        "Round",
        "Selu",
        "Shrink",
        "Sigmoid",
        "Sign",
        "Sin",
        "Sinh",
        "Softplus",
        "Softsign",
        "Sqrt",
        "Sub",
        "Sum",
        "Tan",
        "Tanh",
        "ThresholdedRelu",
        "Where",
        "Xor",
    ]
)


def _int_attr(node: onnx.NodeProto, name: str, default: int) -> int:
    for attr in node.attribute:
        if attr.name == name:
            return int(attr.i)
    return default


def _per_sample(
    node: onnx.NodeProto, rank: dict[str, int], constants: dict[str, onnx.TensorProto]
) -> bool:
    """Whether `node` maps a batch-major input to batch-major outputs sample by sample, so
    that it may run on a batch of any size; False when unsure (then the model runs per sample).
    """
    op = node.op_type
    if node.domain not in ("", "ai.onnx") or _has_subgraph(node):
        return False
    if op in ("QuantizeLinear", "DequantizeLinear"):
        return _int_attr(node, "axis", 1) != 0  # per-axis along the batch would not broadcast
    if op in _PER_SAMPLE_OPS:
        return True
    first = rank.get(node.input[0]) if node.input else None
    if op == "Transpose":
        perm = next((list(a.ints) for a in node.attribute if a.name == "perm"), None)
        return perm is not None and len(perm) > 0 and perm[0] == 0
    if op in ("Softmax", "LogSoftmax", "Hardmax", "Flatten", "Concat", "LayerNormalization"):
        default = {"Flatten": 1, "Concat": 0, "LayerNormalization": -1}.get(op, -1)
        axis = _int_attr(node, "axis", default)
        if axis < 0:
            return first is not None and axis + first > 0
        return axis > 0
    if op in ("Gemm", "MatMul", "MatMulInteger"):
        # the batch-major operand first, a constant matrix second
        weights = constants.get(node.input[1]) if len(node.input) > 1 else None
        transposed = op == "Gemm" and _int_attr(node, "transA", 0) != 0
        return weights is not None and len(weights.dims) == 2 and first == 2 and not transposed
    if op == "Reshape":
        # only a shape that copies the batch (0) and fixes the rest
        shape = constants.get(node.input[1]) if len(node.input) > 1 else None
        if shape is None or _int_attr(node, "allowzero", 0):
            return False
        dims = numpy_helper.to_array(shape).tolist()
        return bool(dims) and dims[0] == 0 and -1 not in dims[1:]
    return False


def _run_akida(step: _AkidaStep, x: np.ndarray) -> np.ndarray:
    """Run one AkidaOp on its border value `x`: exactly (N, *program input dims), or (N, C)
    for a 1×1×C program input; anything else is a ProgramError naming both shapes."""
    shape = x.shape
    if shape[1:] != step.input_item or x.dtype != step.input_dtype:
        raise ProgramError(
            f"AkidaOp '{step.name}' input '{step.input}' is {x.dtype.name} "
            f"{_shape_text(shape)}, the program takes {step.prepared.input_dtype.name} "
            f"{_shape_text(step.input_shape[1:])} per batch item",
            code="AK-PROGRAM-MODEL",
            node=step.name,
        )
    if step.flat_input:
        x = x.reshape((shape[0], *step.input_dims))
    try:
        y = step.run_to(x, step.output_index)
    except ProgramError as error:
        error.message = f"AkidaOp '{step.name}': {error.message}"
        error.node = step.name
        raise
    if step.flat_output:
        return y.reshape((shape[0], *step.output_item))
    return y


class HybridSession:
    """Run a hybrid model from a path, bytes or `ModelProto`.

    `sess_options`, `providers`, `provider_options` and any other keyword argument (but
    `fuse_borders`) are passed to every onnxruntime session the model's CPU parts run in: their
    threads are those of `sess_options` (onnxruntime's defaults otherwise). The hardware model
    runs every AkidaOp on the calling thread, one thread per session: its numba kernels are not
    parallel and call no BLAS, so no thread setting changes it (parallel numba collapses on a
    busy machine: see docs/runtime.md); run several sessions in several processes to use more
    cores.

    Loading decodes, validates and prepares every program once (`PreparedProgram`: weights in
    kernel layout, requantization plans, clips, LUTs); `run` does the arithmetic and small
    per-step work (about 4 µs per AkidaOp step measured by `bench/e2e_runtime.py`).

    Border CPU parts (`Transpose` / `QuantizeLinear` / `DequantizeLinear` / a constant `Mul`
    around an AkidaOp, `border.plan`) run in `run` as one numba pass each instead of an
    onnxruntime session call, bit for bit what the session computes (`run_steps`); the model
    keeps its standard nodes, and `run_all` and `fuse_borders=False` run those parts in
    onnxruntime. Elementwise CPU parts between AkidaOps (an SE block's mean and scale, PReLU,
    a residual Add: `elementwise.plan_part`) run the same way, as numba row programs, each
    checked at load to give its onnxruntime session's bytes on a probe input.

    Batches: the hybrid model's values are typed for the batch it was compiled for (1 for a
    dynamic batch). When its metadata says that an input's batch was dynamic in the float
    model (`DYNAMIC_BATCH_KEY`, written by the compiler), `run` takes any batch size there:
    the whole batch at once when every CPU part is made of per-sample operators (`_per_sample`:
    elementwise, convolutions, Q/DQ, Transpose/Softmax/Flatten off the batch axis, ...) —
    the hardware model runs N samples in one call — and otherwise one compiled batch at a time,
    the outputs concatenated along axis 0 (a Reshape baked for batch 1 would mix samples).
    Either way a sample's result is the one it has alone, bit for bit.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | bytes | onnx.ModelProto,
        sess_options: ort.SessionOptions | None = None,
        providers: list[str] | None = None,
        provider_options: list[dict[Any, Any]] | None = None,
        *,
        fuse_borders: bool = True,
        **kwargs: Any,
    ) -> None:
        self.model = self._load(model)
        self._options = sess_options
        self._providers = providers or ["CPUExecutionProvider"]
        self._provider_options = provider_options
        self._session_kwargs = kwargs
        graph = self.model.graph
        initializers = {t.name for t in graph.initializer}
        inputs = [v for v in graph.input if v.name not in initializers]
        self._inputs = [_info(v) for v in inputs]
        self._input_types = {v.name: v.type.tensor_type.elem_type for v in inputs}
        self._outputs = [_info(v) for v in graph.output]
        self._value_types = {v.name: v for v in [*graph.value_info, *graph.output, *graph.input]}
        self._check_model()
        self._compiled_batch, self._dynamic_inputs = self._read_dynamic_batch()
        self._dynamic_outputs = [
            o.name for o in self._outputs if o.shape and not isinstance(o.shape[0], int)
        ]
        #: whether a batch other than the compiled one runs whole (every CPU part per-sample)
        self.batched = bool(self._dynamic_inputs) and self._all_cpu_nodes_per_sample()
        self.steps: list[_CpuStep | _AkidaStep] = self._split()
        #: the steps `run` walks: `steps` with every border CPU part (`_BorderStep`) and every
        #: elementwise one (`_FusedStep`) fused unless `fuse_borders` is False; `run_all`
        #: walks `steps`, which compute every value
        self.run_steps: list[_CpuStep | _AkidaStep | _BorderStep | _FusedStep] = (
            self._fuse_borders() if fuse_borders else list(self.steps)
        )
        self._output_names = [o.name for o in self._outputs]
        self._feed_specs = [
            (
                info.name,
                self._input_types[info.name],
                _elem_np_dtype(self._input_types[info.name]),
                tuple(info.shape) if all(isinstance(d, int) for d in info.shape) else None,
                info,
            )
            for info in self._inputs
        ]

    @staticmethod
    def _load(model: str | os.PathLike[str] | bytes | onnx.ModelProto) -> onnx.ModelProto:
        if isinstance(model, onnx.ModelProto):
            return model
        try:
            if isinstance(model, bytes):
                return onnx.load_from_string(model)
            path = Path(model)
            if not path.exists():
                raise ModelError(f"hybrid model '{path}' does not exist", code="AK-MODEL-MISSING")
            return onnx.load(str(path))
        except ModelError:
            raise
        except Exception as error:  # protobuf raises several unrelated types
            raise ProgramError(
                f"'{model!s}' is not a readable hybrid ONNX model: "
                f"{str(error).splitlines()[0] if str(error) else error}",
                code="AK-PROGRAM-MODEL",
            ) from None

    # ------------------------------------------------------------------------------ loading
    def _check_model(self) -> None:
        """Topological order (with subgraph captures), graph outputs defined, ONNX checker."""
        graph = self.model.graph
        nodes = list(graph.node)
        available = {v.name for v in graph.input}
        available.update(t.name for t in graph.initializer)
        available.update(t.values.name for t in graph.sparse_initializer)
        produced_at = {name: i for i, node in enumerate(nodes) for name in node.output if name}
        for index, node in enumerate(nodes):
            for name in node_reads(node):
                if name in available:
                    continue
                label = _node_label(node, index)
                if produced_at.get(name, -1) >= index:
                    raise ProgramError(
                        f"node {label} reads '{name}' before node "
                        f"{_node_label(nodes[produced_at[name]], produced_at[name])} computes it: "
                        "the nodes are not in topological order",
                        code="AK-PROGRAM-MODEL",
                        node=node.name,
                    )
                raise ProgramError(
                    f"node {label} reads '{name}', which no input, initializer or node defines",
                    code="AK-PROGRAM-MODEL",
                    node=node.name,
                )
            available.update(name for name in node.output if name)
        for output in graph.output:
            if output.name not in available:
                raise ProgramError(
                    f"graph output '{output.name}' is not computed by any node",
                    code="AK-PROGRAM-MODEL",
                )
        try:
            onnx.checker.check_model(self.model)
        except Exception as error:  # ValidationError, or protobuf errors of a broken proto
            raise ProgramError(
                f"the hybrid model is not a valid ONNX model: {_one_line(error)}",
                code="AK-PROGRAM-MODEL",
            ) from None

    def _read_dynamic_batch(self) -> tuple[int, list[str]]:
        """(compiled batch, inputs with a dynamic batch) from the model's metadata."""
        props = self.model.metadata_props
        text = next((p.value for p in props if p.key == DYNAMIC_BATCH_KEY), None)
        if text is None:
            return 1, []
        try:
            entries = json.loads(text)
            valid = isinstance(entries, dict) and all(
                isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in entries.values()
            )
        except ValueError:
            valid = False
        names = {info.name: info for info in self._inputs}
        if not valid or len(set(entries.values())) != 1:
            raise ProgramError(
                f"metadata '{DYNAMIC_BATCH_KEY}' must map input names to one batch size, "
                f"is {text[:80]!r}",
                code="AK-PROGRAM-MODEL",
            )
        for name in entries:
            info = names.get(name)
            if info is None or not info.shape or isinstance(info.shape[0], int):
                raise ProgramError(
                    f"metadata '{DYNAMIC_BATCH_KEY}' names '{name}', which is not a model input "
                    "with a symbolic batch dimension",
                    code="AK-PROGRAM-MODEL",
                )
        return next(iter(entries.values())), sorted(entries)

    def _all_cpu_nodes_per_sample(self) -> bool:
        graph = self.model.graph
        constants = {t.name: t for t in graph.initializer}
        rank = {
            v.name: len(v.type.tensor_type.shape.dim)
            for v in self._value_types.values()
            if v.type.tensor_type.HasField("shape")
        }
        return all(is_akida_node(node) or _per_sample(node, rank, constants) for node in graph.node)

    def _split(self) -> list[_CpuStep | _AkidaStep]:
        """The steps: each AkidaOp one, and the CPU nodes in as few onnxruntime sessions as
        the data flow allows (`_schedule`)."""
        graph = self.model.graph
        nodes = list(graph.node)
        # every AkidaOp is checked before any onnxruntime session is made: its error is clearer
        akida = {i: self._akida_step(node) for i, node in enumerate(nodes) if is_akida_node(node)}
        reads = [node_reads(node) for node in nodes]
        groups = _schedule(nodes, reads, set(akida))
        outputs = {o.name for o in graph.output}
        steps: list[_CpuStep | _AkidaStep] = []
        for group in groups:
            if group[0] in akida:
                steps.append(akida[group[0]])
                continue
            members = set(group)
            needed = outputs | {
                name for i, names in enumerate(reads) if i not in members for name in names
            }
            steps.append(self._cpu_step([nodes[i] for i in group], needed, group))
        return steps

    def _fuse_borders(self) -> list[_CpuStep | _AkidaStep | _BorderStep | _FusedStep]:
        """`steps` with each CPU part that `border.plan_part` recognises as border fragments,
        or that `elementwise.plan_part` makes row programs of (and that pass the load-time
        probe, `_matches_onnxruntime`), run by them: bit for bit what its onnxruntime session
        computes."""
        graph = self.model.graph
        constants = {t.name: t for t in graph.initializer}
        shapes: dict[str, tuple[int | None, ...]] = {}
        types: dict[str, int] = {}
        for name, value in self._value_types.items():
            tensor = value.type.tensor_type
            if value.type.HasField("tensor_type") and tensor.HasField("shape"):
                shapes[name] = tuple(d if isinstance(d, int) else None for d in _dims(value))
                types[name] = tensor.elem_type
        fused: list[_CpuStep | _AkidaStep | _BorderStep | _FusedStep] = []
        #: the memory order of the float values that fused parts leave in frame order
        orders: dict[str, tuple[int, ...]] = {}
        for step in self.steps:
            if isinstance(step, _CpuStep):
                fragments = border.plan_part(
                    step.nodes, step.inputs, step.outputs, shapes, types, constants
                )
                if fragments is not None:
                    fused.append(_BorderStep(fragments, step))
                    continue
                parts = elementwise.plan_part(
                    step.nodes, step.inputs, step.outputs, shapes, types, constants, orders
                )
                if parts is not None and _matches_onnxruntime(parts, step, shapes, types):
                    fused.append(_FusedStep(parts, step))
                    for part in parts:
                        orders.update(part.memory_orders)
                    continue
            fused.append(step)
        return fused

    def _akida_step(self, node: onnx.NodeProto) -> _AkidaStep:
        if len(node.input) != 1 or len(node.output) != 1 or not node.input[0] or not node.output[0]:
            raise ProgramError(
                f"AkidaOp '{node.name}' must have exactly one input and one output, "
                f"has {len(node.input)} input(s) and {len(node.output)} output(s)",
                code="AK-PROGRAM-MODEL",
                node=node.name,
            )
        blob = program_bytes(node)
        if blob is None:
            raise ProgramError(
                f"AkidaOp '{node.name}' has no embedded program",
                code="AK-PROGRAM-MISSING",
                node=node.name,
            )
        try:
            program = decode_program(blob)
        except ProgramError as error:
            error.message = f"AkidaOp '{node.name}': {error.message}"
            error.node = node.name
            raise
        input_shape = self._check_akida_input(node, program)
        output_shape = self._check_akida_output(node, program)
        try:
            prepared = PreparedProgram(program)
        except ProgramError as error:
            error.message = f"AkidaOp '{node.name}': {error.message}"
            error.node = node.name
            raise
        return _AkidaStep(
            node.name, program, node.input[0], node.output[0], input_shape, output_shape, prepared
        )

    def _akida_type(self, node: onnx.NodeProto, name: str, role: str) -> onnx.TypeProto.Tensor:
        value = self._value_types.get(name)
        if value is None or not value.type.HasField("tensor_type"):
            raise ProgramError(
                f"AkidaOp '{node.name}' {role} '{name}' has no tensor type in the model",
                code="AK-PROGRAM-MODEL",
                node=node.name,
            )
        return value.type.tensor_type

    def _border_dims(
        self, node: onnx.NodeProto, role: str, program_dims: tuple[int, ...]
    ) -> tuple[int, tuple[int, ...]]:
        """(batch, per-item dims) of an AkidaOp border value, exactly the program's NHWC dims.

        The per-item dims must be the program's `(H, W, C)`, or `(C,)` when the program's tensor
        is 1×1×C (a Dense vector, the same bytes in the same order): comparing element counts
        alone would let a wrong layout (NCHW for NHWC, a transposed image) run silently.
        """
        name = node.input[0] if role == "input" else node.output[0]
        tensor = self._akida_type(node, name, role)
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
        where = f"AkidaOp '{node.name}' {role} '{name}'"
        if not tensor.HasField("shape") or not dims or None in dims:
            raise ProgramError(
                f"{where} must have a static shape (batch first), has {_shape_text(dims)}",
                code="AK-PROGRAM-MODEL",
                node=node.name,
            )
        shape = tuple(int(d) for d in dims)  # type: ignore[arg-type]
        if shape[1:] not in _border_forms(program_dims):
            verb = "takes" if role == "input" else "outputs"
            raise ProgramError(
                f"{where} has shape {_shape_text(shape)} but the program {verb} "
                f"{_shape_text(program_dims)} (NHWC) per batch item: the dims after the batch "
                f"must be {_shape_text(program_dims)}"
                + (f" or [{program_dims[2]}]" if program_dims[:2] == (1, 1) else ""),
                code="AK-PROGRAM-MODEL",
                node=node.name,
            )
        return shape[0], shape[1:]

    def _check_akida_output(self, node: onnx.NodeProto, program: Program) -> tuple[int, ...]:
        """The output value's shape (batch first); its dims and type checked against the program."""
        name = node.output[0]
        batch, item = self._border_dims(node, "output", tuple(program.output.dims))
        tensor = self._akida_type(node, name, "output")
        if _elem_name(tensor.elem_type) != program.output.dtype:
            raise ProgramError(
                f"AkidaOp '{node.name}' output '{name}' is {_elem_name(tensor.elem_type)} but "
                f"the program outputs {program.output.dtype}",
                code="AK-PROGRAM-MODEL",
                node=node.name,
            )
        return (batch, *item)

    def _check_akida_input(self, node: onnx.NodeProto, program: Program) -> tuple[int, ...]:
        """The input value's shape (batch first); its type and dims checked against the program."""
        name = node.input[0]
        tensor = self._akida_type(node, name, "input")
        if _elem_name(tensor.elem_type) != program.input.dtype:
            raise ProgramError(
                f"AkidaOp '{node.name}' input '{name}' is {_elem_name(tensor.elem_type)} but "
                f"the program takes {program.input.dtype}",
                code="AK-PROGRAM-MODEL",
                node=node.name,
            )
        batch, item = self._border_dims(node, "input", tuple(program.input.dims))
        return (batch, *item)

    def _cpu_step(
        self, nodes: list[onnx.NodeProto], needed_after: set[str], indices: list[int]
    ) -> _CpuStep:
        graph = self.model.graph
        produced = {name for node in nodes for name in node.output}
        initializers = {t.name: t for t in graph.initializer}
        consumed: list[str] = []
        used: set[str] = set()
        for node in nodes:
            for name in node_reads(node):
                used.add(name)
                if name not in produced and name not in initializers and name not in consumed:
                    consumed.append(name)
        outputs = [name for node in nodes for name in node.output if name and name in needed_after]
        sub = helper.make_graph(
            nodes,
            graph.name or "cpu_part",
            [self._typed(name) for name in consumed],
            [self._typed(name) for name in outputs],
            [t for name, t in initializers.items() if name in used],
            doc_string=graph.doc_string or None,
        )
        opsets = [o for o in self.model.opset_import if o.domain != "ai.akidac"]
        model = helper.make_model(sub, opset_imports=opsets)
        model.ir_version = self.model.ir_version
        # the hybrid model's identity, so that ORT's modelmeta of a step describes the model
        model.producer_name = self.model.producer_name
        model.producer_version = self.model.producer_version
        model.domain = self.model.domain
        model.model_version = self.model.model_version
        model.doc_string = self.model.doc_string
        model.metadata_props.extend(self.model.metadata_props)
        first, last = nodes[0], nodes[-1]
        label = f"CPU part {_node_label(first, indices[0])}…{_node_label(last, indices[-1])}"
        options = self._part_options(nodes)
        try:
            session = ort.InferenceSession(
                model.SerializeToString(),
                options,
                providers=self._providers,
                provider_options=self._provider_options,
                **self._part_kwargs(nodes),
            )
        except (TypeError, ValueError) as error:  # bad providers / keyword arguments
            raise UsageError(
                f"onnxruntime rejected the session arguments: {_one_line(error)}"
            ) from None
        except Exception as error:  # onnxruntime's own exception types derive from Exception
            raise ProgramError(
                f"{label} cannot be loaded by onnxruntime: {_one_line(error)}",
                code="AK-PROGRAM-MODEL",
                node=first.name,
            ) from None
        return _CpuStep(session, consumed, outputs, label, nodes)

    def _part_options(self, nodes: list[onnx.NodeProto]) -> ort.SessionOptions:
        """The session options of one CPU part: the caller's, or quiet defaults; a copy of
        them where onnxruntime's optimizers must be held back (the caller's object is never
        changed; the copy keeps threads, logging, memory and execution settings)."""
        options = self._options or ort.SessionOptions()
        if self._options is None:
            options.log_severity_level = 3
        subgraph = any(_has_subgraph(node) for node in nodes)
        border = any(
            node.op_type in ("QuantizeLinear", "DequantizeLinear")
            and node.domain in ("", "ai.onnx")
            for node in nodes
        )
        if (subgraph or border) and options is self._options:
            options = _copy_session_options(options)
        if subgraph:
            # onnxruntime 1.32's graph optimizers abort the process (a failed assertion) or
            # fail type inference on DequantizeLinear → Transpose values read inside an If/Loop
            # subgraph; such CPU parts run unoptimized
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        if border:
            # the CPU nodes between a border DequantizeLinear and QuantizeLinear are float
            # nodes of the user's model and must compute in float: onnxruntime's QDQ rewrites
            # would fuse such a sandwich (DequantizeLinear → Transpose → Conv with float
            # weights → Clip → Transpose → QuantizeLinear) into an int8 QLinearConv whose
            # weights it quantizes per tensor itself (measured on onnxruntime 1.32: a trained
            # depthwise whose channels' weights span 0.2..39 fell from 17.5 dB to 10.3 dB);
            # and from opset 21 its QDQ propagation makes a QuantizeLinear whose output_dtype
            # contradicts its zero point, so the part would not even load
            options.add_session_config_entry("session.disable_quant_qdq", "1")
        return options

    def _part_kwargs(self, nodes: list[onnx.NodeProto]) -> dict[str, Any]:
        """The caller's keyword arguments for a CPU part's session, with onnxruntime's
        transpose optimizer held back in parts that hold a border QuantizeLinear.

        onnxruntime 1.32's transpose optimizer pushes a `Transpose → QuantizeLinear` up
        through the float value before it and, when that float value is also an output of the
        part (a residual branch read later), recomputes it as `QuantizeLinear → Transpose →
        DequantizeLinear`: the part then gives the value rounded and clipped to the 8-bit
        range of the AkidaOp input (measured on MediaPipe iris: a PReLU output of 131.6 came
        back as 6.99). Both of its registrations must be off for the part to give its float
        values."""
        kwargs = dict(self._session_kwargs)
        if any(
            node.op_type == "QuantizeLinear" and node.domain in ("", "ai.onnx") for node in nodes
        ):
            disabled = list(kwargs.get("disabled_optimizers") or [])
            for name in TRANSPOSE_OPTIMIZERS:
                if name not in disabled:
                    disabled.append(name)
            kwargs["disabled_optimizers"] = disabled
        return kwargs

    def _typed(self, name: str) -> onnx.ValueInfoProto:
        """A CPU part's input or output type: the model's, with a symbolic batch when every CPU
        part runs whole batches (all its values are then batch-major)."""
        value = self._value_types.get(name)
        if value is None:
            return helper.make_empty_tensor_value_info(name)
        dims = value.type.tensor_type.shape.dim
        if self.batched and value.type.HasField("tensor_type") and len(dims) >= 1:
            relaxed = onnx.ValueInfoProto()
            relaxed.CopyFrom(value)
            dim = relaxed.type.tensor_type.shape.dim[0]
            dim.Clear()
            dim.dim_param = "N"
            return relaxed
        return value

    # ------------------------------------------------------------------- InferenceSession API
    def get_inputs(self) -> list[TensorInfo]:
        return list(self._inputs)

    def get_outputs(self) -> list[TensorInfo]:
        return list(self._outputs)

    def _cpu_sessions(self) -> list[ort.InferenceSession]:
        return [s.session for s in self.steps if isinstance(s, _CpuStep)]

    def get_providers(self) -> list[str]:
        """The execution providers of the onnxruntime sessions (the CPU parts)."""
        sessions = self._cpu_sessions()
        if sessions:
            return list(sessions[0].get_providers())
        return [p if isinstance(p, str) else p[0] for p in self._providers]

    def get_session_options(self) -> ort.SessionOptions:
        sessions = self._cpu_sessions()
        if sessions:
            return sessions[0].get_session_options()
        return self._options or ort.SessionOptions()

    def get_modelmeta(self) -> Any:
        """ORT's `ModelMetadata` of the first CPU part (which carries the hybrid model's
        producer, domain, description, version and metadata), or a `ModelMetadata` read from the
        hybrid model when it has no CPU part."""
        sessions = self._cpu_sessions()
        if sessions:
            return sessions[0].get_modelmeta()
        return ModelMetadata(
            producer_name=self.model.producer_name,
            graph_name=self.model.graph.name,
            graph_description=self.model.graph.doc_string,
            domain=self.model.domain,
            description=self.model.doc_string,
            version=self.model.model_version,
            custom_metadata_map={p.key: p.value for p in self.model.metadata_props},
        )

    def run(
        self,
        output_names: list[str] | None,
        input_feed: dict[str, np.ndarray],
        run_options: ort.RunOptions | None = None,
    ) -> list[np.ndarray]:
        """Run the hybrid model; returns the requested outputs (all when None)."""
        if output_names:
            names = list(output_names)
            unknown = [name for name in names if name not in self._output_names]
            if unknown:
                raise UsageError(
                    f"unknown output {', '.join(repr(n) for n in unknown)}: "
                    f"the model's outputs are {', '.join(self._output_names)}"
                )
        else:
            names = self._output_names
        feeds = self._check_feeds(input_feed)
        batch = self._batch_of(feeds)
        steps = self.run_steps
        if batch == self._compiled_batch or (self.batched and batch > 0):
            env = self._walk(feeds, run_options, steps)
            if batch != self._compiled_batch:
                self._check_batched_outputs(env, names, batch)
            # a fused part may leave a float value in its frame's order (a transposed view)
            return [np.ascontiguousarray(env[name]) for name in names]
        chunks = [
            self._walk(part, run_options, steps) for part in self._per_sample_feeds(feeds, batch)
        ]
        return [self._join(name, [env[name] for env in chunks], batch) for name in names]

    def run_dataset(
        self,
        feeds: Iterable[dict[str, np.ndarray]],
        output_names: list[str] | None = None,
        run_options: ort.RunOptions | None = None,
    ) -> list[np.ndarray]:
        """Run every feed of an iterable (each one batch, e.g. one sample) and return each
        requested output stacked along axis 0 over the whole set (all outputs when None).

        Any iterable of feed dicts works: a list, a generator reading files, or
        `({"x": data[i : i + 1]} for i in range(len(data)))` over an npz array, so a whole
        validation set runs without holding its inputs in memory at once.
        """
        names = list(output_names) if output_names else list(self._output_names)
        parts: list[list[np.ndarray]] = [[] for _ in names]
        for feed in feeds:
            for part, value in zip(parts, self.run(names, feed, run_options), strict=True):
                part.append(value)
        if not parts or not parts[0]:
            raise UsageError("run_dataset was given no feed")
        return [np.concatenate(part, axis=0) for part in parts]

    def akida_steps(self) -> list[tuple[str, Program, str]]:
        """(AkidaOp node name, its program, its input value name) in execution order."""
        return [(s.name, s.program, s.input) for s in self.steps if isinstance(s, _AkidaStep)]

    # --------------------------------------------------------------------------------- running
    def _check_feeds(self, input_feed: dict[str, Any]) -> dict[str, np.ndarray]:
        feeds: dict[str, np.ndarray] = {}
        for name, elem, want, static, info in self._feed_specs:
            array = input_feed.get(name)
            if array is None:
                if name not in input_feed:
                    self._check_feed_names(input_feed)
                    raise UsageError(f"missing input '{name}'")
            if type(array) is not np.ndarray:
                array = np.asarray(array)
            if static is not None and array.shape == static and array.dtype == want:
                feeds[name] = array  # the common case, checked in two comparisons
                continue
            if elem == onnx.TensorProto.STRING:
                dtype_ok = array.dtype.kind in "OUS"
            else:
                dtype_ok = want is None or array.dtype == want
            dims = info.shape
            shape_ok = len(array.shape) == len(dims) and all(
                not isinstance(d, int) or d == size
                for d, size in zip(dims, array.shape, strict=True)
            )
            if not (dtype_ok and shape_ok):
                raise UsageError(
                    f"input '{name}' must be {_elem_name(elem)} {_shape_text(dims)}, "
                    f"got {array.dtype.name} {_shape_text(array.shape)}"
                )
            feeds[name] = array
        if len(input_feed) != len(feeds):
            self._check_feed_names(input_feed)
        return feeds

    def _check_feed_names(self, input_feed: dict[str, Any]) -> None:
        names = [info.name for info in self._inputs]
        unknown = [name for name in input_feed if name not in names]
        if unknown:
            raise UsageError(
                f"unknown input {', '.join(repr(n) for n in unknown)}: "
                f"the model's inputs are {', '.join(names)}"
            )

    def _batch_of(self, feeds: dict[str, np.ndarray]) -> int:
        """The batch of the feeds: the compiled one unless an input has a dynamic batch."""
        if not self._dynamic_inputs:
            return self._compiled_batch
        sizes = {name: feeds[name].shape[0] for name in self._dynamic_inputs}
        if len(set(sizes.values())) != 1:
            listed = ", ".join(f"'{name}' {size}" for name, size in sizes.items())
            raise UsageError(f"the inputs with a batch dimension differ in batch size: {listed}")
        batch = next(iter(sizes.values()))
        if batch == 0:
            raise UsageError("an empty batch (size 0) cannot run")
        return batch

    def _per_sample_feeds(
        self, feeds: dict[str, np.ndarray], batch: int
    ) -> list[dict[str, np.ndarray]]:
        """The feeds cut into runs of the compiled batch (inputs without a batch: whole)."""
        size = self._compiled_batch
        if batch % size:
            raise UsageError(
                f"the model was compiled for batches of {size} and runs a batch of {batch} "
                f"in runs of {size}: give a multiple of {size}"
            )
        return [
            {
                name: array[start : start + size] if name in self._dynamic_inputs else array
                for name, array in feeds.items()
            }
            for start in range(0, batch, size)
        ]

    def _join(self, name: str, values: list[np.ndarray], batch: int) -> np.ndarray:
        """One output of a batch run in parts: concatenated along its batch axis, or, for an
        output without one, the value every part computed."""
        if name in self._dynamic_outputs:
            return np.concatenate(values, axis=0)
        first = values[0]
        if all(np.array_equal(first, v) for v in values[1:]):
            return first
        raise ProgramError(
            f"output '{name}' has no batch dimension but differs between the samples of a "
            f"batch of {batch}: run one sample at a time",
            code="AK-PROGRAM-MODEL",
        )

    def _check_batched_outputs(self, env: dict[str, np.ndarray], names: list[str], batch: int):
        for name in names:
            value = env[name]
            if name in self._dynamic_outputs and (value.ndim == 0 or value.shape[0] != batch):
                raise ProgramError(
                    f"output '{name}' of a batch of {batch} has shape {_shape_text(value.shape)}",
                    code="AK-PROGRAM-MODEL",
                )

    def run_all(
        self, input_feed: dict[str, np.ndarray], run_options: ort.RunOptions | None = None
    ) -> dict[str, np.ndarray]:
        """Run the hybrid model and return every value computed, by name (for tracing).

        A batch that runs in parts (see the class docstring) gives each value of every part
        concatenated along axis 0 (a value of rank 0: the first part's)."""
        feeds = self._check_feeds(input_feed)
        batch = self._batch_of(feeds)
        if batch == self._compiled_batch or (self.batched and batch > 0):
            return self._walk(feeds, run_options)
        chunks = [self._walk(part, run_options) for part in self._per_sample_feeds(feeds, batch)]
        return {
            name: np.concatenate([env[name] for env in chunks], axis=0) if np.ndim(value) else value
            for name, value in chunks[0].items()
        }

    def _walk(
        self,
        feeds: dict[str, np.ndarray],
        run_options: ort.RunOptions | None,
        steps: Sequence[_CpuStep | _AkidaStep | _BorderStep | _FusedStep] | None = None,
    ) -> dict[str, np.ndarray]:
        """Run the steps (`self.steps` when None) in order on checked feeds; every value
        computed, by name."""
        env: dict[str, np.ndarray] = dict(feeds)
        for step in self.steps if steps is None else steps:
            step.execute(env, run_options)
        return env


#: the SessionOptions settings a copy keeps (onnxruntime offers no copy of its own).
_SESSION_OPTION_FIELDS = (
    "enable_cpu_mem_arena",
    "enable_mem_pattern",
    "enable_mem_reuse",
    "enable_profiling",
    "execution_mode",
    "execution_order",
    "graph_optimization_level",
    "inter_op_num_threads",
    "intra_op_num_threads",
    "log_severity_level",
    "log_verbosity_level",
    "logid",
    "use_deterministic_compute",
)


def _schedule(
    nodes: Sequence[onnx.NodeProto], reads: list[list[str]], akida: set[int]
) -> list[list[int]]:
    """Group node indices into steps run in order: each AkidaOp alone, and the CPU nodes in as
    few onnxruntime sessions as the data flow allows (`reads[i]`: what node i reads, as
    `node_reads` gives it).

    Cutting the node list at every AkidaOp, in the order the file lists the nodes, gives a
    model with parallel branches (Inception blocks, detection heads) one onnxruntime session
    per stretch between AkidaOps, and each session call costs tens of microseconds. So each
    CPU node first goes to the earliest CPU part that runs after everything it reads (a
    branch's border Transpose → QuantizeLinear joins the part before its sibling's AkidaOp);
    then a CPU part whose every node can run in a later part, still before its readers (an
    AkidaOp's DequantizeLinear → Transpose waiting for the Concat of the other branches), is
    dissolved into those parts (`_dissolve_cpu_parts`). Nodes arrive in topological order and
    each part keeps them in that order, so every value is computed before it is read.

    A greedy heuristic, not an optimum (that is a scheduling problem); it never gives more CPU
    parts than cutting at every AkidaOp (a test checks it on random graphs)."""
    groups: list[list[int]] = []
    producer: dict[str, int] = {}  # value name → index of the group that computes it
    for index, node in enumerate(nodes):
        ready = max((producer[name] for name in reads[index] if name in producer), default=-1)
        if index in akida:
            target = len(groups)
            groups.append([index])
        else:
            target = next(
                (g for g in range(max(ready, 0), len(groups)) if groups[g][0] not in akida),
                len(groups),
            )
            if target == len(groups):
                groups.append([])
            groups[target].append(index)
        for name in node.output:
            if name:
                producer[name] = target
    return _dissolve_cpu_parts(groups, nodes, reads, akida)


def _dissolve_cpu_parts(
    groups: list[list[int]],
    nodes: Sequence[onnx.NodeProto],
    reads: list[list[str]],
    akida: set[int],
) -> list[list[int]]:
    """Move every node of a CPU part to later CPU parts where each still runs after what it
    reads and no later than its first reader, when all of them can move; the part then goes.
    Tried from the last part to the first."""
    writer = {name: i for i, node in enumerate(nodes) for name in node.output if name}
    readers: dict[int, list[int]] = {i: [] for i in range(len(nodes))}
    for i, names in enumerate(reads):
        for name in names:
            if name in writer:
                readers[writer[name]].append(i)
    where = {i: g for g, group in enumerate(groups) for i in group}
    cpu_parts = [g for g, group in enumerate(groups) if group and group[0] not in akida]
    for part in reversed(cpu_parts):
        moved = set(groups[part])
        plan: dict[int, int] = {}
        for i in reversed(groups[part]):
            # a writer in this part counts as `part`: it moves too, to a slot no later than i's
            ready = max((where[writer[n]] for n in reads[i] if n in writer), default=-1)
            latest = min(
                (plan[r] if r in moved else where[r] for r in readers[i]), default=len(groups)
            )
            slot = max(
                (g for g in cpu_parts if part < g and ready <= g and g <= latest and groups[g]),
                default=None,
            )
            if slot is None:  # (a slot is a CPU part: it runs before an AkidaOp reader at latest)
                break
            plan[i] = slot
        else:
            for i, g in plan.items():
                groups[g] = sorted([*groups[g], i])
                where[i] = g
            groups[part] = []
    return [group for group in groups if group]


def _copy_session_options(options: ort.SessionOptions) -> ort.SessionOptions:
    """A new SessionOptions with the caller's settings (threads, logging, memory, mode)."""
    copy = ort.SessionOptions()
    for name in _SESSION_OPTION_FIELDS:
        if hasattr(options, name):
            setattr(copy, name, getattr(options, name))
    return copy


def _has_subgraph(node: onnx.NodeProto) -> bool:
    return any(
        attr.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
        for attr in node.attribute
    )
