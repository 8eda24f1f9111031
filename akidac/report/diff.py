"""What changed between two JSON reports (`akidac diff old.json new.json`), and which of the
changes are regressions beyond the thresholds a CI job allows.

Compared: coverage (share of nodes and of MACs on Akida, nodes on each side), Akida regions,
hardware passes, CPU↔Akida bytes per inference, fidelity per output (SQNR, Pearson, top-1),
the estimate (latency, energy) when both reports have one, the ONNX nodes that moved between
Akida and the CPU, and the provenance (akidac version, model sha256, input shapes, options,
device, stage), so a reader sees at once whether the two reports describe the same compile.

Regressions (exit 7 on the command line): the Akida share of MACs or of nodes falls by more
than `max_share_drop` percentage points, an output's SQNR by more than `max_sqnr_drop_db`, or
the estimated latency rises by more than `max_latency_rise` (a fraction). Compiles are
deterministic, so the defaults allow no coverage loss, 1 dB of SQNR and 5% of latency.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from akidac.errors import UsageError

#: version of `akidac diff --json` (documented in docs/cli.md).
DIFF_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class DiffThresholds:
    """How much worse the new report may be before the diff counts a regression."""

    #: percentage points of the Akida share (of MACs, and of nodes) that may be lost.
    max_share_drop: float = 0.0
    #: dB of SQNR an output may lose.
    max_sqnr_drop_db: float = 1.0
    #: relative rise of the estimated latency allowed (0.05: 5%).
    max_latency_rise: float = 0.05


@dataclass
class ReportDiff:
    """The rows of a diff: figures (what, old, new, regression sentence or None), nodes that
    moved, provenance fields that differ."""

    figures: list[dict[str, Any]] = field(default_factory=list)
    moved_nodes: list[dict[str, Any]] = field(default_factory=list)
    provenance: list[dict[str, Any]] = field(default_factory=list)

    @property
    def regressions(self) -> list[str]:
        return [row["regression"] for row in self.figures if row["regression"]]

    def as_json(self) -> dict[str, Any]:
        return {
            "schema_version": DIFF_SCHEMA_VERSION,
            "figures": self.figures,
            "moved_nodes": self.moved_nodes,
            "provenance": self.provenance,
            "regressions": self.regressions,
        }


def check_comparable(old: dict[str, Any], new: dict[str, Any], names: tuple[str, str]) -> None:
    """Both are akidac reports of one schema version; else a `UsageError` saying which."""
    versions = []
    for report, name in zip((old, new), names, strict=True):
        if (
            not isinstance(report, dict)
            or "schema_version" not in report
            or "summary" not in report
        ):
            raise UsageError(f"'{name}' is not an akidac JSON report (no schema_version/summary)")
        versions.append(report["schema_version"])
    if versions[0] != versions[1]:
        raise UsageError(
            f"'{names[0]}' is a schema {versions[0]} report and '{names[1]}' a schema "
            f"{versions[1]} one: regenerate the older one with this akidac to compare them"
        )


def _figure(
    what: str, old: Any, new: Any, unit: str = "", regression: str | None = None
) -> dict[str, Any]:
    return {"what": what, "old": old, "new": new, "unit": unit, "regression": regression}


def _coverage_rows(
    old: dict[str, Any], new: dict[str, Any], limits: DiffThresholds
) -> list[dict[str, Any]]:
    rows = []
    for what in ("macs", "nodes"):
        before = float(old["shares"][what]["akida"])
        after = float(new["shares"][what]["akida"])
        drop = 100.0 * (before - after)
        regression = None
        if drop > limits.max_share_drop + 1e-9:
            regression = (
                f"Akida share of {what} fell from {before:.1%} to {after:.1%} "
                f"({drop:.1f} points, above --max-share-drop {limits.max_share_drop:g})"
            )
        rows.append(
            _figure(
                f"share of {what} on Akida",
                round(100 * before, 2),
                round(100 * after, 2),
                "%",
                regression,
            )
        )
    for key, what, unit in (
        ("nodes_on_akida", "nodes on Akida", ""),
        ("nodes_on_cpu", "nodes on the CPU", ""),
        ("macs_on_akida", "MACs on Akida", ""),
        ("regions", "Akida regions", ""),
        ("hardware_passes", "hardware passes", ""),
        ("transfer_bytes", "CPU↔Akida per inference", "B"),
    ):
        rows.append(_figure(what, old["summary"].get(key), new["summary"].get(key), unit))
    return rows


def _fidelity_rows(
    old: dict[str, Any], new: dict[str, Any], limits: DiffThresholds
) -> list[dict[str, Any]]:
    before = {o["name"]: o for o in (old.get("fidelity") or {}).get("outputs", [])}
    after = {o["name"]: o for o in (new.get("fidelity") or {}).get("outputs", [])}
    rows = []
    for name in sorted(set(before) | set(after)):
        was, now = before.get(name, {}), after.get(name, {})
        old_db, new_db = was.get("sqnr_db"), now.get("sqnr_db")
        regression = None
        if old_db is not None and new_db is not None and old_db - new_db > limits.max_sqnr_drop_db:
            regression = (
                f"output '{name}' SQNR fell from {old_db:.1f} to {new_db:.1f} dB "
                f"(by {old_db - new_db:.1f} dB, above --max-sqnr-drop {limits.max_sqnr_drop_db:g})"
            )
        elif old_db is not None and new_db is None and new.get("stage") == old.get("stage"):
            regression = f"output '{name}' has no fidelity figure in the new report"
        rows.append(_figure(f"SQNR of '{name}'", old_db, new_db, "dB", regression))
        rows.append(_figure(f"Pearson of '{name}'", was.get("pearson"), now.get("pearson")))
        if was.get("top1_agreement") is not None or now.get("top1_agreement") is not None:
            rows.append(
                _figure(f"top-1 of '{name}'", was.get("top1_agreement"), now.get("top1_agreement"))
            )
    return rows


def _estimate_rows(
    old: dict[str, Any], new: dict[str, Any], limits: DiffThresholds
) -> list[dict[str, Any]]:
    before, after = old.get("estimate") or {}, new.get("estimate") or {}
    if not before or not after:
        return []
    old_ms, new_ms = before.get("latency_ms"), after.get("latency_ms")
    regression = None
    if (
        old_ms
        and new_ms is not None
        and (new_ms - old_ms) / old_ms > limits.max_latency_rise + 1e-12
    ):
        regression = (
            f"estimated latency rose from {old_ms:.3f} to {new_ms:.3f} ms "
            f"({(new_ms - old_ms) / old_ms:+.1%}, above --max-latency-rise "
            f"{100 * limits.max_latency_rise:g}%)"
        )
    return [
        _figure("estimated latency", old_ms, new_ms, "ms", regression),
        _figure("estimated energy", before.get("energy_uj"), after.get("energy_uj"), "µJ"),
    ]


def _moved_nodes(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    before = {n["name"]: n for n in old.get("nodes", [])}
    after = {n["name"]: n for n in new.get("nodes", [])}
    moved = []
    for name in sorted(set(before) & set(after)):
        if before[name]["target"] != after[name]["target"]:
            reasons = [r.get("code") for r in after[name].get("reasons", []) if isinstance(r, dict)]
            moved.append(
                {
                    "name": name,
                    "old": before[name]["target"],
                    "new": after[name]["target"],
                    "macs": after[name].get("macs", 0),
                    "reasons": [r for r in reasons if r],
                }
            )
    return moved


def _provenance_rows(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    def flat(report: dict[str, Any]) -> dict[str, Any]:
        record = report.get("provenance") or {}
        values: dict[str, Any] = {
            "stage": report.get("stage"),
            "device": (report.get("device") or {}).get("name"),
            "akidac_version": record.get("akidac_version"),
            "model_sha256": record.get("model_sha256"),
            "input_shapes": record.get("input_shapes"),
        }
        for option in record.get("options", []):
            values[f"option {option['name']}"] = option["value"]
        return values

    before, after = flat(old), flat(new)
    return [
        {"field": key, "old": before.get(key), "new": after.get(key)}
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    ]


def diff_reports(
    old: dict[str, Any],
    new: dict[str, Any],
    thresholds: DiffThresholds | None = None,
    names: tuple[str, str] = ("old", "new"),
) -> ReportDiff:
    """Every figure of the two reports side by side, with the regressions beyond `thresholds`.
    Reports of different schema versions are refused (`UsageError`)."""
    check_comparable(old, new, names)
    limits = thresholds or DiffThresholds()
    return ReportDiff(
        figures=_coverage_rows(old, new, limits)
        + _fidelity_rows(old, new, limits)
        + _estimate_rows(old, new, limits),
        moved_nodes=_moved_nodes(old, new),
        provenance=_provenance_rows(old, new),
    )
