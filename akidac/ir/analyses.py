"""The records passes leave in `ctx.analyses` for later passes, the backends and the report.

`Decision` (legalize: where each ONNX node runs and why) and `Region` (partition: one future
Akida program). They live in `ir` (which the passes, the backends and the report all read) so
that the hybrid model builder and the report read them without importing `passes`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from akidac.ir.graph import Op, Value
from akidac.target.constraints import Violation


@dataclass
class Decision:
    """Where one ONNX node runs and why: the report's per-node record."""

    node: str
    op_type: str
    target: str
    violations: list[Violation] = field(default_factory=list)


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
