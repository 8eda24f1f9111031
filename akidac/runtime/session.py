"""`HybridSession`: runs a hybrid model — CPU parts in onnxruntime, AkidaOps on the hardware model.

At load it decodes every embedded program (a corrupt one is a `ProgramError`, exit 6) and
splits the node list, which ONNX keeps in topological order, into steps: each `AkidaOp` is one
step, and each maximal run of other nodes between them is one onnxruntime session. At run time
it walks the steps and passes NumPy arrays between them. It mirrors
`onnxruntime.InferenceSession`: `get_inputs()`, `get_outputs()`, `run(output_names, feeds)`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper

from akidac.backends.akida.executor import run_program
from akidac.backends.akida.program import Program, decode_program
from akidac.errors import ModelError, ProgramError, UsageError
from akidac.runtime.akida_op import is_akida_node, program_bytes


@dataclass(frozen=True)
class TensorInfo:
    """Name, shape and element type of a model input or output (like ORT's NodeArg)."""

    name: str
    shape: list[int | str | None]
    type: str


@dataclass
class _CpuStep:
    session: ort.InferenceSession
    inputs: list[str]
    outputs: list[str]


@dataclass
class _AkidaStep:
    name: str
    program: Program
    input: str
    output: str
    output_shape: tuple[int, ...]


def _info(value: onnx.ValueInfoProto) -> TensorInfo:
    tensor = value.type.tensor_type
    dims: list[int | str | None] = [
        d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tensor.shape.dim
    ]
    type_name = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name
    return TensorInfo(value.name, dims, f"tensor({type_name})")


class HybridSession:
    """Run a hybrid model from a path, bytes or `ModelProto`."""

    def __init__(
        self,
        model: str | os.PathLike[str] | bytes | onnx.ModelProto,
        sess_options: ort.SessionOptions | None = None,
        providers: list[str] | None = None,
    ) -> None:
        self.model = self._load(model)
        self._options = sess_options
        self._providers = providers or ["CPUExecutionProvider"]
        graph = self.model.graph
        initializers = {t.name for t in graph.initializer}
        self._inputs = [_info(v) for v in graph.input if v.name not in initializers]
        self._outputs = [_info(v) for v in graph.output]
        self._value_types = {v.name: v for v in [*graph.value_info, *graph.output, *graph.input]}
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

    def _split(self) -> list[_CpuStep | _AkidaStep]:
        graph = self.model.graph
        nodes = list(graph.node)
        needed_later: list[set[str]] = [set() for _ in range(len(nodes) + 1)]
        outputs = {o.name for o in graph.output}
        needed_later[len(nodes)] = set(outputs)
        for index in range(len(nodes) - 1, -1, -1):
            needed_later[index] = needed_later[index + 1] | set(nodes[index].input)
        steps: list[_CpuStep | _AkidaStep] = []
        run: list[int] = []
        for index, node in enumerate(nodes):
            if is_akida_node(node):
                if run:
                    steps.append(self._cpu_step([nodes[i] for i in run], needed_later[index]))
                    run = []
                steps.append(self._akida_step(node))
            else:
                run.append(index)
        if run:
            steps.append(self._cpu_step([nodes[i] for i in run], needed_later[len(nodes)]))
        return steps

    def _akida_step(self, node: onnx.NodeProto) -> _AkidaStep:
        blob = program_bytes(node)
        if blob is None:
            raise ProgramError(
                f"AkidaOp '{node.name}' has no embedded program", code="AK-PROGRAM-MISSING"
            )
        try:
            program = decode_program(blob)
        except ProgramError as error:
            error.message = f"AkidaOp '{node.name}': {error.message}"
            raise
        out = self._value_types.get(node.output[0])
        if out is None:
            raise ProgramError(
                f"AkidaOp '{node.name}' output '{node.output[0]}' has no type",
                code="AK-PROGRAM-MODEL",
            )
        shape = tuple(d.dim_value for d in out.type.tensor_type.shape.dim)
        return _AkidaStep(node.name, program, node.input[0], node.output[0], shape)

    def _cpu_step(self, nodes: list[onnx.NodeProto], needed_after: set[str]) -> _CpuStep:
        graph = self.model.graph
        produced = {name for node in nodes for name in node.output}
        initializers = {t.name: t for t in graph.initializer}
        consumed: list[str] = []
        for node in nodes:
            for name in node.input:
                if (
                    name
                    and name not in produced
                    and name not in initializers
                    and name not in consumed
                ):
                    consumed.append(name)
        outputs = [name for node in nodes for name in node.output if name and name in needed_after]
        used = {name for node in nodes for name in node.input}
        sub = helper.make_graph(
            nodes,
            "cpu_part",
            [self._typed(name) for name in consumed],
            [self._typed(name) for name in outputs],
            [t for name, t in initializers.items() if name in used],
        )
        opsets = [o for o in self.model.opset_import if o.domain != "ai.akidac"]
        model = helper.make_model(sub, opset_imports=opsets)
        model.ir_version = self.model.ir_version
        options = self._options or ort.SessionOptions()
        if self._options is None:
            options.log_severity_level = 3
        session = ort.InferenceSession(
            model.SerializeToString(), options, providers=self._providers
        )
        return _CpuStep(session, consumed, outputs)

    def _typed(self, name: str) -> onnx.ValueInfoProto:
        if name in self._value_types:
            return self._value_types[name]
        return helper.make_empty_tensor_value_info(name)

    def get_inputs(self) -> list[TensorInfo]:
        return list(self._inputs)

    def get_outputs(self) -> list[TensorInfo]:
        return list(self._outputs)

    def run(
        self,
        output_names: list[str] | None,
        input_feed: dict[str, np.ndarray],
        run_options: ort.RunOptions | None = None,
    ) -> list[np.ndarray]:
        """Run the hybrid model; returns the requested outputs (all when None)."""
        env = self.run_all(input_feed, run_options)
        names = output_names or [o.name for o in self._outputs]
        return [env[name] for name in names]

    def akida_steps(self) -> list[tuple[str, Program, str]]:
        """(AkidaOp node name, its program, its input value name) in execution order."""
        return [(s.name, s.program, s.input) for s in self.steps if isinstance(s, _AkidaStep)]

    def run_all(
        self, input_feed: dict[str, np.ndarray], run_options: ort.RunOptions | None = None
    ) -> dict[str, np.ndarray]:
        """Run the hybrid model and return every value computed, by name (for tracing)."""
        env: dict[str, np.ndarray] = {}
        for info in self._inputs:
            if info.name not in input_feed:
                raise UsageError(f"missing input '{info.name}'")
            env[info.name] = np.asarray(input_feed[info.name])
        for step in self.steps:
            if isinstance(step, _AkidaStep):
                x = env[step.input]
                dims = step.program.input.dims
                y = run_program(step.program, x.reshape(x.shape[0], *dims))
                env[step.output] = y.reshape(step.output_shape)
            else:
                feeds = {name: env[name] for name in step.inputs}
                results = step.session.run(step.outputs, feeds, run_options)
                env.update(zip(step.outputs, results, strict=True))
        return env
