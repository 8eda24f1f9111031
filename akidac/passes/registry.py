"""The pass registry: `register_pass` puts a pass class under its `name`.

This module imports nothing of the passes, so every pass module (and a plugin) can import it
without a circle; the lookups that also see the built-in passes (`registered_passes`,
`create_pass`) live in `akidac.passes.builtin`, which imports the built-in pass modules first.

Registering is idempotent for the same class, and re-running the cell or module that defines a
pass (a new class object with the same module and qualified name) replaces the old definition;
a *different* class under a name already taken is a `UsageError` (exit code 2), so a plugin can
never silently shadow a built-in pass.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from akidac.errors import UsageError

_REGISTRY: dict[str, type] = {}

PassClass = TypeVar("PassClass", bound=type)


def register_pass(cls: PassClass) -> PassClass:
    """Class decorator: make a pass available by its `name` (CLI `--passes`, PassManager).

    Stable public API (also `akidac.register_pass`, `akidac.passes.register_pass`):
    the class needs a non-empty string class attribute `name`. Registering the same class
    again, or a redefinition of it (same `__module__` and `__qualname__`), is allowed; another
    class under a taken name raises `UsageError`.
    """
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise UsageError(f"pass class {cls.__name__} needs a non-empty class attribute 'name'")
    known = _REGISTRY.get(name)
    if known is not None and known is not cls and _qualified(known) != _qualified(cls):
        raise UsageError(
            f"a pass named {name!r} is already registered ({_qualified(known)}); "
            f"{_qualified(cls)} needs another name"
        )
    _REGISTRY[name] = cls
    return cls


def passes_registered_so_far() -> dict[str, type]:
    """The registry as it stands, by name (without importing the built-in passes)."""
    return dict(sorted(_REGISTRY.items()))


def one_line_doc(cls: type | Callable[..., Any]) -> str:
    """First line of a pass's docstring, for `akidac passes`."""
    doc = (cls.__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
