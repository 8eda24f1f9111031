"""Shared test set-up: tests/ on sys.path (for tests/models/), and the `--update-goldens`
option of the golden IR tests (tests/passes/)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-goldens",
        action="store_true",
        default=False,
        help="rewrite the expected output of every golden case from the passes' actual output",
    )
