"""`HybridSession`: runs a hybrid model — CPU parts in onnxruntime, AkidaOps on the hardware model.

At load it checks the model (`onnx.checker.check_model`, topological order, every AkidaOp's
types against its program), decodes every embedded program (a corrupt or inconsistent model is a
`ProgramError`, exit 6) and splits the node list into steps: each `AkidaOp` is one step, and each
maximal run of other nodes between them is one onnxruntime session. At run time it checks the
feeds against the model inputs (a bad feed is a `UsageError`, exit 2), walks the steps and passes
NumPy arrays between them. It mirrors `onnxruntime.InferenceSession`: `get_inputs()`,
`get_outputs()`, `get_providers()`, `get_modelmeta()`, `get_session_options()` and
`run(output_names, feeds, run_options)`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper

try:
    from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument as _OrtInvalidArgument
except ImportError:  # pragma: no cover - the module of ORT's exception types moved
    _OrtInvalidArgument = ()  # type: ignore[assignment,misc]

from akidac.backends.akida.executor import PreparedProgram
from akidac.backends.akida.program import Program, decode_program
from akidac.errors import AkidacError, ModelError, ProgramError, UsageError
from akidac.runtime.akida_op import is_akida_node, program_bytes


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


@dataclass
class _CpuStep:
    session: ort.InferenceSession
    inputs: list[str]
    outputs: list[str]
    label: str


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


class HybridSession:
    """Run a hybrid model from a path, bytes or `ModelProto`.

    `sess_options`, `providers`, `provider_options` and any other keyword argument are passed to
    every onnxruntime session the model's CPU parts run in.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | bytes | onnx.ModelProto,
        sess_options: ort.SessionOptions | None = None,
        providers: list[str] | None = None,
        provider_options: list[dict[Any, Any]] | None = None,
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
        self.steps: list[_CpuStep | _AkidaStep] = self._split()

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
                f"'{model}' is not a readable hybrid ONNX model: "
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

    def _split(self) -> list[_CpuStep | _AkidaStep]:
        graph = self.model.graph
        nodes = list(graph.node)
        needed_later: list[set[str]] = [set() for _ in range(len(nodes) + 1)]
        outputs = {o.name for o in graph.output}
        needed_later[len(nodes)] = set(outputs)
        for index in range(len(nodes) - 1, -1, -1):
            needed_later[index] = needed_later[index + 1] | set(node_reads(nodes[index]))
        # every AkidaOp is checked before any onnxruntime session is made: its error is clearer
        akida = {i: self._akida_step(node) for i, node in enumerate(nodes) if is_akida_node(node)}
        steps: list[_CpuStep | _AkidaStep] = []
        run: list[int] = []
        for index in range(len(nodes)):
            if index in akida:
                if run:
                    steps.append(self._cpu_step([nodes[i] for i in run], needed_later[index], run))
                    run = []
                steps.append(akida[index])
            else:
                run.append(index)
        if run:
            steps.append(self._cpu_step([nodes[i] for i in run], needed_later[len(nodes)], run))
        return steps

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
        options = self._options or ort.SessionOptions()
        if self._options is None:
            options.log_severity_level = 3
            if any(_has_subgraph(node) for node in nodes):
                # onnxruntime 1.32's graph optimizers abort the process (a failed assertion)
                # on DequantizeLinear → Transpose values read inside an If/Loop subgraph; such
                # CPU parts run unoptimized
                options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        try:
            session = ort.InferenceSession(
                model.SerializeToString(),
                options,
                providers=self._providers,
                provider_options=self._provider_options,
                **self._session_kwargs,
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
        return _CpuStep(session, consumed, outputs, label)

    def _typed(self, name: str) -> onnx.ValueInfoProto:
        if name in self._value_types:
            return self._value_types[name]
        return helper.make_empty_tensor_value_info(name)

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
        names = list(output_names) if output_names else [o.name for o in self._outputs]
        known = [o.name for o in self._outputs]
        unknown = [name for name in names if name not in known]
        if unknown:
            raise UsageError(
                f"unknown output {', '.join(repr(n) for n in unknown)}: "
                f"the model's outputs are {', '.join(known)}"
            )
        env = self.run_all(input_feed, run_options)
        return [env[name] for name in names]

    def akida_steps(self) -> list[tuple[str, Program, str]]:
        """(AkidaOp node name, its program, its input value name) in execution order."""
        return [(s.name, s.program, s.input) for s in self.steps if isinstance(s, _AkidaStep)]

    # --------------------------------------------------------------------------------- running
    def _check_feeds(self, input_feed: dict[str, Any]) -> dict[str, np.ndarray]:
        names = [info.name for info in self._inputs]
        unknown = [name for name in input_feed if name not in names]
        if unknown:
            raise UsageError(
                f"unknown input {', '.join(repr(n) for n in unknown)}: "
                f"the model's inputs are {', '.join(names)}"
            )
        feeds: dict[str, np.ndarray] = {}
        for info in self._inputs:
            if info.name not in input_feed:
                raise UsageError(f"missing input '{info.name}'")
            array = np.asarray(input_feed[info.name])
            elem = self._input_types[info.name]
            want = _elem_np_dtype(elem)
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
                    f"input '{info.name}' must be {_elem_name(elem)} {_shape_text(dims)}, "
                    f"got {array.dtype.name} {_shape_text(array.shape)}"
                )
            feeds[info.name] = array
        return feeds

    def run_all(
        self, input_feed: dict[str, np.ndarray], run_options: ort.RunOptions | None = None
    ) -> dict[str, np.ndarray]:
        """Run the hybrid model and return every value computed, by name (for tracing)."""
        env: dict[str, np.ndarray] = dict(self._check_feeds(input_feed))
        for step in self.steps:
            if isinstance(step, _AkidaStep):
                env[step.output] = self._run_akida(step, env[step.input])
            else:
                feeds = {name: env[name] for name in step.inputs}
                try:
                    results = step.session.run(step.outputs, feeds, run_options)
                except AkidacError:
                    raise
                except Exception as error:  # onnxruntime's exception types derive from Exception
                    message = f"{step.label} failed in onnxruntime: {_one_line(error)}"
                    if isinstance(error, _OrtInvalidArgument):
                        raise UsageError(message) from None
                    raise ProgramError(message) from None
                env.update(zip(step.outputs, results, strict=True))
        return env

    @staticmethod
    def _run_akida(step: _AkidaStep, x: np.ndarray) -> np.ndarray:
        """Run one AkidaOp on its border value `x`: exactly (N, *program input dims), or (N, C)
        for a 1×1×C program input; anything else is a ProgramError naming both shapes."""
        shape = x.shape
        if shape[1:] != step.input_shape[1:] or x.dtype != step.prepared.input_dtype:
            raise ProgramError(
                f"AkidaOp '{step.name}' input '{step.input}' is {x.dtype.name} "
                f"{_shape_text(shape)}, the program takes {step.prepared.input_dtype.name} "
                f"{_shape_text(step.input_shape[1:])} per batch item",
                code="AK-PROGRAM-MODEL",
                node=step.name,
            )
        if step.flat_input:
            x = x.reshape(shape[0], *step.input_dims)
        try:
            y = step.prepared.model.run_to(x, step.prepared.output_index)
        except ProgramError as error:
            error.message = f"AkidaOp '{step.name}': {error.message}"
            error.node = step.name
            raise
        if step.flat_output:
            return y.reshape(shape[0], *step.output_item)
        return y


def _has_subgraph(node: onnx.NodeProto) -> bool:
    return any(
        attr.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
        for attr in node.attribute
    )
