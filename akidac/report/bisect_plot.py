"""The picture of `akidac bisect --plot`: SQNR layer by layer, Akida and CPU apart.

matplotlib is an optional extra (`pip install akidac[plot]`): without it `--plot` is a usage
error naming the extra, and nothing else needs it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from akidac.errors import UsageError


def plot_bisect(data: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Draw the accumulated SQNR (line) and each Akida layer's own SQNR (dots) in topological
    order, CPU values in another colour, the threshold and the first divergent layer marked;
    write a PNG to `path` (through a temporary file, then renamed)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError("--plot needs matplotlib: pip install 'akidac[plot]'") from None
    layers = data["layers"]
    xs = list(range(len(layers)))
    figure, axis = plt.subplots(figsize=(max(6.0, 0.12 * len(layers) + 4), 4.2), dpi=110)
    axis.plot(
        xs,
        [layer["sqnr_db"] for layer in layers],
        color="0.35",
        lw=1.2,
        zorder=1,
        label="SQNR as the hybrid model runs",
    )
    for target, colour in (("akida", "tab:orange"), ("cpu", "tab:blue")):
        points = [
            (x, layer["sqnr_db"])
            for x, layer in zip(xs, layers, strict=True)
            if layer["target"] == target
        ]
        if points:
            point_x, point_y = zip(*points, strict=True)
            axis.scatter(point_x, point_y, s=14, color=colour, zorder=2, label=f"{target} value")
    own = [
        (x, layer["own_sqnr_db"])
        for x, layer in zip(xs, layers, strict=True)
        if layer["own_sqnr_db"] is not None
    ]
    if own:
        own_x, own_y = zip(*own, strict=True)
        axis.scatter(
            own_x,
            own_y,
            s=18,
            marker="x",
            color="tab:red",
            zorder=3,
            label="Akida layer on its own",
        )
    axis.axhline(
        data["threshold_db"],
        color="tab:red",
        ls="--",
        lw=0.8,
        label=f"threshold {data['threshold_db']:g} dB",
    )
    first = data.get("first_divergent")
    if first is not None:
        index = next(i for i, layer in enumerate(layers) if layer["name"] == first)
        axis.axvline(index, color="tab:purple", lw=1.0, label=f"first divergent: {first}")
    axis.set_xlabel("value, in topological order")
    axis.set_ylabel("SQNR against the float model (dB)")
    axis.set_title("akidac bisect")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc="best")
    figure.tight_layout()
    target_path = Path(path)
    temporary = target_path.with_name(f".{target_path.name}.tmp")
    try:
        figure.savefig(temporary, format="png")
        temporary.replace(target_path)
    finally:
        plt.close(figure)
        temporary.unlink(missing_ok=True)
