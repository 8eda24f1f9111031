"""Loading a hybrid model checks it: ONNX validity, topological order, every AkidaOp's types
against its program. A corrupt or inconsistent model is a one-line ProgramError naming the node."""

from __future__ import annotations

import onnx
import pytest
from onnx import TensorProto, helper

from akidac.errors import ProgramError
from akidac.runtime.session import HybridSession


def value_info(model: onnx.ModelProto, name: str) -> onnx.ValueInfoProto:
    return next(v for v in model.graph.value_info if v.name == name)


def akida_node(model: onnx.ModelProto) -> onnx.NodeProto:
    return next(n for n in model.graph.node if n.op_type == "AkidaOp")


def load_error(model: onnx.ModelProto) -> ProgramError:
    with pytest.raises(ProgramError) as caught:
        HybridSession(model)
    error = caught.value
    assert error.exit_code == 6
    assert "\n" not in str(error)
    return error


def test_the_compiled_hybrid_model_loads(hybrid: onnx.ModelProto) -> None:
    assert len(HybridSession(hybrid).akida_steps()) == 1


def test_a_model_the_onnx_checker_rejects_is_a_program_model_error(
    hybrid: onnx.ModelProto,
) -> None:
    hybrid.graph.node[-1].op_type = "NotAnOnnxOp"
    error = load_error(hybrid)
    assert error.code == "AK-PROGRAM-MODEL"
    assert "not a valid ONNX model" in error.message
    assert "NotAnOnnxOp" in error.message


def test_nodes_out_of_topological_order_are_a_program_error_naming_the_node(
    hybrid: onnx.ModelProto,
) -> None:
    nodes = list(hybrid.graph.node)
    del hybrid.graph.node[:]
    hybrid.graph.node.extend([nodes[1], nodes[0], *nodes[2:]])
    error = load_error(hybrid)
    assert error.code == "AK-PROGRAM-MODEL"
    assert error.message == (
        "node 'quantize/input_nhwc_q' reads 'input_nhwc' before node 'partition/input_nhwc' "
        "computes it: the nodes are not in topological order"
    )


def test_a_subgraph_reading_a_value_computed_later_is_out_of_topological_order(
    hybrid: onnx.ModelProto,
) -> None:
    branch = helper.make_graph(
        [helper.make_node("Identity", ["softmax"], ["branch_out"])],
        "branch",
        [],
        [helper.make_tensor_value_info("branch_out", TensorProto.FLOAT, None)],
    )
    hybrid.graph.input.append(helper.make_tensor_value_info("flag", TensorProto.BOOL, []))
    hybrid.graph.node.insert(
        0,
        helper.make_node(
            "If", ["flag"], ["early"], name="early_if", then_branch=branch, else_branch=branch
        ),
    )
    error = load_error(hybrid)
    assert "node 'early_if' reads 'softmax' before node" in error.message


def test_an_akida_op_with_two_inputs_is_a_program_error(hybrid: onnx.ModelProto) -> None:
    akida_node(hybrid).input.append("input")
    error = load_error(hybrid)
    assert error.message.startswith("AkidaOp 'akida_region_0' must have exactly one input")
    assert error.node == "akida_region_0"


def test_an_akida_op_with_two_outputs_is_a_program_error(hybrid: onnx.ModelProto) -> None:
    akida_node(hybrid).output.append("second")
    assert "exactly one input and one output" in load_error(hybrid).message


def test_an_akida_op_output_without_a_type_is_a_program_error(hybrid: onnx.ModelProto) -> None:
    hybrid.graph.value_info.remove(value_info(hybrid, "fc2_akida"))
    error = load_error(hybrid)
    assert error.message == (
        "AkidaOp 'akida_region_0' output 'fc2_akida' has no tensor type in the model"
    )


def test_an_akida_op_output_with_a_symbolic_dim_is_a_program_error(hybrid: onnx.ModelProto) -> None:
    value_info(hybrid, "fc2_akida").type.tensor_type.shape.dim[0].dim_param = "N"
    assert "must have a static shape" in load_error(hybrid).message


def test_an_akida_op_output_whose_size_differs_from_the_program_is_a_program_error(
    hybrid: onnx.ModelProto,
) -> None:
    value_info(hybrid, "fc2_akida").type.tensor_type.shape.dim[1].dim_value = 11
    error = load_error(hybrid)
    assert "AkidaOp 'akida_region_0' output 'fc2_akida' has shape [1, 11]" in error.message
    assert "the program outputs [1, 1, 10]" in error.message


def test_an_akida_op_output_whose_type_differs_from_the_program_is_a_program_error(
    hybrid: onnx.ModelProto,
) -> None:
    value_info(hybrid, "fc2_akida").type.tensor_type.elem_type = TensorProto.FLOAT
    error = load_error(hybrid)
    assert error.message == (
        "AkidaOp 'akida_region_0' output 'fc2_akida' is float32 but the program outputs int32"
    )


def test_an_akida_op_input_whose_type_differs_from_the_program_is_a_program_error(
    hybrid: onnx.ModelProto,
) -> None:
    value_info(hybrid, "input_nhwc_q").type.tensor_type.elem_type = TensorProto.INT8
    error = load_error(hybrid)
    assert error.message == (
        "AkidaOp 'akida_region_0' input 'input_nhwc_q' is int8 but the program takes uint8"
    )


def test_an_akida_op_input_whose_size_differs_from_the_program_is_a_program_error(
    hybrid: onnx.ModelProto,
) -> None:
    value_info(hybrid, "input_nhwc_q").type.tensor_type.shape.dim[3].dim_value = 4
    error = load_error(hybrid)
    assert "input 'input_nhwc_q' has shape [1, 32, 32, 4]" in error.message


def test_an_akida_op_input_without_a_type_is_a_program_error(hybrid: onnx.ModelProto) -> None:
    hybrid.graph.value_info.remove(value_info(hybrid, "input_nhwc_q"))
    assert "input 'input_nhwc_q' has no tensor type" in load_error(hybrid).message
