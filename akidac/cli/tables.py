"""The rich tables the commands print, built from the data `akidac.api` returns.

Text from the model (node and output names) is escaped: it is never read as rich markup.
"""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table


def pass_time_table(
    rows: list[tuple[str, float, bool]], steps: dict[str, float], total: float
) -> Table:
    """`--time-passes`: (pass, seconds, changed) rows in the order they ran, then the steps
    outside the passes (calibration is part of quantize's time) and the whole compile."""
    table = Table(title="pass times")
    table.add_column("pass or step")
    table.add_column("ms", justify="right")
    table.add_column("changed")
    for name, secs, changed in rows:
        table.add_row(name, f"{secs * 1000:.1f}", "yes" if changed else "no")
    table.add_section()
    for name, secs in steps.items():
        table.add_row(name, f"{secs * 1000:.1f}", "")
    table.add_section()
    table.add_row("whole compile", f"{total * 1000:.1f}", "")
    return table


def precision_table(layers: dict[str, dict[str, int]]) -> Table:
    """`--target-sqnr`: the bits chosen per Akida layer."""
    table = Table(title="bits per Akida layer")
    for column in ("layer", "wbits", "abits"):
        table.add_column(column, justify="left" if column == "layer" else "right")
    for name in sorted(layers):
        bits = layers[name]
        table.add_row(escape(name), str(bits.get("wbits", "")), str(bits.get("abits", "")))
    return table


def run_table(result: Any) -> Table:
    """`run`: every output's shape and dtype, and with `--compare` its figures."""
    title = "outputs" if result.samples == 1 else f"outputs over {result.samples} samples"
    table = Table(title=title)
    for column in ("output", "shape", "dtype"):
        table.add_column(column)
    if result.figures is not None:
        for column in ("SQNR dB (min)", "Pearson (min)", "top-1", "max abs error"):
            table.add_column(column, justify="right")
    for name, value in result.outputs.items():
        row = [name, str(list(value.shape)), str(value.dtype)]
        if result.figures is not None:
            figures = result.figures[name]
            top1 = figures["top1_agreement"]
            row += [
                f"{figures['sqnr_db']:.1f}",
                f"{figures['pearson']:.4f}",
                "" if top1 is None else f"{top1:.1%}",
                f"{figures['max_abs_error']:.6g}",
            ]
        table.add_row(*row)
    return table


def pass_list_table(rows: list[tuple[str, int | None, str]]) -> Table:
    """`passes`: name, position in the default pipeline, one-line description."""
    table = Table(title="registered passes")
    table.add_column("pass")
    table.add_column("default pipeline", justify="right")
    table.add_column("what it does")
    for name, position, doc in rows:
        table.add_row(name, "" if position is None else str(position), doc)
    return table


def device_layer_table(data: dict[str, Any]) -> Table:
    """`device`: the Akida layers in network order with NPs, region, pass, MACs, cycles."""
    table = Table(title=f"Akida layers on {data['device']['name']}, in network order")
    for column in ("layer", "NP type", "NPs", "region", "pass", "MACs", "cycles"):
        table.add_column(column, justify="left" if column in ("layer", "NP type") else "right")
    for layer in data["layers"]:
        table.add_row(
            layer["name"],
            layer["np_type"],
            str(layer["nps"]),
            str(layer["region"]),
            str(layer["pass"]),
            f"{layer['macs']:,}",
            "" if layer["cycles"] is None else f"{layer['cycles']:,}",
        )
    return table


def sweep_table(rows: list[dict[str, Any]]) -> Table:
    """`device --sweep`: one row per device (passes, NPs used, latency, energy, Akida share)."""
    table = Table(title="estimate per device (same partition)")
    for column in ("device", "NPs", "1 pass", "passes", "used", "ms", "inf/s", "µJ", "Akida"):
        table.add_column(column, justify="left" if column == "device" else "right", no_wrap=True)
    for row in rows:
        if not row["fits"]:
            table.add_row(
                row["device"]["name"],
                str(row["device"]["nps"]),
                "too small",
                "",
                "",
                "",
                "",
                "",
                "",
            )
            continue
        table.add_row(
            row["device"]["name"],
            str(row["device"]["nps"]),
            "yes" if row["passes"] == len(row["regions"]) else "no",
            str(row["passes"]),
            str(row["nps_used"]),
            f"{row['latency_ms']:.3f}",
            f"{row['inferences_per_s']:,.0f}",
            f"{row['energy_uj']:.1f}",
            f"{row['shares']['akida']:.0%}",
        )
    return table


def bisect_table(data: dict[str, Any]) -> Table:
    """`bisect`: per value, its SQNR against the float model, own SQNR, bits, clipped share;
    the first divergent value marked ◀."""
    table = Table(title=f"SQNR against the float model, {data['samples']} sample(s)")
    for column in ("node", "layer", "on", "SQNR dB", "own dB", "worst ch dB", "bits", "clipped"):
        table.add_column(column, justify="left" if column in ("node", "layer", "on") else "right")
    for layer in data["layers"]:
        mark = " ◀" if layer["name"] == data["first_divergent"] else ""
        own = layer["own_sqnr_db"]
        channel = layer["channel_sqnr_db"]
        clipped = layer["clipped_share"]
        table.add_row(
            escape(layer["name"]) + mark,
            escape(layer["layer"] or ""),
            layer["target"],
            f"{layer['sqnr_db']:.1f}",
            "" if own is None else f"{own:.1f}",
            "" if channel is None else f"{channel:.1f}",
            "" if layer["bits"] is None else str(layer["bits"]),
            "" if clipped is None else f"{clipped:.2%}",
        )
    return table


def batch_table(summary: dict[str, Any]) -> Table:
    """`compile --batch`: per model its exit code, Akida share of MACs, regions, worst SQNR,
    and the reason of a failure."""
    table = Table(title=f"batch: {len(summary['models'])} models")
    for column in ("model", "exit", "Akida MACs", "regions", "worst SQNR dB", "reason"):
        table.add_column(column, justify="left" if column in ("model", "reason") else "right")
    for entry in summary["models"]:
        share = entry["akida_share_macs"]
        sqnr = entry["worst_sqnr_db"]
        table.add_row(
            escape(entry["name"]),
            str(entry["exit_code"]),
            "" if share is None else f"{share:.1%}",
            "" if entry["regions"] is None else str(entry["regions"]),
            "" if sqnr is None else f"{sqnr:.1f}",
            escape(f"{entry['code']}: {entry['reason']}" if entry["code"] else ""),
        )
    return table
