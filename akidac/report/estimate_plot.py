"""`akidac device --plot out.png`: the estimate as a picture (matplotlib, the `[plot]` extra).

Three panels: per-layer estimated time and MACs in network order (Akida layers, then the CPU
parts as one bar), where one inference's time goes (Akida, CPU, transfers), and the sweep's
latency against the device's NPs.
"""

from __future__ import annotations

import io
import os
from typing import Any

from akidac.errors import UsageError


def require_matplotlib() -> None:
    """Raise a one-line `UsageError` (exit 2) when matplotlib is not installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError(
            "--plot needs matplotlib: pip install 'akidac[plot]' (or pip install matplotlib)"
        ) from None


def plot_estimate(data: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Draw `akidac device`'s data (with `sweep`) to a PNG at `path`, written atomically."""
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from akidac.output_files import write_bytes_atomically

    estimate = data.get("estimate") or {}
    layers = estimate.get("layers", [])
    names = [row["name"] for row in layers]
    times = [row["time_ms"] for row in layers]
    macs = [row["macs"] / 1e6 for row in layers]
    colors = ["tab:blue"] * len(layers)
    if estimate.get("cpu_ms"):
        names.append("CPU parts")
        times.append(estimate["cpu_ms"])
        macs.append(estimate["macs_on_cpu"] / 1e6)
        colors.append("tab:orange")

    figure, axes = plt.subplots(
        3, 1, figsize=(max(8, 0.3 * len(names) + 3), 11), gridspec_kw={"height_ratios": [3, 1, 2]}
    )
    positions = range(len(names))
    axes[0].bar(positions, times, color=colors, label="estimated time (ms)")
    axes[0].set_ylabel("estimated time, ms")
    axes[0].set_xticks(list(positions), names, rotation=90, fontsize=6)
    twin = axes[0].twinx()
    twin.plot(list(positions), macs, "k.", label="MACs (M)")
    twin.set_ylabel("MACs, millions")
    axes[0].set_title(
        f"per layer on {data['device']['name']} (blue: Akida, orange: CPU; dots: MACs)"
    )

    parts = [
        ("Akida", estimate.get("akida_ms") or 0.0, "tab:blue"),
        ("CPU", estimate.get("cpu_ms") or 0.0, "tab:orange"),
        ("transfers", estimate.get("transfer_ms") or 0.0, "tab:green"),
    ]
    left = 0.0
    for label, value, color in parts:
        axes[1].barh([0], [value], left=left, color=color, label=f"{label} {value:.3f} ms")
        left += value
    axes[1].set_yticks([])
    axes[1].set_xlabel("ms per inference")
    axes[1].legend(loc="upper center", ncol=3, fontsize=8, bbox_to_anchor=(0.5, -0.6))
    axes[1].set_title("where one inference's time goes")

    sweep = [row for row in data.get("sweep", []) if row["fits"]]
    axes[2].plot(
        [row["device"]["nps"] for row in sweep], [row["latency_ms"] for row in sweep], "o-"
    )
    for row in sweep:
        axes[2].annotate(
            row["device"]["name"],
            (row["device"]["nps"], row["latency_ms"]),
            fontsize=7,
            textcoords="offset points",
            xytext=(3, 3),
        )
    axes[2].set_xlabel("NPs of the device")
    axes[2].set_ylabel("estimated latency, ms")
    axes[2].set_title("sweep: latency against device size (same partition)")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    plt.close(figure)
    write_bytes_atomically(buffer.getvalue(), path)
