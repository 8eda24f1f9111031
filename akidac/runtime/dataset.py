"""Running a hybrid model over a dataset: many samples in one `.npz`, one array per input.

The first axis of every input array counts samples. They run in chunks of the model's batch:
the static batch dimension of the hybrid's inputs, or 1 where it is dynamic (a dynamic-batch
hybrid runs any batch, but a chunk of 1 keeps memory flat and a progress bar moving). An array
of the input's own rank whose first dimension is the batch is one chunk; every input must hold
the same number of samples. `iter_chunks` yields the feeds, `run_chunks` runs them with the
float model beside when asked, and the fidelity over the whole set is
`akidac.metrics.compare_outputs` of the per-chunk results.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from akidac.errors import UsageError


def chunk_size(session: Any) -> int:
    """The batch the hybrid's inputs declare (1 where it is dynamic)."""
    sizes = {info.shape[0] for info in session.get_inputs() if info.shape}
    static = {s for s in sizes if isinstance(s, int) and s > 0}
    return min(static) if static else 1


def sample_count(session: Any, feeds: dict[str, np.ndarray]) -> int:
    """Samples in `feeds` (first axis of every input; they must agree)."""
    counts = {}
    for info in session.get_inputs():
        array = feeds.get(info.name)
        if array is None:
            raise UsageError(f"--input has no array for model input '{info.name}'")
        if np.ndim(array) != len(info.shape) or np.ndim(array) == 0:
            counts[info.name] = 1  # a 0-d or otherwise shaped input: the same for every sample
            continue
        counts[info.name] = int(np.shape(array)[0])
    batched = {name: n for name, n in counts.items() if n != 1}
    if len(set(batched.values())) > 1:
        listed = ", ".join(f"{name}: {n}" for name, n in sorted(batched.items()))
        raise UsageError(f"the --input arrays hold different numbers of samples ({listed})")
    return next(iter(batched.values()), 1)


def iter_chunks(
    session: Any, feeds: dict[str, np.ndarray], size: int
) -> Iterator[dict[str, np.ndarray]]:
    """Feeds of `size` samples each (the last one may be smaller only for dynamic batches)."""
    total = sample_count(session, feeds)
    if total % size:
        raise UsageError(
            f"--input holds {total} samples, not a multiple of the model's batch {size}"
        )
    shared = {
        info.name: feeds[info.name]
        for info in session.get_inputs()
        if np.ndim(feeds[info.name]) in (0, len(info.shape) - 1)
        or np.ndim(feeds[info.name]) != len(info.shape)
        or np.shape(feeds[info.name])[0] != total
    }
    for start in range(0, total, size):
        yield {
            name: array if name in shared else array[start : start + size]
            for name, array in feeds.items()
        }


def run_chunks(
    session: Any,
    chunks: Iterator[dict[str, np.ndarray]],
    reference: Any | None = None,
    on_chunk: Callable[[], None] | None = None,
) -> tuple[list[list[np.ndarray]], list[list[np.ndarray]] | None]:
    """Per output, the hybrid's result of every chunk (and the float model's, with a
    `reference` onnxruntime session); `on_chunk` is called after each (a progress bar)."""
    names = [o.name for o in session.get_outputs()]
    results: list[list[np.ndarray]] = [[] for _ in names]
    expected: list[list[np.ndarray]] | None = None if reference is None else [[] for _ in names]
    for chunk in chunks:
        for part, value in zip(results, session.run(names, chunk), strict=True):
            part.append(value)
        if reference is not None and expected is not None:
            reference_names = [o.name for o in reference.get_outputs()]
            values = dict(zip(reference_names, reference.run(None, chunk), strict=True))
            for part, name in zip(expected, names, strict=True):
                part.append(values[name])
        if on_chunk is not None:
            on_chunk()
    return results, expected


def non_finite_inputs(feeds: dict[str, np.ndarray]) -> list[str]:
    """Names of float inputs holding NaN or infinity."""
    return sorted(
        name
        for name, array in feeds.items()
        if np.issubdtype(np.asarray(array).dtype, np.floating)
        and not np.isfinite(np.asarray(array)).all()
    )
