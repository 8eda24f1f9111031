"""`akidac run`, `inspect`, `passes`, `report`, `device` and `bisect`: check the arguments,
call `akidac.api`, print what it returns."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from akidac.cli.app import (
    app,
    check_distinct,
    check_output_path,
    err,
    guard,
    names,
    note_kernel_compilation,
    out,
)
from akidac.cli.options import (
    GATES,
    OUTPUTS,
    Abits,
    Calibration,
    Device,
    FidelityGuard,
    Hybrid,
    InputShapes,
    Json,
    KeepOnCpu,
    MaxRegions,
    MaxTransfer,
    MinAkidaShare,
    Model,
    Passes,
    Plot,
    Plugins,
    QuantConfig,
    Quiet,
    ReportJson,
    Samples,
    SramKib,
    Wbits,
)
from akidac.cli.progress import TerminalProgress
from akidac.cli.tables import (
    bisect_table,
    device_layer_table,
    pass_list_table,
    run_table,
    sweep_table,
)
from akidac.errors import GateFailed, UsageError


@app.command()
def run(
    model: Hybrid,
    input: Annotated[
        list[Path],
        typer.Option(
            "--input",
            metavar="FILE",
            help="an .npy (single input) or .npz (arrays by input name); the first axis "
            "counts samples, run in chunks of the model's batch (repeatable)",
        ),
    ],
    compare: Annotated[
        Path | None,
        typer.Option(
            metavar="MODEL", help="the float ONNX model to compare with, over the whole set"
        ),
    ] = None,
    save: Annotated[
        str | None, typer.Option(metavar="FILE", help="write the outputs to this .npz")
    ] = None,
    quiet: Quiet = False,
    min_sqnr: Annotated[
        float | None,
        typer.Option(
            metavar="DB",
            help="with --compare, gate: every output's SQNR at least DB; exit 7",
            rich_help_panel=GATES,
        ),
    ] = None,
    atol: Annotated[
        float | None,
        typer.Option(
            metavar="X",
            help="with --compare, gate: every output's max absolute error at most X; exit 7",
            rich_help_panel=GATES,
        ),
    ] = None,
) -> None:
    """Run a hybrid model (Akida parts on the bit-exact hardware model) on one input or a whole
    dataset, optionally against the float model."""

    def action() -> int:
        from akidac import api

        check_output_path(save, "--save")
        if compare is None and (min_sqnr is not None or atol is not None):
            raise UsageError("--min-sqnr and --atol compare with the float model: give --compare")
        session = api.open_hybrid(model)
        feeds = api.read_feeds(session, input)
        chunks = api.chunk_count(session, feeds)
        with TerminalProgress(err, quiet=quiet) as progress:
            # the first chunk is where a first run on a machine compiles the kernels
            progress.phase("first chunk (a first run compiles hardware-model kernels)", chunks)

            def next_chunk() -> None:
                progress.advance()
                progress.describe(f"running {chunks} chunk(s)")

            result = api.run_hybrid(session, feeds, reference=compare, on_chunk=next_chunk)
        if result.non_finite_inputs:
            code = "AK-INPUT-NONFINITE"
            err.print(
                f"[yellow]warning[/] {code}: input(s) "
                f"{escape(', '.join(result.non_finite_inputs))} hold "
                "NaN or infinity; the outputs and figures follow from them",
                highlight=False,
                soft_wrap=True,
            )
        out.print(run_table(result))
        note_kernel_compilation()
        if save is not None:
            api.save_outputs(result.outputs, save)
        failures = api.run_gate_failures(result.figures or {}, min_sqnr, atol)
        if failures:
            raise GateFailed("; ".join(failures))
        return 0

    guard(action)


@app.command()
def inspect(model: Hybrid, as_json: Json = False) -> None:
    """Decode and describe every Akida program embedded in a hybrid model."""

    def action() -> int:
        from akidac import api

        if as_json:
            data = {"schema_version": 1, "programs": api.program_records(model)}
            sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
            return 0
        programs = api.describe_programs(model)
        if not programs:
            out.print(f"{model} holds no AkidaOp: it runs entirely on the CPU")
        for name, input_name, summary in programs:
            out.print(f"[bold]{escape(name)}[/] (reads '{escape(input_name)}')")
            out.print(escape(summary), highlight=False, soft_wrap=True)
        return 0

    guard(action)


@app.command(name="passes")
def list_passes(plugin: Plugins = None) -> None:
    """List the registered passes, the default pipeline first in its order, each with its
    one-line description."""

    def action() -> int:
        from akidac import api

        api.load_plugins(plugin or ())
        out.print(pass_list_table(api.pass_list()))
        return 0

    guard(action)


@app.command()
def report(
    model: Model,
    input_shape: InputShapes = None,
    json_output: Json = False,
    report_json: ReportJson = None,
    tagged: Annotated[
        str | None,
        typer.Option(
            metavar="FILE",
            help="write a copy of MODEL whose nodes carry target/region/reasons (for Netron)",
            rich_help_panel=OUTPUTS,
        ),
    ] = None,
    device: Device = "akida2-12n",
    keep_on_cpu: KeepOnCpu = None,
    min_akida_share: MinAkidaShare = None,
    max_regions: MaxRegions = None,
    max_transfer: MaxTransfer = None,
    plugin: Plugins = None,
) -> None:
    """Which nodes Akida can run, and why not for the others (no quantization)."""

    def action() -> int:
        from akidac import api

        tagged_file = check_output_path(tagged, "--tagged", model=model)
        report_file = check_output_path(report_json, "--report-json", model=model)
        check_distinct((tagged_file, "--tagged"), (report_file, "--report-json"))
        api.load_plugins(plugin or ())
        gates = api.make_gates(min_akida_share, None, max_regions, max_transfer)
        data = api.analyze(
            model,
            options=api.make_options(device=device, keep_on_cpu=names(keep_on_cpu)),
            input_shapes=api.parse_input_shapes(input_shape),
            tagged=tagged_file,
        )
        if json_output:
            sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
        else:
            api.print_report(out, data)
        if report_json is not None:
            api.write_json_atomically(data, report_json)
        if tagged is not None:
            err.print(f"wrote {tagged}", highlight=False, soft_wrap=True)
        api.check_gates(data, gates)
        return 0

    guard(action)


@app.command()
def device(
    model: Model,
    input_shape: InputShapes = None,
    sram_kib: SramKib = None,
    device: Device = "akida2-12n",
    keep_on_cpu: KeepOnCpu = None,
    sweep: Annotated[
        bool,
        typer.Option(
            "--sweep",
            metavar="",
            help="also estimate on every preset and custom sizes (same partition)",
        ),
    ] = False,
    json_output: Json = False,
    measure_cpu: Annotated[
        bool,
        typer.Option(
            "--measure-cpu",
            metavar="",
            help="price CPU parts at this machine's measured onnxruntime rate",
        ),
    ] = False,
    plot: Plot = None,
) -> None:
    """How the model's Akida programs map on a device (NPs, hardware passes), the smallest
    preset that holds each program in one pass, and the estimated latency and energy."""

    def action() -> int:
        from akidac import api

        plot_file = check_output_path(plot, "--plot")
        if plot is not None:
            api.require_matplotlib()
        data = api.estimate_device(
            model,
            input_shapes=api.parse_input_shapes(input_shape),
            sram_kib=sram_kib,
            options=api.make_options(device=device, keep_on_cpu=names(keep_on_cpu)),
            sweep=api.sweep_devices() if sweep or plot is not None else (),
            measure_cpu=measure_cpu,
        )
        if plot_file is not None:
            api.plot_estimate(data, plot_file)
            err.print(f"wrote {plot}", highlight=False, soft_wrap=True)
        if json_output:
            sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
            return 0
        out.print(device_layer_table(data))
        for program in data["passes"]:
            counts = ", ".join(str(p["nps"]) for p in program["passes"])
            out.print(
                f"region {program['region']}: {len(program['passes'])} pass(es) "
                f"(NPs per pass: {counts}), weights reloaded per inference: "
                f"{program['weight_bytes_reloaded']:,} B"
            )
        minimal = data["minimal_device"]
        fallback = "none of the presets (programs run in several passes)"
        out.print(
            "smallest device holding every program in one pass: "
            f"{minimal['description'] if minimal else fallback}"
        )
        out.print(api.estimate_summary(data["estimate"]), highlight=False)
        if "sweep" in data:
            out.print(sweep_table(data["sweep"]))
        return 0

    guard(action)


@app.command()
def bisect(
    model: Model,
    samples: Samples = None,
    input_shape: InputShapes = None,
    wbits: Wbits = 8,
    abits: Abits = 8,
    quant_config: QuantConfig = None,
    calibration: Calibration = "auto",
    device: Device = "akida2-12n",
    keep_on_cpu: KeepOnCpu = None,
    threshold: Annotated[
        float, typer.Option(metavar="DB", help="SQNR below which a value counts as divergent")
    ] = 20.0,
    count: Annotated[int, typer.Option(metavar="N", help="samples to compare on")] = 4,
    fidelity_guard: FidelityGuard = True,
    passes: Passes = None,
    plugin: Plugins = None,
    as_json: Json = False,
    plot: Plot = None,
) -> None:
    """Compile MODEL as `compile` would, then compare the hybrid and the float model at every
    value both compute: where accuracy is lost, and what to try."""

    def action() -> int:
        from akidac import api

        plot_file = check_output_path(plot, "--plot")
        api.load_plugins(plugin or ())
        pipeline = api.parse_pipeline(passes)
        options = api.make_options(
            samples=samples,
            device=device,
            wbits=wbits,
            abits=abits,
            calibration=calibration,
            quant_config=str(quant_config) if quant_config else None,
            keep_on_cpu=names(keep_on_cpu),
            min_region_sqnr=20.0 if fidelity_guard else None,
            min_output_sqnr=20.0 if fidelity_guard else None,
        )
        with err.status("compiling and comparing…"):
            result = api.bisect_model(
                model,
                options=options,
                input_shapes=api.parse_input_shapes(input_shape),
                threshold_db=threshold,
                count=count,
                passes=pipeline,
            )
        data = result.as_json()
        if plot_file is not None:
            api.plot_bisect(data, plot_file)
        if as_json:
            out.print_json(json.dumps(data))
            return 0
        out.print(bisect_table(data))
        out.print(f"samples: {escape(data['samples_note'])}")
        if data["first_divergent"] is None:
            out.print(f"no value falls below {threshold:g} dB")
        else:
            out.print(f"first value below {threshold:g} dB: {escape(data['first_divergent'])}")
            for line in data["suggestions"]:
                out.print(f"- {escape(line)}")
        return 0

    guard(action)
