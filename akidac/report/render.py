"""Rich rendering of the compatibility report for the terminal.

The `report` command prints `print_report` (summary, op types, regions, border nodes, every
reason of every node not on Akida, diagnostics); `compile` prints `compile_summary_table`. Every
summary names the device configuration it assumed and counts the border nodes as CPU work.
Text from the model (node names, messages) is never read as rich markup.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text


def _percent(share: float) -> str:
    return f"{100 * share:.1f}%"


def _transfer_text(transfer: dict[str, Any]) -> str:
    """`3,072 B int8 1×32×32×3`, with `*` when predicted."""
    shape = "×".join(str(d) for d in transfer["shape"])
    mark = "*" if transfer["predicted"] else ""
    return f"{transfer['bytes']:,} B {transfer['dtype']}{mark} {shape}"


def summary_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    """(what, value) lines of the summary: device, where nodes and MACs run, regions, bytes."""
    summary, shares = report["summary"], report["shares"]
    rows = [
        ("device assumed", report["device"]["description"]),
        ("nodes on Akida", f"{summary['nodes_on_akida']} of {summary['nodes_total']} model nodes"),
        ("nodes on CPU", str(summary["nodes_on_cpu"])),
    ]
    if summary["nodes_removed"]:
        rows.append(("nodes folded away", str(summary["nodes_removed"])))
    rows += [
        ("border nodes added (CPU)", str(summary["border_nodes_added"])),
        ("share on Akida by nodes", f"{_percent(shares['nodes']['akida'])} (border nodes count as CPU)"),
        (
            "share on Akida by MACs",
            f"{_percent(shares['macs']['akida'])} "
            f"({summary['macs_on_akida']:,} of {summary['macs_total']:,} MACs)",
        ),
        ("Akida regions", str(summary["regions"])),
        ("CPU↔Akida per inference", f"{summary['transfer_bytes']:,} B"),
    ]
    for key, value in sorted(report.get("fidelity", {}).items()):
        rows.append((f"fidelity: {key}", f"{value:.6f}" if isinstance(value, float) else str(value)))
    return rows


def summary_table(report: dict[str, Any], title: str = "akidac report") -> Table:
    """The summary as a two-column table."""
    table = Table(title=title, show_header=False)
    table.add_column("what")
    table.add_column("value")
    for what, value in summary_rows(report):
        table.add_row(what, Text(value))
    return table


def compile_summary_table(report: dict[str, Any], output: Path | None, seconds: float) -> Table:
    """The end-of-compile table: the summary, the output file and its size, the compile time."""
    table = summary_table(report, title="akidac compile")
    if output is not None and output.exists():
        table.add_row("output", Text(f"{output} ({output.stat().st_size:,} bytes)"))
    table.add_row("compile time", f"{seconds:.2f} s")
    return table


def op_type_table(report: dict[str, Any]) -> Table:
    """Per op type: how many of its nodes run on Akida, on the CPU, were removed or are added."""
    table = Table(title="op types")
    table.add_column("op type")
    for column in ("Akida", "CPU", "removed", "border added"):
        table.add_column(column, justify="right")
    for row in report["op_types"]:
        table.add_row(
            Text(row["op_type"]),
            *(str(row[key]) for key in ("akida", "cpu", "removed", "border_added")),
        )
    return table


def region_table(report: dict[str, Any]) -> Table:
    """Per Akida region: its layers, NPs, MACs and the bytes it reads and returns."""
    table = Table(title="Akida regions")
    for column in ("region", "layers", "NPs", "MACs", "CPU→Akida", "Akida→CPU"):
        table.add_column(column, justify="left" if column == "layers" else "right")
    predicted = False
    for region in report["regions"]:
        predicted |= region["input"]["predicted"] or region["output"]["predicted"]
        table.add_row(
            str(region["index"]),
            Text(", ".join(layer["name"] for layer in region["layers"])),
            "-" if region["nps"] is None else str(region["nps"]),
            f"{region['macs']:,}",
            Text(_transfer_text(region["input"])),
            Text(_transfer_text(region["output"])),
        )
    if predicted:
        table.caption = "* as quantize will make it (the report does not quantize)"
    return table


def region_border_table(report: dict[str, Any]) -> Table:
    """Why each Akida region starts and ends where it does, and what was changed to keep it."""
    table = Table(title="Akida region borders")
    for column in ("region", "starts because", "ends because"):
        table.add_column(column, justify="right" if column == "region" else "left")
    for region in report["regions"]:
        ends = "\n".join([region["ends_because"], *region["notes"]])
        table.add_row(str(region["index"]), Text(region["starts_because"]), Text(ends))
    return table


def border_table(report: dict[str, Any]) -> Table:
    """The nodes the compiler adds at region borders (CPU work)."""
    table = Table(title="border nodes added (CPU)")
    for column in ("node", "op type", "region", "side"):
        table.add_column(column)
    for node in report["border_nodes"]:
        name = node["name"] + (" (predicted)" if node["predicted"] else "")
        region = "-" if node["region"] is None else str(node["region"])
        table.add_row(Text(name), node["op_type"], region, node["side"] or "-")
    return table


def rejection_table(report: dict[str, Any]) -> Table:
    """Every node not on Akida with all of its reasons, each with its hint."""
    table = Table(title="nodes not on Akida")
    for column in ("node", "op type", "target", "code", "reason", "hint"):
        table.add_column(column, overflow="fold", no_wrap=column == "code")
    for node in report["nodes"]:
        if node["target"] == "akida":
            continue
        for index, reason in enumerate(node["reasons"]):
            first = index == 0
            table.add_row(
                Text(node["name"] if first else ""),
                Text(node["op_type"] if first else ""),
                node["target"] if first else "",
                Text(reason["code"]),
                Text(reason["message"]),
                Text(reason["hint"]),
            )
    return table


def diagnostics_table(report: dict[str, Any]) -> Table:
    table = Table(title="diagnostics")
    for column in ("severity", "code", "message"):
        table.add_column(column)
    for item in report["diagnostics"]:
        table.add_row(item["severity"], Text(item["code"]), Text(item["message"]))
    return table


def print_report(console: Console, report: dict[str, Any]) -> None:
    """The whole report: summary, op types, regions and their borders, border nodes, every
    reason of every node not on Akida, diagnostics."""
    console.print(summary_table(report))
    console.print(op_type_table(report))
    if report["regions"]:
        console.print(region_table(report))
        console.print(region_border_table(report))
    if report["border_nodes"]:
        console.print(border_table(report))
    if any(node["target"] != "akida" for node in report["nodes"]):
        console.print(rejection_table(report))
    if report["diagnostics"]:
        console.print(diagnostics_table(report))
