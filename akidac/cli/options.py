"""The command-line parameters, declared once with a metavar that reads as a word, a help
text and a help panel, and shared by every command that takes them.

Typer would otherwise print Python types (`<list[str]>`, `<bool>`); flags get an empty
metavar. The panels group `compile`'s many options by what they are about.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

INPUTS = "Model and inputs"
QUANTIZATION = "Quantization"
FIDELITY = "Fidelity"
TARGET = "Target"
GATES = "Gates (exit 7 when missed, after the outputs are written)"
OUTPUTS = "Outputs"
PIPELINE = "Pipeline and debugging"

Model = Annotated[Path, typer.Argument(metavar="MODEL", help="the ONNX model", show_default=False)]
Hybrid = Annotated[
    Path, typer.Argument(metavar="HYBRID", help="a hybrid ONNX model (the output of compile)")
]
InputShapes = Annotated[
    list[str] | None,
    typer.Option(
        "--input-shape",
        metavar="NAME=1x3x224x224",
        help="a static shape for an input with dynamic dimensions (repeatable)",
        rich_help_panel=INPUTS,
    ),
]
Samples = Annotated[
    Path | None,
    typer.Option(
        metavar="FILE|DIR",
        help="calibration samples: an .npz with one array (N, ...) per input name, an .npy for "
        "a single input, or a folder of images (PNG, PGM/PPM, NPY) for a single image input",
        rich_help_panel=INPUTS,
    ),
]
Wbits = Annotated[
    int,
    typer.Option(
        metavar="4|8", help="weight bits of every Akida layer", rich_help_panel=QUANTIZATION
    ),
]
Abits = Annotated[
    int,
    typer.Option(
        metavar="4|8", help="activation bits of every Akida layer", rich_help_panel=QUANTIZATION
    ),
]
QuantConfig = Annotated[
    Path | None,
    typer.Option(
        metavar="FILE",
        help="per-layer bit overrides by ONNX node name (TOML or JSON)",
        rich_help_panel=QUANTIZATION,
    ),
]
Calibration = Annotated[
    str,
    typer.Option(
        metavar="OBSERVER",
        help="activation observer: auto, percentile, minmax or mse",
        rich_help_panel=QUANTIZATION,
    ),
]
Device = Annotated[
    str,
    typer.Option(
        metavar="DEVICE",
        help="the target: akida2-2n, akida2-4n, akida2-6n, akida2-12n or custom:NODES",
        rich_help_panel=TARGET,
    ),
]
SramKib = Annotated[
    int | None,
    typer.Option(metavar="KIB", help="input SRAM per NP, KiB (default 64)", rich_help_panel=TARGET),
]
KeepOnCpu = Annotated[
    str | None,
    typer.Option(
        metavar="NODE[,NODE]",
        help="ONNX nodes to keep on the CPU whatever their legality (reason AK-USER-CPU)",
        rich_help_panel=TARGET,
    ),
]
FidelityGuard = Annotated[
    bool,
    typer.Option(
        metavar="",
        help="move an Akida region whose own output drifts below --min-region-sqnr, or whose "
        "error takes a model output below --min-output-sqnr, to the CPU (--no-fidelity-guard "
        "turns both guards off)",
        rich_help_panel=FIDELITY,
    ),
]
MinAkidaShare = Annotated[
    str | None,
    typer.Option(
        metavar="[nodes:|macs:]PCT",
        help="gate: at least PCT percent of the MACs (or nodes) on Akida",
        rich_help_panel=GATES,
    ),
]
MaxRegions = Annotated[
    int | None,
    typer.Option(metavar="N", help="gate: at most N Akida regions", rich_help_panel=GATES),
]
MaxTransfer = Annotated[
    int | None,
    typer.Option(
        metavar="BYTES",
        help="gate: at most BYTES moved between CPU and Akida per inference",
        rich_help_panel=GATES,
    ),
]
Json = Annotated[
    bool,
    typer.Option(
        "--json", metavar="", help="print JSON on stdout instead of tables", rich_help_panel=OUTPUTS
    ),
]
#: output files are taken as text, so that a trailing '/' (a folder) can be refused
ReportJson = Annotated[
    str | None,
    typer.Option(
        metavar="FILE",
        help="also write the JSON report to FILE (atomically)",
        rich_help_panel=OUTPUTS,
    ),
]
Plot = Annotated[
    str | None,
    typer.Option(
        metavar="FILE.png",
        help="draw the figures to this PNG (needs matplotlib: pip install 'akidac\\[plot]')",
        rich_help_panel=OUTPUTS,
    ),
]
Quiet = Annotated[
    bool,
    typer.Option(
        "--quiet",
        "-q",
        metavar="",
        help="no progress display (it shows only on a terminal anyway)",
        rich_help_panel=OUTPUTS,
    ),
]
Plugins = Annotated[
    list[str] | None,
    typer.Option(
        "--plugin",
        metavar="MODULE",
        help="import this Python module first, so the passes it registers can be named in "
        "--passes (repeatable)",
        rich_help_panel=PIPELINE,
    ),
]
Passes = Annotated[
    str | None,
    typer.Option(
        metavar="PASS[,PASS]",
        help="run these registered passes instead of the default pipeline; a pass's "
        "parameters go in brackets: my-pass\\[threshold=0.5,mode=fast]",
        rich_help_panel=PIPELINE,
    ),
]
