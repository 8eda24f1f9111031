"""Shared fixtures: the test-model builders live in tests/models.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
