"""Comparing a hybrid model with its float model: the fidelity figures of a compile and of
`akidac run --compare`.

The float model runs in onnxruntime, the hybrid model in anything with onnxruntime's
`run(output_names, feeds)` (a `HybridSession`). Every figure is per output, computed per sample
by `akidac.metrics.compare_outputs` (SQNR and Pearson as the minimum over samples, max |error|,
top-1 agreement for classifier outputs, the cosine over all samples joined as a secondary figure).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import numpy as np
import onnx
import onnxruntime as ort

from akidac.metrics import compare_outputs


class OutputRunner(Protocol):
    """What `measure_fidelity` runs the hybrid model with: `HybridSession` (or any session with
    onnxruntime's `run(output_names, feeds)`)."""

    def run(self, output_names: list[str], input_feed: dict[str, np.ndarray]) -> list[Any]: ...


def float_session(model: onnx.ModelProto | bytes) -> ort.InferenceSession:
    """A quiet one-thread onnxruntime session of the float model."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    data = model if isinstance(model, bytes) else model.SerializeToString()
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def measure_fidelity(
    float_model: onnx.ModelProto | bytes,
    hybrid: OutputRunner,
    feeds: Iterable[dict[str, np.ndarray]],
) -> dict[str, dict[str, Any]]:
    """Per graph output of the float model: `akidac.metrics.compare_outputs` of the hybrid model's
    results against the float model's over `feeds`."""
    session = float_session(float_model)
    names = [o.name for o in session.get_outputs()]
    expected: dict[str, list[np.ndarray]] = {name: [] for name in names}
    actual: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for feed in feeds:
        for name, array in zip(names, session.run(names, feed), strict=True):
            expected[name].append(np.asarray(array))
        for name, array in zip(names, hybrid.run(names, feed), strict=True):
            actual[name].append(np.asarray(array))
    return {name: compare_outputs(expected[name], actual[name]) for name in names}
