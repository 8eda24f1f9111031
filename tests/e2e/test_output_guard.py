"""The output guard: while a model output drifts from the float model, Akida regions upstream of
it go to the CPU (AK-OUTPUT-GUARD), and only moves that lift the output are kept.

The drifting model is the one of test_output_fidelity_warning: a region whose outputs sit near 10
with a spread of a few hundredths passes the region guard (its own SQNR is high), and the CPU's
`Sub(10)` after it leaves only the spread, which 8-bit codes over [0, 10] cannot hold.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import numpy as np
from onnx import ModelProto, TensorProto, helper, numpy_helper

from akidac import CompileOptions, compile_model
from akidac.output_guard import _keeps, _moved, _Trial, _upstream_regions
from akidac.runtime.compare import measure_fidelity
from akidac.runtime.session import HybridSession
from tests.e2e.test_output_fidelity_warning import offset_model


def _guard_notes(result: object) -> list[str]:
    return [d.message for d in result.diagnostics.items if d.code == "AK-OUTPUT-GUARD"]  # type: ignore[attr-defined]


def _fidelity(result: object, name: str) -> dict:
    outputs = result.analyses["fidelity"]["outputs"]  # type: ignore[attr-defined]
    return next(o for o in outputs if o["name"] == name)


def test_a_drifting_output_gets_its_region_moved_to_the_cpu_and_becomes_faithful() -> None:
    model = offset_model(10.0)
    unguarded = compile_model(model, options=CompileOptions(min_output_sqnr=None))
    before = _fidelity(unguarded, "y")
    assert before["sqnr_db"] < 20 and unguarded.report["summary"]["macs_on_akida"] > 0

    result = compile_model(model)
    # the whole drift came through Akida's one region: on the CPU the output is the float model's
    assert result.report["summary"]["macs_on_akida"] == 0
    rng = np.random.default_rng(7)
    feeds = [{"x": rng.normal(size=(1, 3, 16, 16)).astype(np.float32)} for _ in range(4)]
    after = measure_fidelity(model, HybridSession(result.model), feeds)["y"]
    assert after["sqnr_db"] >= 20
    assert after["sqnr_db"] > after["constant_sqnr_db"] + 20
    assert after["pearson"] > 0.99
    (note,) = _guard_notes(result)
    assert "on the CPU lifts 'y' from" in note
    moved = result.analyses["cpu_fallback"]
    assert moved and {entry["code"] for entry in moved.values()} == {"AK-OUTPUT-GUARD"}
    sentence = next(iter(moved.values()))["message"]
    assert "below the 21.5 dB the guard aims at (--min-output-sqnr and a margin" in sentence
    assert "'y'" in sentence
    # the guard's own figures cover the outputs an Akida region still reaches: none here
    assert result.analyses["output_guard"]["output_sqnr_db"] == {}
    assert "AK-OUTPUT-FIDELITY" not in {d.code for d in result.diagnostics.items}


def test_a_faithful_model_is_compiled_once_and_left_as_it_is() -> None:
    model = offset_model(0.0)
    guarded = compile_model(model)
    unguarded = compile_model(model, options=CompileOptions(min_output_sqnr=None))
    assert _guard_notes(guarded) == []
    assert guarded.analyses["output_guard"]["trials"] == 0
    assert guarded.model.SerializeToString() == unguarded.model.SerializeToString()


def test_the_guarded_compile_is_deterministic() -> None:
    model = offset_model(10.0)
    first = compile_model(model).model.SerializeToString()
    assert compile_model(model).model.SerializeToString() == first


def test_at_four_bits_the_guard_stands_aside() -> None:
    result = compile_model(offset_model(10.0), options=CompileOptions(wbits=4, abits=4))
    assert _guard_notes(result) == []
    assert "output_guard" not in result.analyses


def _two_branch_model() -> ModelProto:
    """y drifts (offset branch) and z is faithful (a separate convolution on the same input): the
    guard may only try the region upstream of y."""
    offset = offset_model(10.0)
    rng = np.random.default_rng(1)
    graph = offset.graph
    graph.initializer.append(
        numpy_helper.from_array(rng.normal(0, 0.3, (4, 3, 3, 3)).astype(np.float32), "wz")
    )
    graph.node.append(helper.make_node("Conv", ["x", "wz"], ["cz"], pads=[1] * 4))
    graph.node.append(helper.make_node("Relu", ["cz"], ["z"]))
    graph.output.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 4, 16, 16]))
    return offset


def test_only_regions_upstream_of_the_drifting_output_move() -> None:
    result = compile_model(_two_branch_model())
    assert _fidelity(result, "y")["sqnr_db"] >= 20
    assert _fidelity(result, "z")["sqnr_db"] >= 20
    # the drifting branch's two convolutions run on the CPU, the faithful branch's on Akida
    op_types = [n.op_type for n in result.model.graph.node]
    assert op_types.count("AkidaOp") == 1 and op_types.count("Conv") == 2
    (note,) = _guard_notes(result)
    assert "lifts 'y'" in note and "'z'" not in note


def test_upstream_regions_follow_values_through_subgraph_captures() -> None:
    """An output computed inside an If branch from an AkidaOp's value depends on that region."""
    branch_out = helper.make_tensor_value_info("b", TensorProto.FLOAT, [1])
    then_branch = helper.make_graph(
        [helper.make_node("Identity", ["a1"], ["b"])], "then", [], [branch_out]
    )
    else_branch = helper.make_graph(
        [helper.make_node("Identity", ["a0"], ["b"])], "else", [], [branch_out]
    )
    nodes = [
        helper.make_node("AkidaOp", ["x"], ["a0"], name="akida_region_0", domain="akida"),
        helper.make_node("AkidaOp", ["x"], ["a1"], name="akida_region_1", domain="akida"),
        helper.make_node("AkidaOp", ["x"], ["a2"], name="akida_region_2", domain="akida"),
        helper.make_node("If", ["cond"], ["y"], then_branch=then_branch, else_branch=else_branch),
        helper.make_node("Relu", ["a2"], ["z"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1]),
            helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
        ],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, [1]),
            helper.make_tensor_value_info("z", TensorProto.FLOAT, [1]),
            helper.make_tensor_value_info("x2", TensorProto.FLOAT, [1]),
        ],
    )
    graph.node.append(helper.make_node("Identity", ["x"], ["x2"]))
    model = helper.make_model(graph)
    assert _upstream_regions(model) == {"y": {0, 1}, "z": {2}, "x2": set()}


def test_a_move_is_kept_when_it_gains_enough_or_clears_every_output() -> None:
    assert _keeps(before=10.0, after=8.5)
    assert not _keeps(before=10.0, after=9.5)  # less than the 1 dB a move must gain
    assert _keeps(before=0.2, after=0.0)  # a small gain that clears every output
    assert not _keeps(before=3.0, after=3.0)
    assert not _keeps(before=3.0, after=5.0)


def _spread_model(branches: int, offset: float) -> ModelProto:
    """`branches` copies of the offset model's layers, each on its own input (so each is its own
    Akida region), summed on the CPU: every region adds the same noise to `y`, so moving one to
    the CPU gains 10·log10(8/7) = 0.6 dB at 8 branches, less than a move must gain."""
    rng = np.random.default_rng(0)
    initializers = [numpy_helper.from_array(np.array(offset, np.float32), "c")]
    nodes, inputs, terms = [], [], []
    for i in range(branches):
        initializers += [
            numpy_helper.from_array(rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32), f"w0_{i}"),
            numpy_helper.from_array(rng.normal(0, 0.01, (8, 8, 3, 3)).astype(np.float32), f"w_{i}"),
            numpy_helper.from_array(np.full(8, offset, np.float32), f"b_{i}"),
        ]
        nodes += [
            helper.make_node("Conv", [f"x{i}", f"w0_{i}"], [f"a0_{i}"], pads=[1] * 4),
            helper.make_node("Relu", [f"a0_{i}"], [f"r0_{i}"]),
            helper.make_node("Conv", [f"r0_{i}", f"w_{i}", f"b_{i}"], [f"a_{i}"], pads=[1] * 4),
            helper.make_node("Relu", [f"a_{i}"], [f"r_{i}"]),
            helper.make_node("Sub", [f"r_{i}", "c"], [f"t_{i}"]),
        ]
        inputs.append(helper.make_tensor_value_info(f"x{i}", TensorProto.FLOAT, [1, 3, 16, 16]))
        terms.append(f"t_{i}")
    nodes.append(helper.make_node("Sum", terms, ["y"]))
    graph = helper.make_graph(
        nodes,
        "spread",
        inputs,
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 16, 16])],
        initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_an_error_spread_over_many_regions_moves_them_in_a_group() -> None:
    """No single region is worth the 1 dB a move must gain, so after two rejected single moves
    the guard moves the noisiest regions together, bisecting for the fewest that clear `y`."""
    model = _spread_model(8, 4.0)
    unguarded = compile_model(model, options=CompileOptions(min_output_sqnr=None))
    assert _fidelity(unguarded, "y")["sqnr_db"] < 20

    result = compile_model(model)
    after = _fidelity(result, "y")
    assert after["sqnr_db"] >= 20 and after["sqnr_db"] > after["constant_sqnr_db"] + 10
    # some regions stay on Akida: the group is a prefix of the ranking, not everything
    akida_ops = [n.op_type for n in result.model.graph.node].count("AkidaOp")
    assert 0 < akida_ops < 8
    notes = _guard_notes(result)
    assert sum("less than the 1 dB a move must gain" in note for note in notes) >= 2
    group_notes = [note for note in notes if "on the CPU together" in note]
    # the first group is every region still upstream, which clears the output
    assert re.match(r"output guard: the (\d+) of \1 Akida regions", group_notes[0])
    assert "to the float model's value (no Akida region upstream)" in group_notes[0]
    assert result.analyses["output_guard"]["trials"] == len(notes) <= 4 + 5
    moved = result.analyses["cpu_fallback"]
    assert len(moved) == 4 * (8 - akida_ops)  # two convolutions and two ReLUs per branch
    assert {entry["code"] for entry in moved.values()} == {"AK-OUTPUT-GUARD"}
    assert any("the error is spread over them" in entry["message"] for entry in moved.values())
    assert compile_model(model).model.SerializeToString() == result.model.SerializeToString()


def test_an_output_of_one_value_per_sample_is_guarded_over_the_samples_joined() -> None:
    """The offset model's maximum: one value per sample, which the guard measures over its
    calibration samples joined, as the report does; unguarded it scores below a constant."""
    model = offset_model(10.0)
    model.graph.node.append(helper.make_node("ReduceMax", ["y"], ["s"], keepdims=0))
    model.graph.output.append(helper.make_tensor_value_info("s", TensorProto.FLOAT, []))
    del model.graph.output[0]
    unguarded = compile_model(model, options=CompileOptions(min_output_sqnr=None))
    assert _fidelity(unguarded, "s")["sqnr_db"] < 20

    result = compile_model(model)
    (note,) = _guard_notes(result)
    assert "lifts 's'" in note
    assert result.report["summary"]["macs_on_akida"] == 0


def test_a_trial_pins_the_region_guards_moves_of_the_compile_it_starts_from() -> None:
    """A trial keeps on the CPU what the region guard sent there in the compile it starts from,
    so that nodes measured afresh in reshaped regions cannot come back upstream of the output."""
    fallback = {
        "conv_a": {"code": "AK-REGION-FIDELITY", "message": "drifts to 12 dB"},
        "conv_b": {"code": "AK-QUANT", "message": "scale out of range"},
    }
    compiled = SimpleNamespace(ctx=SimpleNamespace(analyses={"cpu_fallback": fallback}))
    best = _Trial(compiled, {}, {}, {"conv_c": ("AK-OUTPUT-GUARD", "earlier move")})  # type: ignore[arg-type]
    overrides = _moved(best, frozenset({"conv_d", "conv_e"}), "spread")
    assert overrides == {
        "conv_a": ("AK-REGION-FIDELITY", "drifts to 12 dB"),
        "conv_c": ("AK-OUTPUT-GUARD", "earlier move"),
        "conv_d": ("AK-OUTPUT-GUARD", "spread"),
        "conv_e": ("AK-OUTPUT-GUARD", "spread"),
    }
