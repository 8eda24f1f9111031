"""Options of the pass tests: `--update-goldens` rewrites the expected sections of the goldens."""

from __future__ import annotations

import pytest


@pytest.fixture
def update_goldens(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-goldens"))
