"""`kernels_compiled_in_this_process` tells a caller whether a run compiled kernels."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from akidac.backends.akida import kernels

SCRIPT = """
import sys
import numpy as np
from akidac.backends.akida import kernels
from akidac.runtime.session import HybridSession
before = kernels.kernels_compiled_in_this_process()
HybridSession(sys.argv[1]).run(None, {"input": np.zeros((1, 3, 32, 32), np.float32)})
print(before, kernels.kernels_compiled_in_this_process())
"""


def compiled_counts(hybrid: Path, cache: Path) -> tuple[int, int]:
    root = Path(__file__).parents[3]
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(hybrid)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(root), "NUMBA_CACHE_DIR": str(cache)},
    )
    before, after = result.stdout.split()
    return int(before), int(after)


def test_the_count_is_a_non_negative_int() -> None:
    count = kernels.kernels_compiled_in_this_process()
    assert isinstance(count, int) and count >= 0


@pytest.mark.slow
def test_a_run_with_an_empty_cache_compiles_kernels_and_the_next_run_compiles_none(
    hybrid_path: Path, tmp_path: Path
) -> None:
    first = compiled_counts(hybrid_path, tmp_path / "numba")
    assert first[0] == 0 and first[1] > 0
    assert compiled_counts(hybrid_path, tmp_path / "numba") == (0, 0)
