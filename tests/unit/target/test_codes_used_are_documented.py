"""Every reason code written in the code base is registered (hence documented) and vice versa."""

from __future__ import annotations

import re
from pathlib import Path

from akidac.target.reason_codes import REASON_CODES

PACKAGE = Path(__file__).parents[3] / "akidac"
REASON_DOC = Path(__file__).parents[3] / "docs" / "reason-codes.md"
CODE = re.compile(r"[\"'](AK-[A-Z0-9-]+)")


def codes_in_source() -> set[str]:
    found: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        if path.name == "reason_codes.py":
            continue
        found.update(CODE.findall(path.read_text()))
    return found


def test_every_code_the_package_emits_is_registered() -> None:
    unregistered = sorted(codes_in_source() - set(REASON_CODES))
    assert not unregistered


def test_every_registered_code_is_emitted_somewhere() -> None:
    unused = sorted(set(REASON_CODES) - codes_in_source())
    assert not unused


def test_every_registered_code_appears_in_the_reason_codes_document() -> None:
    text = REASON_DOC.read_text()
    assert all(code in text for code in REASON_CODES)
