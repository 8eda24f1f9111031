"""The pass registry: idempotent registration, redefinition, name clashes, lookups."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from akidac.errors import UsageError
from akidac.ir.graph import Graph
from akidac.passes import PassContext, PassResult, create_pass, register_pass, registered_passes
from akidac.passes import registry as registry_module
from akidac.passes.pipeline import DEFAULT_PIPELINE


@pytest.fixture
def clean_registry() -> Iterator[None]:
    """Undo what a test registers, so no test pass leaks into the CLI's `akidac passes`."""
    saved = dict(registry_module._REGISTRY)
    yield
    registry_module._REGISTRY.clear()
    registry_module._REGISTRY.update(saved)


def _define_pass(name: str) -> type:
    class Noop:
        """Does nothing (a test pass)."""

        def run(self, graph: Graph, ctx: PassContext) -> PassResult:
            return PassResult(graph, False)

    Noop.name = name  # type: ignore[attr-defined]
    return Noop


def test_every_pass_of_the_default_pipeline_is_registered() -> None:
    assert set(DEFAULT_PIPELINE) <= set(registered_passes())


def test_registering_the_same_class_twice_is_idempotent(clean_registry: None) -> None:
    cls = _define_pass("test-noop")
    assert register_pass(cls) is cls
    assert register_pass(cls) is cls
    assert registered_passes()["test-noop"] is cls


def test_a_redefinition_of_the_same_class_replaces_it(clean_registry: None) -> None:
    # re-running a notebook cell makes a new class object with the same module and qualname
    first = register_pass(_define_pass("test-noop"))
    second = register_pass(_define_pass("test-noop"))
    assert first is not second
    assert registered_passes()["test-noop"] is second
    assert isinstance(create_pass("test-noop"), second)


def test_another_class_under_a_taken_name_is_a_usage_error(clean_registry: None) -> None:
    class Legalize:
        name = "legalize"

        def run(self, graph: Graph, ctx: PassContext) -> PassResult:
            return PassResult(graph, False)

    with pytest.raises(UsageError, match="'legalize' is already registered"):
        register_pass(Legalize)
    assert registered_passes()["legalize"] is not Legalize


def test_a_class_without_a_name_is_a_usage_error() -> None:
    class Nameless:
        pass

    with pytest.raises(UsageError, match="needs a non-empty class attribute 'name'"):
        register_pass(Nameless)


def test_an_unknown_pass_name_lists_the_registered_ones() -> None:
    with pytest.raises(
        UsageError, match=r"unknown pass .no-such-pass.; registered passes: .*legalize"
    ):
        create_pass("no-such-pass")
