"""Calibration data: user samples or seeded random ones, and the float ranges they produce.

The float IR is exported to ONNX (`akidac.ir.onnx_export`) with every value of interest as an
extra output and run in onnxruntime, one sample at a time (the graph has a static batch of 1).
Random samples are a last resort: the quantize pass warns when it uses them.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from akidac.errors import UsageError
from akidac.ir.graph import Graph, Value
from akidac.ir.onnx_export import graph_to_model
from akidac.ir.types import dtype_to_numpy


def calibration_samples(
    graph: Graph, samples: dict[str, np.ndarray] | None, count: int, seed: int
) -> tuple[list[dict[str, np.ndarray]], bool]:
    """Per-sample feeds (batch 1 each) and whether they are random."""
    feeds: list[dict[str, np.ndarray]] = []
    if samples:
        missing = [v.name for v in graph.inputs if v.name not in samples]
        if missing:
            raise UsageError(f"--samples has no array for input(s) {', '.join(missing)}")
        total = min(len(samples[v.name]) for v in graph.inputs)
        for i in range(min(total, count)):
            feeds.append(
                {
                    v.name: np.asarray(samples[v.name][i : i + 1])
                    .astype(dtype_to_numpy(v.type.dtype))
                    .reshape(v.type.shape)  # type: ignore[arg-type]
                    for v in graph.inputs
                }
            )
        return feeds, False
    rng = np.random.default_rng(seed)
    for _ in range(count):
        feeds.append({v.name: random_input(v, rng) for v in graph.inputs})
    return feeds, True


def random_input(value: Value, rng: np.random.Generator) -> np.ndarray:
    """A random tensor of the value's type: standard normal floats, small integers."""
    dtype = dtype_to_numpy(value.type.dtype)
    shape = tuple(int(d) for d in value.type.shape or ())  # type: ignore[arg-type]
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, shape).astype(dtype)
    return rng.integers(0, 10, shape).astype(dtype)


def observe(
    graph: Graph, values: list[Value], feeds: list[dict[str, np.ndarray]]
) -> dict[str, list[np.ndarray]]:
    """Run the float graph on each feed; return every requested value per sample."""
    model = graph_to_model(graph, extra_outputs=values)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    names = [v.name for v in values]
    seen: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for feed in feeds:
        for name, array in zip(names, session.run(names, feed), strict=True):
            seen[name].append(array)
    return seen


def abs_range(arrays: list[np.ndarray], percentile: float) -> float:
    """The `percentile` of |x| over all samples (max when percentile ≥ 100), never 0."""
    flat = np.abs(np.concatenate([a.reshape(-1) for a in arrays]).astype(np.float64))
    value = float(flat.max() if percentile >= 100 else np.percentile(flat, percentile))
    return value if value > 0 else 1e-6
