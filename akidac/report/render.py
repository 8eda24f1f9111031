"""Rich rendering of the compatibility report for the terminal.

The `report` command prints `print_report` (summary, op types, regions with their border
nodes, every reason of every node not on Akida, diagnostics); `compile` prints
`compile_summary_table`. Every summary names the device configuration it assumed and counts the
border nodes as CPU work. Text from the model (names, messages) is never read as rich markup.
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
        (
            "share on Akida by nodes",
            f"{_percent(shares['nodes']['akida'])} (border nodes count as CPU)",
        ),
        (
            "share on Akida by MACs",
            f"{_percent(shares['macs']['akida'])} "
            f"({summary['macs_on_akida']:,} of {summary['macs_total']:,} MACs)",
        ),
        ("Akida regions", _regions_text(report)),
        ("CPU↔Akida per inference", f"{summary['transfer_bytes']:,} B"),
    ]
    fidelity = report.get("fidelity")
    if fidelity:
        for output in fidelity["outputs"]:
            rows.append(
                (
                    f"fidelity of '{output['name']}'",
                    _fidelity_text(output),
                )
            )
        rows.append(("fidelity measured on", fidelity["note"]))
    return rows


def _regions_text(report: dict[str, Any]) -> str:
    """`3` or `2 (5 hardware passes; 1,234,567 B of weights reloaded per inference)`."""
    summary = report["summary"]
    text = str(summary["regions"])
    passes = summary.get("hardware_passes", 0)
    if passes > summary["regions"]:
        reloaded = sum(r.get("weight_bytes_reloaded") or 0 for r in report["regions"])
        text += f" ({passes} hardware passes; {reloaded:,} B of weights reloaded per inference)"
    return text


def _fidelity_text(output: dict[str, Any]) -> str:
    """`SQNR 34.1 dB (constant output: 3.2 dB), Pearson 0.9995, top-1 100%, max |err| 0.01`."""
    parts = [
        f"SQNR {output['sqnr_db']:.1f} dB (a constant output: {output['constant_sqnr_db']:.1f} dB)",
        f"Pearson {output['pearson']:.4f}",
    ]
    if output.get("top1_agreement") is not None:
        parts.append(f"top-1 agreement {_percent(output['top1_agreement'])}")
    parts.append(f"max abs error {output['max_abs_error']:.4g}")
    return ", ".join(parts)


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


def _heading(text: str) -> Text:
    return Text(text, style="bold")


def region_lines(report: dict[str, Any]) -> Text:
    """Per Akida region: layers, NPs, MACs, the bytes in and out with why the region starts and
    ends there, its notes, and the border nodes converting its input and output (CPU work)."""
    border: dict[tuple[int | None, str | None], list[str]] = {}
    for node in report["border_nodes"]:
        mark = "*" if node["predicted"] else ""
        border.setdefault((node["region"], node["side"]), []).append(node["op_type"] + mark)
    lines = [_heading(f"Akida regions ({len(report['regions'])})")]
    predicted = False
    for region in report["regions"]:
        index = region["index"]
        predicted |= region["input"]["predicted"] or region["output"]["predicted"]
        nps = "NPs not allocated" if region["nps"] is None else f"{region['nps']} NPs"
        layers = ", ".join(layer["name"] for layer in region["layers"])
        lines.append(Text(f"  region {index}: {layers} — {nps}, {region['macs']:,} MACs"))
        for side, label, why in (
            ("input", "in ", region["starts_because"]),
            ("output", "out", region["ends_because"]),
        ):
            added = ", ".join(border.pop((index, side), [])) or "none"
            lines.append(
                Text(f"    {label} {_transfer_text(region[side])}: {why}; border nodes: {added}")
            )
        lines += [Text(f"    note: {note}") for note in region["notes"]]
    for op_types in border.values():
        lines.append(Text(f"  border nodes outside any region: {', '.join(op_types)}"))
    if predicted:
        lines.append(Text("  * as quantize will make it (the report does not quantize)"))
    return Text("\n").join(lines)


def rejection_lines(report: dict[str, Any]) -> Text:
    """Every node not on Akida with its MACs and all of its reasons, each with its hint; the
    nodes with most MACs first (model order among equals), as fixing those gains most."""
    rejected = [node for node in report["nodes"] if node["target"] != "akida"]
    rejected.sort(key=lambda node: -int(node.get("macs") or 0))
    lines = [_heading(f"nodes not on Akida ({len(rejected)}), most MACs first")]
    for node in rejected:
        macs = f", {node['macs']:,} MACs" if node["target"] == "cpu" else ""
        lines.append(Text(f"  {node['name']} ({node['op_type']}): {node['target']}{macs}"))
        for reason in node["reasons"]:
            lines.append(Text.assemble("    ", (reason["code"], "yellow"), f" {reason['message']}"))
            if reason["hint"]:
                lines.append(Text(f"      hint: {reason['hint']}"))
    return Text("\n").join(lines)


def diagnostic_lines(report: dict[str, Any]) -> Text:
    lines = [_heading("diagnostics")]
    for item in report["diagnostics"]:
        lines.append(Text(f"  {item['severity']} {item['code']}: {item['message']}"))
    return Text("\n").join(lines)


def print_report(console: Console, report: dict[str, Any]) -> None:
    """The whole report: summary, op types, regions with their border nodes, every reason of
    every node not on Akida, diagnostics. Long listings are lines, not tables: a table costs
    about 0.5 ms a row to lay out, too slow for thousand-node models."""
    from akidac.target.estimate import summary_line

    console.print(summary_table(report))
    console.print(summary_line(report.get("estimate")), highlight=False, soft_wrap=True)
    console.print(op_type_table(report))
    for present, part in (
        (report["regions"] or report["border_nodes"], region_lines),
        (any(node["target"] != "akida" for node in report["nodes"]), rejection_lines),
        (report["diagnostics"], diagnostic_lines),
    ):
        if present:
            console.print(part(report), soft_wrap=True)
