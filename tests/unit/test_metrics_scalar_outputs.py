"""An output of one value per sample is measured over the samples joined: per sample it has no
Pearson (it printed 0.0000) and its SQNR is the relative error of one number."""

from __future__ import annotations

import numpy as np

from akidac.metrics import compare_outputs, sqnr_db


def _scores(count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.array([[v]], np.float32) for v in rng.uniform(0.0, 1.0, count)]


def test_a_scalar_output_is_measured_over_the_samples_joined() -> None:
    refs = _scores(8)
    gots = [r + np.float32(0.01) for r in refs]
    figures = compare_outputs(refs, gots)
    joined_ref = np.concatenate([r.ravel() for r in refs])
    joined_got = np.concatenate([g.ravel() for g in gots])
    assert figures["sqnr_db"] == round(sqnr_db(joined_ref, joined_got), 3)
    assert figures["pearson"] > 0.999 and figures["samples"] == 8
    # the baseline: the mean score repeated, which correlates with nothing
    assert figures["constant_pearson"] == 0.0
    assert figures["sqnr_db"] > figures["constant_sqnr_db"] + 20


def test_a_scalar_near_zero_no_longer_ruins_the_figure() -> None:
    refs = [*_scores(8), np.array([[0.001]], np.float32)]
    gots = [r + np.float32(0.0002) for r in refs]
    # per sample, 0.001 read as 0.0012 alone would score 14 dB
    assert sqnr_db(refs[-1], gots[-1]) < 15
    assert compare_outputs(refs, gots)["sqnr_db"] > 60


def test_a_wrong_scalar_output_still_scores_low() -> None:
    refs = _scores(8)
    gots = list(reversed(refs))
    figures = compare_outputs(refs, gots)
    assert figures["sqnr_db"] < 10 and figures["pearson"] < 0.9
