"""`Region`: one future Akida program, as the `partition` pass leaves it in `ctx.analyses`.

It lives in `ir` (which the passes, the backends and the report all read) so that the hybrid
model builder and the report can read regions without importing `passes`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from akidac.ir.graph import Op, Value


@dataclass
class Region:
    """One future Akida program: its ops in order, its input and output values."""

    index: int
    ops: list[Op]
    input: Value | None = None
    output: Value | None = None
    starts_because: str = ""
    ends_because: str = ""
    notes: list[str] = field(default_factory=list)
