"""`akidac diff OLD.json NEW.json`: what changed between two reports; exit 7 on a regression."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from akidac.cli.app import app, guard, out
from akidac.cli.options import Json
from akidac.errors import GateFailed


def _value(value: Any, unit: str) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        text = f"{value:,.4f}".rstrip("0").rstrip(".")
    elif isinstance(value, int):
        text = f"{value:,}"
    else:
        text = str(value)
    return f"{text} {unit}".strip()


def _change(old: Any, new: Any) -> str:
    if not isinstance(old, int | float) or not isinstance(new, int | float) or old == new:
        return "" if old == new else "changed"
    delta = new - old
    return f"{delta:+,.4f}".rstrip("0").rstrip(".") if isinstance(delta, float) else f"{delta:+,}"


def diff_table(data: dict[str, Any]) -> Table:
    """One row per figure: old, new, the change, and ✗ on a regression."""
    table = Table(title="what changed")
    for column in ("figure", "old", "new", "change", ""):
        table.add_column(column, justify="left" if column == "figure" else "right")
    for row in data["figures"]:
        table.add_row(
            escape(row["what"]),
            _value(row["old"], row["unit"]),
            _value(row["new"], row["unit"]),
            _change(row["old"], row["new"]),
            "✗" if row["regression"] else "",
        )
    return table


@app.command()
def diff(
    old: Annotated[Path, typer.Argument(metavar="OLD", help="the earlier JSON report")],
    new: Annotated[Path, typer.Argument(metavar="NEW", help="the later JSON report")],
    as_json: Json = False,
    max_share_drop: Annotated[
        float,
        typer.Option(
            metavar="POINTS",
            help="regression: the Akida share of MACs or nodes falls by more than this many "
            "percentage points",
        ),
    ] = 0.0,
    max_sqnr_drop: Annotated[
        float,
        typer.Option(metavar="DB", help="regression: an output's SQNR falls by more than DB"),
    ] = 1.0,
    max_latency_rise: Annotated[
        float,
        typer.Option(
            metavar="PCT", help="regression: the estimated latency rises by more than PCT percent"
        ),
    ] = 5.0,
) -> None:
    """What changed between two reports (coverage, regions, transfers, fidelity, estimate,
    provenance); exit 7 when a change is a regression beyond the thresholds."""

    def action() -> int:
        from akidac import api

        result = api.diff_reports(
            old,
            new,
            max_share_drop=max_share_drop,
            max_sqnr_drop=max_sqnr_drop,
            max_latency_rise=max_latency_rise,
        )
        data = result.as_json()
        if as_json:
            sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
        else:
            out.print(diff_table(data))
            for node in data["moved_nodes"]:
                why = f" ({', '.join(node['reasons'])})" if node["reasons"] else ""
                out.print(
                    f"node '{escape(node['name'])}' moved from {node['old']} to {node['new']}"
                    f" ({node['macs']:,} MACs){escape(why)}",
                    highlight=False,
                    soft_wrap=True,
                )
            for row in data["provenance"]:
                out.print(
                    f"provenance {escape(row['field'])}: {escape(str(row['old']))} → "
                    f"{escape(str(row['new']))}",
                    highlight=False,
                    soft_wrap=True,
                )
            if not data["regressions"]:
                out.print("no regression beyond the thresholds")
        if data["regressions"]:
            raise GateFailed("; ".join(data["regressions"]))
        return 0

    guard(action)
