"""8-bit hybrid models of the zoo stay faithful to their float models on held-out inputs."""

from __future__ import annotations

import pytest
from models.samples import smooth_samples
from models.zoo import ZOO

from akidac.api import compile_model
from akidac.passes import CompileOptions

CNNS = sorted(name for name in ZOO if name != "transformer_block")


@pytest.mark.parametrize("name", CNNS)
def test_every_output_has_cosine_at_least_0_99_against_the_float_model(name: str) -> None:
    model = ZOO[name][0]()
    samples = smooth_samples(model, 48, seed=11)
    options = CompileOptions(samples=samples, num_samples=32, fidelity_samples=16)
    report = compile_model(model, options=options).report
    fidelity = report["fidelity"]
    assert fidelity["samples"] == 16 and "held-out" in fidelity["note"]
    for output in fidelity["outputs"]:
        assert output["cosine"] >= 0.99, output
