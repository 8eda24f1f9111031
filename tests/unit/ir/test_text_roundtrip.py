"""The IR text form prints and parses back to an equal graph, for every test model."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from models import chain_net, conv_net, odd_attributes_model, tiny_conv_model
from models.zoo import ZOO

from akidac.api import pass_context
from akidac.frontend import import_model
from akidac.frontend.importer import proto_to_graph
from akidac.ir.graph import Graph
from akidac.ir.parser import ParseError, parse_graph
from akidac.ir.printer import print_graph
from akidac.ir.types import TensorType
from akidac.ir.verifier import verify_graph
from akidac.passes import DEFAULT_PIPELINE, CompileOptions, PassManager


def assert_round_trips(graph: Graph) -> None:
    text = print_graph(graph, elide_weights=False)
    again = parse_graph(text)
    verify_graph(again)
    assert print_graph(again, elide_weights=False) == text


MODELS = {
    "tiny_conv": tiny_conv_model,
    "conv_net": conv_net,
    "chain_net": lambda: chain_net(5),
    **{name: build for name, (build, _) in ZOO.items()},
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_imported_models_round_trip_through_the_text_form(name: str) -> None:
    assert_round_trips(import_model(MODELS[name]()))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_models_round_trip_after_every_pass_of_the_pipeline(name: str) -> None:
    graph = import_model(MODELS[name]())
    ctx = pass_context(CompileOptions(num_samples=2))
    for pass_name in DEFAULT_PIPELINE:
        graph = PassManager([pass_name]).run(graph, ctx).graph
        assert_round_trips(graph)


def test_every_attribute_kind_survives_the_round_trip() -> None:
    model = odd_attributes_model()
    graph = proto_to_graph(model)
    text = print_graph(graph, elide_weights=False)
    assert 'note = "h\\u00e9llo \\"quoted\\""' in text
    assert "empty = ints[]" in text
    assert "graph<b64" in text
    assert 'domain = "com.example"' in text
    assert "onnx.Resize(%lr, _, %scales)" in text
    assert_round_trips(graph)


def test_elided_weights_parse_only_when_the_arrays_are_supplied() -> None:
    graph = import_model(conv_net())
    text = print_graph(graph)
    with pytest.raises(ParseError, match="elided weights"):
        parse_graph(text)
    from akidac.ir.attributes import content_hash

    weights = {content_hash(v.const): v.const for v in graph.constants.values()}
    again = parse_graph(text, weights=weights)
    assert print_graph(again, elide_weights=False) == print_graph(graph, elide_weights=False)


def test_parse_errors_name_the_line_and_column() -> None:
    with pytest.raises(ParseError, match="line 3, column 17: value %nope is used before"):
        parse_graph('graph "g" {\n  input %x : f32[1]\n  %y = onnx.Neg(%nope) : f32[1]\n}\n')


_DTYPES = st.sampled_from(["f32", "i8", "u8", "i32", "i64", "f16", "bool"])
_NAMES = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=8
)


@st.composite
def random_graphs(draw: st.DrawFn) -> Graph:
    """Random DAGs of generic onnx ops with random attribute values and names."""
    graph = Graph(draw(_NAMES))
    values = [
        graph.add_input(f"in{i}", TensorType(draw(_DTYPES), (1, draw(st.integers(1, 4)))))
        for i in range(draw(st.integers(1, 3)))
    ]
    if draw(st.booleans()):
        array = np.asarray(
            draw(st.lists(st.floats(allow_nan=True, width=32), min_size=1, max_size=40)), np.float32
        )
        values.append(graph.add_constant("c0", array))
    attr_values = st.one_of(
        st.integers(-(2**40), 2**40),
        st.floats(allow_nan=False, width=64),
        _NAMES,
        st.lists(st.integers(-5, 5), min_size=1, max_size=4),
        st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=3),
        st.booleans(),
    )
    for i in range(draw(st.integers(1, 12))):
        operands = draw(st.lists(st.sampled_from(values), min_size=1, max_size=3))
        attrs = draw(
            st.dictionaries(
                st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True), attr_values, max_size=3
            )
        )
        results = draw(st.integers(1, 2))
        op = graph.make_op(
            f"onnx.Op{i % 3}",
            operands,
            [TensorType(draw(_DTYPES), (draw(st.integers(1, 3)), None)) for _ in range(results)],
            result_names=[draw(_NAMES) for _ in range(results)],
            attrs=attrs,
            origin=(draw(_NAMES),),
            fresh_names=True,
        )
        values.extend(op.outputs)
    graph.outputs = [values[-1]]
    return graph


@settings(max_examples=150, deadline=None)
@given(random_graphs())
def test_random_graphs_round_trip(graph: Graph) -> None:
    assert_round_trips(graph)
