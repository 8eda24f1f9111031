"""Diagnostics: notices, warnings and per-node reasons collected during one compile.

Library code never prints: it reports here, and the CLI (or the Python caller) decides how to
render. A `DiagnosticSink` lives in the per-compile context, never in global state.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Diagnostic:
    """One message: `severity` is 'note', 'warning' or 'error'; `code` a stable reason code."""

    severity: str
    code: str
    message: str
    node: str | None = None
    hint: str | None = None

    def __str__(self) -> str:
        return f"{self.severity}: {self.code}: {self.message}"


@dataclass
class DiagnosticSink:
    """Collects diagnostics in the order they were reported."""

    items: list[Diagnostic] = field(default_factory=list)

    def note(self, code: str, message: str, **kwargs: str | None) -> None:
        self.items.append(Diagnostic("note", code, message, **kwargs))

    def warning(self, code: str, message: str, **kwargs: str | None) -> None:
        self.items.append(Diagnostic("warning", code, message, **kwargs))

    def of_severity(self, severity: str) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == severity]
