"""`akidac compile`: check the arguments, call `akidac.api`, print what it did."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from akidac.cli.app import (
    app,
    check_output_path,
    err,
    floats,
    guard,
    names,
    note_kernel_compilation,
    out,
)
from akidac.cli.tables import batch_table, pass_time_table, precision_table
from akidac.errors import UsageError


@app.command()
def compile(
    model: Annotated[
        Path | None, typer.Argument(help="ONNX model to compile (or give --batch)")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="hybrid model to write (with --batch: a folder)"),
    ] = None,
    batch: Annotated[
        Path | None,
        typer.Option(
            help="compile every *.onnx of this folder, or every model this list file names, "
            "into the -o folder (NAME.hybrid.onnx, NAME.report.json, summary.json)"
        ),
    ] = None,
    jobs: Annotated[int, typer.Option(help="with --batch: models compiled at once")] = 1,
    input_shape: Annotated[
        list[str] | None,
        typer.Option("--input-shape", help="static shape NAME=1x3x224x224 (repeatable)"),
    ] = None,
    samples: Annotated[
        Path | None,
        typer.Option(
            help="calibration samples: an .npz with one array (N, ...) per input name, or a "
            "folder of images (PNG, PGM/PPM, NPY) for a single image input"
        ),
    ] = None,
    num_samples: Annotated[int, typer.Option(help="calibration samples to use")] = 32,
    sample_mean: Annotated[
        str | None, typer.Option(help="image folder: per-channel mean in [0, 1], e.g. 0.5,0.5,0.5")
    ] = None,
    sample_std: Annotated[
        str | None, typer.Option(help="image folder: per-channel std in [0, 1]")
    ] = None,
    wbits: Annotated[int, typer.Option(help="weight bits, 4 or 8")] = 8,
    abits: Annotated[int, typer.Option(help="activation bits, 4 or 8")] = 8,
    quant_config: Annotated[
        Path | None, typer.Option(help="per-layer bit overrides (TOML or JSON)")
    ] = None,
    calibration: Annotated[
        str, typer.Option(help="activation observer: auto, percentile, minmax or mse")
    ] = "auto",
    percentile: Annotated[float, typer.Option(help="percentile of |x| for 'percentile'")] = 99.99,
    weight_observer: Annotated[
        str, typer.Option(help="weight observer: auto, minmax or mse")
    ] = "auto",
    fidelity_samples: Annotated[
        int, typer.Option(help="held-out samples to measure fidelity on (0: skip)")
    ] = 8,
    device: Annotated[str, typer.Option(help="akida2-2n/4n/6n/12n or custom:NODES")] = "akida2-12n",
    sram_kib: Annotated[int | None, typer.Option(help="input SRAM per NP, KiB")] = None,
    passes: Annotated[
        str | None, typer.Option(help="comma-separated pass list instead of the default pipeline")
    ] = None,
    dump_after: Annotated[
        str | None, typer.Option(help="PASS[,PASS] or 'all': write the IR after these passes")
    ] = None,
    dump_dir: Annotated[Path, typer.Option(help="folder for --dump-after files")] = Path(
        "akidac-dump"
    ),
    elide_weights: Annotated[
        bool,
        typer.Option(
            help="print large weights in dumps as a hash (--no-elide-weights prints them)"
        ),
    ] = True,
    time_passes: Annotated[bool, typer.Option(help="print a table of pass times")] = False,
    verify_each: Annotated[
        bool, typer.Option(help="verify the IR after every pass (on by default: ~9% of compile)")
    ] = True,
    report_json: Annotated[Path | None, typer.Option(help="write the JSON report here")] = None,
    keep_on_cpu: Annotated[
        str | None,
        typer.Option(help="NODE[,NODE]: ONNX nodes to keep on the CPU (reason AK-USER-CPU)"),
    ] = None,
    min_region_sqnr: Annotated[
        float,
        typer.Option(
            help="fidelity guard: an Akida region whose own output scores below this SQNR (dB) "
            "against the float model on the calibration samples runs on the CPU (regions with "
            "a 4-bit layer: at most 6 dB)"
        ),
    ] = 20.0,
    fidelity_guard: Annotated[
        bool, typer.Option(help="run the fidelity guard (--no-fidelity-guard turns it off)")
    ] = True,
    target_sqnr: Annotated[
        float | None,
        typer.Option(
            help="automatic mixed precision: raise the bits of the layers that lose most until "
            "every output reaches this SQNR (dB) against the float model"
        ),
    ] = None,
    write_quant_config: Annotated[
        Path | None,
        typer.Option(help="with --target-sqnr: write the chosen per-layer bits (TOML) here"),
    ] = None,
    verbose: Annotated[
        bool, typer.Option(help="print every diagnostic (by default repeated ones are counted)")
    ] = False,
    min_akida_share: Annotated[
        str | None,
        typer.Option(
            help="gate: [nodes:|macs:]PERCENT on Akida at least (MACs when unqualified); "
            "exit 7 if not met, after writing the outputs"
        ),
    ] = None,
    min_sqnr: Annotated[
        float | None,
        typer.Option(help="gate: the worst output's SQNR (dB) against the float model; exit 7"),
    ] = None,
    max_regions: Annotated[
        int | None, typer.Option(help="gate: at most this many Akida regions; exit 7")
    ] = None,
    max_transfer: Annotated[
        int | None,
        typer.Option(help="gate: at most this many CPU<->Akida bytes per inference; exit 7"),
    ] = None,
    strict_device: Annotated[
        bool,
        typer.Option(
            help="refuse (exit 5) a program that does not fit the device in one hardware pass "
            "instead of running it in several passes"
        ),
    ] = False,
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
        single_only = {
            "--report-json": report_json,
            "--dump-after": dump_after,
            "--time-passes": time_passes or None,
            "--target-sqnr": target_sqnr,
            "--write-quant-config": write_quant_config,
            "--passes": passes,
        }
        if batch is not None:
            given = [name for name, value in single_only.items() if value is not None]
            if given:
                raise UsageError(f"--batch writes one report per model: it takes no {given[0]}")
        check_output_path(output if batch is None else None, "--output")
        check_output_path(report_json, "--report-json")
        for path, what in ((output, "--output"), (report_json, "--report-json")):
            if (
                path is not None
                and model is not None
                and path.exists()
                and model.exists()
                and path.samefile(model)
            ):
                raise UsageError(f"{what} '{path}' is the input model: it would be overwritten")
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
            strict_device=strict_device,
        )
        pipeline = [p.strip() for p in passes.split(",") if p.strip()] if passes else None
        instruments, timing = api.pass_instruments(
            pipeline,
            dump_after=dump_after,
            dump_dir=dump_dir,
            elide_weights=elide_weights,
            time_passes=time_passes,
        )
        shapes = api.parse_input_shapes(input_shape)
        if batch is not None:
            return compile_batch(batch, output, options, shapes, gates, jobs, verify_each)
        start = time.perf_counter()
        choice = None
        if target_sqnr is not None:
            if pipeline is not None or instruments:
                raise UsageError(
                    "--target-sqnr compiles several times: it takes no --passes, "
                    "--dump-after or --time-passes"
                )
            check_output_path(write_quant_config, "--write-quant-config")
            with err.status(f"compiling towards {target_sqnr:g} dB…"):
                result, choice = api.compile_to_target(
                    model, None, target_sqnr=target_sqnr, options=options, input_shapes=shapes
                )
        else:
            if write_quant_config is not None:
                raise UsageError("--write-quant-config needs --target-sqnr")
            with err.status("compiling…"):
                result = api.compile_model(
                    model,
                    None,
                    options=options,
                    input_shapes=shapes,
                    passes=pipeline,
                    instruments=instruments,
                    verify_each=verify_each,
                )
        seconds = time.perf_counter() - start
        if choice is not None:
            _print_precision(choice, write_quant_config)
        note_kernel_compilation()
        print_diagnostics(result.diagnostics.items, verbose)
        if time_passes:
            out.print(pass_time_table(timing.rows))
        api.write_compile_outputs(result, output, report_json)
        print_summary(result.report, output, seconds)
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
) -> int:
    """`compile --batch`: a progress bar over the models on a terminal, then one row per model
    and the batch's exit code (0; 7 when only gates failed; 8 when a model failed)."""
    from rich.progress import Progress

    from akidac import api
    from akidac.errors import BatchFailed, GateFailed

    models = api.batch_models(source)
    show = err.is_terminal
    with Progress(console=err, transient=True, disable=not show) as progress:
        task = progress.add_task(f"compiling {len(models)} models", total=len(models))
        summary = api.compile_batch(
            models,
            outdir,
            options=options,
            input_shapes=shapes,
            gates=gates,
            jobs=jobs,
            verify_each=verify_each,
            on_done=lambda entry: progress.advance(task),
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
