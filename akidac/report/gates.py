"""CI gates on a report: thresholds a compile must meet, or exit 7 (`GateFailed`).

`--min-akida-share [nodes:|macs:]PERCENT` (MACs when unqualified), `--min-sqnr DB` (the worst
output's SQNR against the float model: compile only, since `report` does not quantize),
`--max-regions N`, `--max-transfer BYTES` (CPU↔Akida bytes per inference). Each failed gate is
named with its figure and by how much it missed; the outputs are written before the gates are
checked, so a CI job keeps them to look at.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from akidac.errors import GateFailed, UsageError


@dataclass(frozen=True)
class Gates:
    """The thresholds; None: no gate."""

    min_akida_share: tuple[str, float] | None = None  # ("nodes" | "macs", fraction)
    min_sqnr_db: float | None = None
    max_regions: int | None = None
    max_transfer_bytes: int | None = None

    @property
    def any(self) -> bool:
        return any(
            v is not None
            for v in (
                self.min_akida_share,
                self.min_sqnr_db,
                self.max_regions,
                self.max_transfer_bytes,
            )
        )


def parse_share(text: str | None) -> tuple[str, float] | None:
    """`80`, `80%`, `macs:80`, `nodes:50%` → (what, fraction)."""
    if text is None:
        return None
    what, _, number = text.rpartition(":")
    what = what.strip().lower() or "macs"
    if what not in ("nodes", "macs"):
        raise UsageError(f"--min-akida-share '{text}': say nodes:PERCENT or macs:PERCENT")
    try:
        value = float(number.strip().rstrip("%"))
    except ValueError:
        raise UsageError(f"--min-akida-share '{text}' is not a percentage, e.g. macs:80") from None
    if not 0 <= value <= 100:
        raise UsageError(f"--min-akida-share '{text}' must be between 0 and 100")
    return what, value / 100.0


def failed_gates(report: dict[str, Any], gates: Gates) -> list[str]:
    """One sentence per gate the report misses."""
    failures = []
    summary = report.get("summary") or {}
    if gates.min_akida_share is not None:
        what, wanted = gates.min_akida_share
        share = float(((report.get("shares") or {}).get(what) or {}).get("akida") or 0.0)
        if share < wanted:
            failures.append(
                f"Akida share of {what} {share:.1%} is below --min-akida-share {wanted:.1%} "
                f"(by {wanted - share:.1%})"
            )
    if gates.min_sqnr_db is not None:
        outputs = (report.get("fidelity") or {}).get("outputs") or []
        figures = [o["sqnr_db"] for o in outputs if o.get("sqnr_db") is not None]
        if not figures:
            failures.append("--min-sqnr has no fidelity figure to check (--fidelity-samples 0?)")
        elif min(figures) < gates.min_sqnr_db:
            failures.append(
                f"worst output SQNR {min(figures):.1f} dB is below --min-sqnr "
                f"{gates.min_sqnr_db:g} dB (by {gates.min_sqnr_db - min(figures):.1f} dB)"
            )
    if gates.max_regions is not None:
        regions = int(summary.get("regions") or 0)
        if regions > gates.max_regions:
            failures.append(
                f"{regions} Akida regions exceed --max-regions {gates.max_regions} "
                f"(by {regions - gates.max_regions})"
            )
    if gates.max_transfer_bytes is not None:
        moved = int(summary.get("transfer_bytes") or 0)
        if moved > gates.max_transfer_bytes:
            failures.append(
                f"{moved:,} CPU↔Akida bytes per inference exceed --max-transfer "
                f"{gates.max_transfer_bytes:,} (by {moved - gates.max_transfer_bytes:,})"
            )
    return failures


def check_gates(report: dict[str, Any], gates: Gates) -> None:
    """Raise `GateFailed` (exit 7) naming every gate the report misses."""
    failures = failed_gates(report, gates)
    if failures:
        raise GateFailed("; ".join(failures))
