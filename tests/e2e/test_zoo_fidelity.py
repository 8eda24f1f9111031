"""8-bit hybrid models of the zoo stay faithful to their float models on held-out inputs."""

from __future__ import annotations

import pytest
from models.samples import smooth_samples
from models.zoo import ZOO

from akidac.api import compile_model
from akidac.passes import CompileOptions

CNNS = sorted(name for name in ZOO if name != "transformer_block")


@pytest.mark.parametrize("name", CNNS)
def test_every_output_is_faithful_per_sample_with_a_margin_over_a_constant_output(
    name: str,
) -> None:
    """SQNR ≥ 20 dB and Pearson ≥ 0.99 on every held-out sample (DESIGN.md's bar for 8 bits),
    and at least 10 dB above what an output equal to the mean float output would score."""
    model = ZOO[name][0]()
    samples = smooth_samples(model, 48, seed=11)
    options = CompileOptions(samples=samples, num_samples=32, fidelity_samples=16)
    report = compile_model(model, options=options).report
    fidelity = report["fidelity"]
    assert fidelity["samples"] == 16 and "held-out" in fidelity["note"]
    for output in fidelity["outputs"]:
        assert output["sqnr_db"] >= 20.0, output
        assert output["pearson"] >= 0.99, output
        assert output["sqnr_db"] >= output["constant_sqnr_db"] + 10.0, output
        if output["top1_agreement"] is not None:
            assert output["top1_agreement"] >= 0.9, output
