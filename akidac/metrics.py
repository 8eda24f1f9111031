"""Fidelity figures: how close a quantized result is to the float one, per sample.

One definition of each figure, used by the compiler (the region fidelity guard), the runtime
comparison (`akidac run --compare`, the compile report's fidelity) and the benchmarks, so every
place prints the same number for the same arrays. Pure NumPy; imports nothing of akidac.

Why these figures and not one cosine over all outputs joined: a model that outputs a constant
scores 0.995 on that cosine when the outputs share a large common offset (softmax outputs,
post-ReLU maps). SQNR and Pearson are computed **per sample** and reported as the minimum over
samples; Pearson removes the mean, so a constant output scores 0. An output of one value per
sample (a presence score, a regression scalar) has no per-sample Pearson, and its per-sample
SQNR is the relative error of one number (a probability of 0.001 read as 0.0012 scores 14 dB):
it is measured over the samples joined, as one vector.

- SQNR (dB) = 10 · log10(Σ ref² / Σ (ref − got)²); +inf when the two are equal, and
  −inf when the reference is all zero but the result is not.
- Pearson r of the flattened sample; 1.0 when both are constant and equal, 0.0 when only one
  is constant.
- top-1 agreement: the share of rows (samples × leading dims) whose arg-max over the last axis
  agrees; only meaningful for outputs whose last axis holds more than one class.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

#: SQNR reported for identical arrays (a finite stand-in for +inf, so JSON stays standard).
SQNR_EXACT_DB = 200.0


def sqnr_db(reference: np.ndarray, result: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio of `result` against `reference`, in dB."""
    ref = np.asarray(reference, np.float64).ravel()
    got = np.asarray(result, np.float64).ravel()
    with np.errstate(all="ignore"):
        noise = float(np.sum((ref - got) ** 2))
        signal = float(np.sum(ref**2))
    if not math.isfinite(noise) or not math.isfinite(signal):
        return -SQNR_EXACT_DB
    if noise == 0.0:
        return SQNR_EXACT_DB
    if signal == 0.0:
        return -SQNR_EXACT_DB
    return float(np.clip(10.0 * math.log10(signal / noise), -SQNR_EXACT_DB, SQNR_EXACT_DB))


def pearson(reference: np.ndarray, result: np.ndarray) -> float:
    """Pearson correlation of the two arrays, flattened (see the module docstring)."""
    ref = np.asarray(reference, np.float64).ravel()
    got = np.asarray(result, np.float64).ravel()
    with np.errstate(all="ignore"):
        a, b = ref - ref.mean(), got - got.mean()
        norm = float(np.sqrt(np.sum(a * a) * np.sum(b * b)))
        if not math.isfinite(norm):
            return 0.0
        if norm == 0.0:
            same = bool(np.array_equal(ref, got))
            return 1.0 if same else 0.0
        return float(np.clip(np.sum(a * b) / norm, -1.0, 1.0))


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two arrays, flattened (1.0 when both are zero). Kept as a secondary
    figure only: see the module docstring for why it is not a fidelity test."""
    x, y = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    with np.errstate(all="ignore"):
        norm = float(np.linalg.norm(x) * np.linalg.norm(y))
        if norm == 0:
            return 1.0 if not x.any() and not y.any() else 0.0
        return float(x @ y / norm)


def is_classifier_output(shape: Sequence[int]) -> bool:
    """A 2-D output (batch, classes) with more than one class: top-1 agreement applies."""
    return len(shape) == 2 and int(shape[-1]) > 1


def top1_agreement(references: Sequence[np.ndarray], results: Sequence[np.ndarray]) -> float:
    """Share of rows whose arg-max over the last axis agrees, over every sample."""
    agree = total = 0
    for ref, got in zip(references, results, strict=True):
        r = np.asarray(ref).reshape(-1, np.asarray(ref).shape[-1])
        g = np.asarray(got).reshape(-1, np.asarray(got).shape[-1])
        agree += int(np.sum(np.argmax(r, axis=-1) == np.argmax(g, axis=-1)))
        total += r.shape[0]
    return agree / total if total else 1.0


def compare_outputs(
    references: Sequence[np.ndarray], results: Sequence[np.ndarray]
) -> dict[str, Any]:
    """Every figure for one output over a list of samples (one array per sample).

    Returns `sqnr_db` (min over samples), `sqnr_db_mean`, `pearson` (min over samples; for an
    output of one value per sample, both over the samples joined: see the module docstring),
    `max_abs_error`, `cosine` (all samples joined; secondary), `samples`, and `top1_agreement`
    when the output is a classifier's (`is_classifier_output`), else None. Also
    `constant_sqnr_db`/`constant_pearson`: what an output equal to the mean reference over the
    samples would score, the baseline a test asserts a margin over.
    """
    refs = [np.asarray(r, np.float64) for r in references]
    gots = [np.asarray(g, np.float64) for g in results]
    if not refs:
        return {
            "sqnr_db": SQNR_EXACT_DB,
            "sqnr_db_mean": SQNR_EXACT_DB,
            "pearson": 1.0,
            "max_abs_error": 0.0,
            "cosine": 1.0,
            "samples": 0,
            "top1_agreement": None,
            "constant_sqnr_db": SQNR_EXACT_DB,
            "constant_pearson": 1.0,
        }
    count, shape = len(refs), refs[0].shape
    if refs[0].size == 1 and count > 1:
        # one value per sample: the samples joined are the one vector there is to measure (and
        # the constant baseline is their mean, repeated)
        refs = [np.concatenate([r.ravel() for r in refs])]
        gots = [np.concatenate([g.ravel() for g in gots])]
    sqnrs = [sqnr_db(r, g) for r, g in zip(refs, gots, strict=True)]
    pearsons = [pearson(r, g) for r, g in zip(refs, gots, strict=True)]
    with np.errstate(all="ignore"):
        errors = [
            float(np.max(np.abs(r - g))) if r.size else 0.0 for r, g in zip(refs, gots, strict=True)
        ]
    mean_ref = np.mean(np.stack([r.reshape(-1) for r in refs]), axis=0) if refs[0].size else None
    if len(refs) == 1 and count > 1 and mean_ref is not None:
        mean_ref = np.full_like(mean_ref, mean_ref.mean())
    constant_sqnr = min(sqnr_db(r, mean_ref) for r in refs) if mean_ref is not None else 0.0
    constant_r = min(pearson(r, mean_ref) for r in refs) if mean_ref is not None else 0.0
    return {
        "sqnr_db": round(min(sqnrs), 3),
        "sqnr_db_mean": round(float(np.mean(sqnrs)), 3),
        "pearson": round(min(pearsons), 6),
        "max_abs_error": max(errors) if all(math.isfinite(e) for e in errors) else math.inf,
        "cosine": round(
            cosine(
                np.concatenate([g.ravel() for g in gots]), np.concatenate([r.ravel() for r in refs])
            ),
            6,
        ),
        "samples": count,
        "top1_agreement": round(top1_agreement(refs, gots), 6)
        if is_classifier_output(shape)
        else None,
        "constant_sqnr_db": round(constant_sqnr, 3),
        "constant_pearson": round(constant_r, 6),
    }
