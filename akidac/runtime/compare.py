"""Comparing a hybrid model with its float model: the fidelity figures of a compile and of
`akidac run --compare`.

The float model runs in onnxruntime, the hybrid model in anything with onnxruntime's
`run(output_names, feeds)` (a `HybridSession`). Every figure is per output, computed per sample
by `akidac.metrics.compare_outputs` (SQNR and Pearson as the minimum over samples, max |error|,
top-1 agreement for classifier outputs, the cosine over all samples joined as a secondary figure).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

import numpy as np
import onnx

from akidac.float_session import float_session
from akidac.metrics import compare_outputs


class OutputRunner(Protocol):
    """What `measure_fidelity` runs the hybrid model with: `HybridSession` (or any session with
    onnxruntime's `run(output_names, feeds)`)."""

    def run(self, output_names: list[str], input_feed: dict[str, np.ndarray]) -> list[Any]: ...


def measure_fidelity(
    float_model: onnx.ModelProto | bytes,
    hybrid: OutputRunner | Callable[[], OutputRunner],
    feeds: Iterable[dict[str, np.ndarray]],
) -> dict[str, dict[str, Any]]:
    """Per graph output of the float model: `akidac.metrics.compare_outputs` of the hybrid model's
    results against the float model's over `feeds`.

    The float model runs over every feed first and its session is released before the hybrid
    model runs; `hybrid` may be a function that loads it, so that the two are never held at
    once (a compile's peak memory is this step on a model with many weights)."""
    feeds = list(feeds)
    session = float_session(float_model)
    names = [o.name for o in session.get_outputs()]
    expected: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for feed in feeds:
        for name, array in zip(names, session.run(names, feed), strict=True):
            expected[name].append(np.asarray(array))
    del session
    runner = hybrid if hasattr(hybrid, "run") else hybrid()
    actual: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for feed in feeds:
        for name, array in zip(names, runner.run(names, feed), strict=True):
            actual[name].append(np.asarray(array))
    return {name: compare_outputs(expected[name], actual[name]) for name in names}
