"""The built-in passes, and the lookups by name that see them and any plugin's.

Importing the built-in pass modules here registers each of them (`@register_pass` in
`akidac.passes.registry`); the lookups live beside those imports so the registry itself never
imports a pass: the import arrows run registry ← pass modules ← builtin ← manager, one way.
"""

from __future__ import annotations

from typing import Any

import akidac.passes.allocate
import akidac.passes.canonicalize
import akidac.passes.fuse
import akidac.passes.import_cleanup
import akidac.passes.legalize
import akidac.passes.partition
import akidac.passes.quantize  # noqa: F401
from akidac.errors import UsageError
from akidac.passes.base import Pass
from akidac.passes.registry import passes_registered_so_far


def registered_passes() -> dict[str, type]:
    """Every registered pass by name: the built-in ones and those registered since."""
    return passes_registered_so_far()


def create_pass(name: str, **options: Any) -> Pass:
    """Instantiate a registered pass by name; an unknown name is a `UsageError` listing them."""
    passes = registered_passes()
    if name not in passes:
        known = ", ".join(passes)
        raise UsageError(f"unknown pass '{name}'; registered passes: {known}")
    pass_: Pass = passes[name](**options)
    return pass_
