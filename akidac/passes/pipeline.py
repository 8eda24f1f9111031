"""The default pipeline: the pass names of `akidac compile`, in order, in one place."""

from __future__ import annotations

DEFAULT_PIPELINE: tuple[str, ...] = (
    "import-cleanup",
    "canonicalize",
    "legalize",
    "fuse",
    "partition",
    "quantize",
    "allocate",
)
