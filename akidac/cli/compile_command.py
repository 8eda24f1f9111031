"""`akidac compile`: check the arguments, call `akidac.api`, print what it did."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from akidac.cli.app import (
    app,
    check_distinct,
    check_output_path,
    err,
    floats,
    guard,
    names,
    note_kernel_compilation,
    out,
)
from akidac.cli.options import (
    FIDELITY,
    GATES,
    INPUTS,
    OUTPUTS,
    PIPELINE,
    QUANTIZATION,
    TARGET,
    Abits,
    Calibration,
    Device,
    FidelityGuard,
    InputShapes,
    KeepOnCpu,
    MaxRegions,
    MaxTransfer,
    MinAkidaShare,
    Passes,
    Plugins,
    QuantConfig,
    Quiet,
    ReportJson,
    Samples,
    SramKib,
    Wbits,
)
from akidac.cli.progress import TerminalProgress
from akidac.cli.tables import batch_table, pass_time_table, precision_table
from akidac.errors import UsageError


@app.command()
def compile(
    model: Annotated[
        Path | None,
        typer.Argument(metavar="MODEL", help="the ONNX model to compile (or give --batch)"),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option(
            "-o",
            "--output",
            metavar="FILE",
            help="the hybrid model to write (required; with --batch a folder)",
            rich_help_panel=OUTPUTS,
        ),
    ] = None,
    report_json: ReportJson = None,
    batch: Annotated[
        Path | None,
        typer.Option(
            metavar="DIR|LIST",
            help="compile every *.onnx of this folder, or every model this list file names, "
            "into the -o folder (NAME.hybrid.onnx, NAME.report.json, summary.json)",
            rich_help_panel=OUTPUTS,
        ),
    ] = None,
    jobs: Annotated[
        int,
        typer.Option(
            metavar="N", help="with --batch: models compiled at once", rich_help_panel=OUTPUTS
        ),
    ] = 1,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            metavar="",
            help="print every diagnostic (by default repeated ones are counted)",
            rich_help_panel=OUTPUTS,
        ),
    ] = False,
    quiet: Quiet = False,
    input_shape: InputShapes = None,
    samples: Samples = None,
    num_samples: Annotated[
        int,
        typer.Option(metavar="N", help="calibration samples to use", rich_help_panel=INPUTS),
    ] = 32,
    sample_mean: Annotated[
        str | None,
        typer.Option(
            metavar="M,M,M",
            help="image folder: per-channel mean in [0, 1], e.g. 0.5,0.5,0.5",
            rich_help_panel=INPUTS,
        ),
    ] = None,
    sample_std: Annotated[
        str | None,
        typer.Option(
            metavar="S,S,S", help="image folder: per-channel std in [0, 1]", rich_help_panel=INPUTS
        ),
    ] = None,
    wbits: Wbits = 8,
    abits: Abits = 8,
    quant_config: QuantConfig = None,
    calibration: Calibration = "auto",
    percentile: Annotated[
        float,
        typer.Option(
            metavar="P",
            help="the percentile of |x| the 'percentile' observer keeps",
            rich_help_panel=QUANTIZATION,
        ),
    ] = 99.99,
    weight_observer: Annotated[
        str,
        typer.Option(
            metavar="OBSERVER",
            help="weight observer: auto, minmax or mse",
            rich_help_panel=QUANTIZATION,
        ),
    ] = "auto",
    target_sqnr: Annotated[
        float | None,
        typer.Option(
            metavar="DB",
            help="automatic mixed precision: raise the bits of the layers that lose most until "
            "every output reaches DB of SQNR against the float model",
            rich_help_panel=QUANTIZATION,
        ),
    ] = None,
    write_quant_config: Annotated[
        str | None,
        typer.Option(
            metavar="FILE",
            help="with --target-sqnr: write the chosen per-layer bits (TOML) to FILE",
            rich_help_panel=QUANTIZATION,
        ),
    ] = None,
    fidelity_samples: Annotated[
        int,
        typer.Option(
            metavar="N",
            help="held-out samples the fidelity of every output is measured on (0: skip)",
            rich_help_panel=FIDELITY,
        ),
    ] = 8,
    min_region_sqnr: Annotated[
        float,
        typer.Option(
            metavar="DB",
            help="fidelity guard: an Akida region whose own output scores below DB of SQNR "
            "against the float model on the calibration samples runs on the CPU (regions with "
            "a 4-bit layer: at most 6 dB)",
            rich_help_panel=FIDELITY,
        ),
    ] = 20.0,
    min_output_sqnr: Annotated[
        float,
        typer.Option(
            metavar="DB",
            help="output guard: while a model output scores below DB of SQNR against the float "
            "model on the calibration samples, the Akida region upstream of it that loses most "
            "runs on the CPU (8 bits only; at most 4 more compiles)",
            rich_help_panel=FIDELITY,
        ),
    ] = 20.0,
    fidelity_guard: FidelityGuard = True,
    device: Device = "akida2-12n",
    sram_kib: SramKib = None,
    keep_on_cpu: KeepOnCpu = None,
    strict_device: Annotated[
        bool,
        typer.Option(
            "--strict-device",
            metavar="",
            help="refuse (exit 5) a program that does not fit the device in one hardware pass "
            "instead of running it in several passes",
            rich_help_panel=TARGET,
        ),
    ] = False,
    min_akida_share: MinAkidaShare = None,
    min_sqnr: Annotated[
        float | None,
        typer.Option(
            metavar="DB",
            help="gate: the worst output's SQNR against the float model at least DB",
            rich_help_panel=GATES,
        ),
    ] = None,
    max_regions: MaxRegions = None,
    max_transfer: MaxTransfer = None,
    passes: Passes = None,
    plugin: Plugins = None,
    dump_after: Annotated[
        str | None,
        typer.Option(
            metavar="PASS[,PASS]|all",
            help="write the IR after these passes (or every pass) into --dump-dir",
            rich_help_panel=PIPELINE,
        ),
    ] = None,
    dump_dir: Annotated[
        Path,
        typer.Option(
            metavar="DIR", help="the folder for --dump-after files", rich_help_panel=PIPELINE
        ),
    ] = Path("akidac-dump"),
    elide_weights: Annotated[
        bool,
        typer.Option(
            metavar="",
            help="print large weights in dumps as a hash (--no-elide-weights prints them)",
            rich_help_panel=PIPELINE,
        ),
    ] = True,
    time_passes: Annotated[
        bool,
        typer.Option(
            "--time-passes",
            metavar="",
            help="print how long every pass, the calibration and the fidelity steps took",
            rich_help_panel=PIPELINE,
        ),
    ] = False,
    verify_each: Annotated[
        bool,
        typer.Option(
            metavar="",
            help="verify the IR after every pass (on by default: ~9% of the compile time)",
            rich_help_panel=PIPELINE,
        ),
    ] = True,
) -> None:
    """Compile MODEL into a hybrid ONNX model (Akida programs + CPU nodes)."""

    def action() -> int:
        from akidac import api

        gates = api.make_gates(min_akida_share, min_sqnr, max_regions, max_transfer)
        if min_sqnr is not None and fidelity_samples == 0:
            raise UsageError("--min-sqnr needs the fidelity figures: drop --fidelity-samples 0")
        if output is None:
            raise UsageError("compile needs -o/--output: the hybrid model (a folder with --batch)")
        if (model is None) == (batch is None):
            raise UsageError("compile takes a MODEL or --batch DIR_OR_LIST, not both nor neither")
        if batch is not None:
            single_only = {
                "--report-json": report_json,
                "--dump-after": dump_after,
                "--time-passes": time_passes or None,
                "--target-sqnr": target_sqnr,
                "--write-quant-config": write_quant_config,
                "--passes": passes,
            }
            given = [name for name, value in single_only.items() if value is not None]
            if given:
                raise UsageError(f"--batch writes one report per model: it takes no {given[0]}")
        hybrid = check_output_path(output, "--output", model=model) if batch is None else None
        report_file = check_output_path(report_json, "--report-json", model=model)
        check_distinct((hybrid, "--output"), (report_file, "--report-json"))
        api.load_plugins(plugin or ())
        options = api.make_options(
            samples=samples,
            device=device,
            sram_kib=sram_kib,
            num_samples=num_samples,
            wbits=wbits,
            abits=abits,
            calibration=calibration,
            percentile=percentile,
            weight_observer=weight_observer,
            fidelity_samples=fidelity_samples,
            quant_config=str(quant_config) if quant_config else None,
            sample_mean=floats(sample_mean, "--sample-mean"),
            sample_std=floats(sample_std, "--sample-std"),
            keep_on_cpu=names(keep_on_cpu),
            min_region_sqnr=min_region_sqnr if fidelity_guard else None,
            min_output_sqnr=min_output_sqnr if fidelity_guard else None,
            strict_device=strict_device,
        )
        pipeline = api.parse_pipeline(passes)
        instruments, timing = api.pass_instruments(
            [p.name for p in pipeline] if pipeline else None,
            dump_after=dump_after,
            dump_dir=dump_dir,
            elide_weights=elide_weights,
            time_passes=time_passes,
        )
        shapes = api.parse_input_shapes(input_shape)
        if batch is not None:
            return compile_batch(
                batch, Path(output), options, shapes, gates, jobs, verify_each, quiet
            )
        assert model is not None  # checked above: a MODEL or --batch, exactly one
        start = time.perf_counter()
        choice = None
        if target_sqnr is not None:
            if pipeline is not None or instruments:
                raise UsageError(
                    "--target-sqnr compiles several times: it takes no --passes, "
                    "--dump-after or --time-passes"
                )
            config_file = check_output_path(write_quant_config, "--write-quant-config")
            with err.status(f"compiling towards {target_sqnr:g} dB…"):
                result, choice = api.compile_to_target(
                    model, None, target_sqnr=target_sqnr, options=options, input_shapes=shapes
                )
        else:
            if write_quant_config is not None:
                raise UsageError("--write-quant-config needs --target-sqnr")
            with TerminalProgress(err, quiet=quiet) as progress:
                result = api.compile_model(
                    model,
                    None,
                    options=options,
                    input_shapes=shapes,
                    passes=pipeline,
                    instruments=instruments,
                    verify_each=verify_each,
                    progress=progress,
                )
        seconds = time.perf_counter() - start
        if choice is not None:
            _print_precision(choice, config_file)
        note_kernel_compilation()
        print_diagnostics(result.diagnostics.items, verbose)
        if time_passes:
            out.print(pass_time_table(timing.rows, result.steps, seconds))
        api.write_compile_outputs(result, hybrid, report_file)
        print_summary(result.report, hybrid, seconds)
        api.check_gates(result.report, gates)
        return 0

    guard(action)


#: diagnostics of one code printed one by one before the rest are counted.
GROUPED_DIAGNOSTICS = 3


def print_diagnostics(items: list[Any], verbose: bool) -> None:
    """Warnings and notes on stderr; beyond `GROUPED_DIAGNOSTICS` of one code (166 identical
    AK-MERGE-CONSUMER notes on a large model) the rest are one counted line, unless verbose."""
    shown: dict[tuple[str, str], int] = {}
    for item in items:
        key = (item.severity, item.code)
        shown[key] = shown.get(key, 0) + 1
        if verbose or shown[key] <= GROUPED_DIAGNOSTICS:
            err.print(
                f"[yellow]{item.severity}[/] {item.code}: {escape(item.message)}",
                highlight=False,
                soft_wrap=True,
            )
    for (severity, code), count in shown.items():
        if not verbose and count > GROUPED_DIAGNOSTICS:
            err.print(
                f"[yellow]{severity}[/] {code} ×{count}: {count - GROUPED_DIAGNOSTICS} more like "
                "the above (--verbose lists them)",
                highlight=False,
                soft_wrap=True,
            )


def _print_precision(choice: Any, config_path: Path | None) -> None:
    """The mixed-precision search: output SQNR per compile, and the bits chosen per layer."""
    from akidac import api

    steps = ", ".join(f"{step.sqnr_db:.1f}" for step in choice.steps)
    verdict = "reached" if choice.reached else "not reached"
    out.print(
        f"--target-sqnr {choice.target_db:g} dB {verdict}: worst output SQNR per compile {steps} dB"
    )
    out.print(precision_table(choice.layers))
    if config_path is not None:
        api.write_bytes_atomically(choice.toml().encode(), config_path)
        out.print(f"per-layer bits written to {escape(str(config_path))} (--quant-config)")


def print_summary(report: dict[str, Any], output: Path | None, seconds: float) -> None:
    """The end-of-compile table: device, where nodes and MACs run, regions, bytes, file, time."""
    from akidac import api

    out.print(api.compile_summary_table(report, output, seconds))
    out.print(api.estimate_summary(report.get("estimate")), highlight=False, soft_wrap=True)


def compile_batch(
    source: Path,
    outdir: Path,
    options: Any,
    shapes: dict[str, tuple[int, ...]],
    gates: Any,
    jobs: int,
    verify_each: bool,
    quiet: bool,
) -> int:
    """`compile --batch`: a progress bar over the models on a terminal, then one row per model
    and the batch's exit code (0; 7 when only gates failed; 8 when a model failed)."""
    from akidac import api
    from akidac.errors import BatchFailed, GateFailed

    models = api.batch_models(source)
    with TerminalProgress(err, quiet=quiet) as progress:
        progress.phase(f"compiling {len(models)} models, {jobs} at a time", len(models))
        summary = api.compile_batch(
            models,
            outdir,
            options=options,
            input_shapes=shapes,
            gates=gates,
            jobs=jobs,
            verify_each=verify_each,
            on_done=lambda entry: progress.advance(),
        )
    out.print(batch_table(summary))
    out.print(f"wrote {escape(str(outdir / 'summary.json'))}", highlight=False, soft_wrap=True)
    failed = [m for m in summary["models"] if m["exit_code"] != 0]
    if not failed:
        return 0
    listed = ", ".join(f"{m['name']} (exit {m['exit_code']})" for m in failed)
    message = f"{len(failed)} of {len(summary['models'])} models failed: {listed}"
    if summary["exit_code"] == GateFailed.exit_code:
        raise GateFailed(message)
    raise BatchFailed(message)
