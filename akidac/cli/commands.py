"""`akidac run`, `inspect`, `passes`, `report`, `device` and `bisect`: check the arguments,
call `akidac.api`, print what it returns."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from akidac.cli.app import app, check_output_path, err, guard, names, note_kernel_compilation, out
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
    model: Annotated[Path, typer.Argument(help="hybrid ONNX model")],
    input: Annotated[
        list[Path],
        typer.Option(
            "--input",
            help="input .npy (single input) or .npz (arrays by input name); the first axis "
            "counts samples, run in chunks of the model's batch",
        ),
    ],
    compare: Annotated[
        Path | None,
        typer.Option(help="float ONNX model to compare with, over the whole set"),
    ] = None,
    save: Annotated[Path | None, typer.Option(help="write the outputs to this .npz")] = None,
    quiet: Annotated[bool, typer.Option(help="no progress bar")] = False,
    min_sqnr: Annotated[
        float | None,
        typer.Option(help="with --compare, gate: every output's SQNR at least this (dB); exit 7"),
    ] = None,
    atol: Annotated[
        float | None,
        typer.Option(help="with --compare, gate: max absolute error at most this; exit 7"),
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
        show = not quiet and chunks > 1 and out.is_terminal
        from rich.progress import Progress

        with Progress(console=out, transient=True, disable=not show) as progress:
            task = progress.add_task("running", total=chunks)
            result = api.run_hybrid(
                session, feeds, reference=compare, on_chunk=lambda: progress.advance(task)
            )
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
def inspect(
    model: Annotated[Path, typer.Argument(help="hybrid ONNX model")],
) -> None:
    """Decode and describe every Akida program embedded in a hybrid model."""

    def action() -> int:
        from akidac import api

        programs = api.describe_programs(model)
        if not programs:
            out.print(f"{model} holds no AkidaOp: it runs entirely on the CPU")
        for name, input_name, summary in programs:
            out.print(f"[bold]{escape(name)}[/] (reads '{escape(input_name)}')")
            out.print(escape(summary), highlight=False, soft_wrap=True)
        return 0

    guard(action)


@app.command(name="passes")
def list_passes() -> None:
    """List the registered passes with their one-line descriptions."""

    def action() -> int:
        from akidac import api

        out.print(pass_list_table(api.pass_list()))
        return 0

    guard(action)


@app.command()
def report(
    model: Annotated[Path, typer.Argument(help="ONNX model to analyse")],
    input_shape: Annotated[list[str] | None, typer.Option("--input-shape")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="print the JSON report")] = False,
    tagged: Annotated[
        Path | None,
        typer.Option(help="write a copy of MODEL whose nodes carry target/region/reasons"),
    ] = None,
    device: Annotated[str, typer.Option(help="device preset")] = "akida2-12n",
    keep_on_cpu: Annotated[
        str | None, typer.Option(help="NODE[,NODE]: ONNX nodes to keep on the CPU")
    ] = None,
    min_akida_share: Annotated[
        str | None,
        typer.Option(help="gate: [nodes:|macs:]PERCENT on Akida at least; exit 7 if not met"),
    ] = None,
    max_regions: Annotated[
        int | None, typer.Option(help="gate: at most this many Akida regions; exit 7")
    ] = None,
    max_transfer: Annotated[
        int | None,
        typer.Option(help="gate: at most this many CPU<->Akida bytes per inference; exit 7"),
    ] = None,
) -> None:
    """Which nodes Akida can run, and why not for the others (no quantization)."""

    def action() -> int:
        from akidac import api

        check_output_path(tagged, "--tagged")
        gates = api.make_gates(min_akida_share, None, max_regions, max_transfer)
        data = api.analyze(
            model,
            options=api.make_options(device=device, keep_on_cpu=names(keep_on_cpu)),
            input_shapes=api.parse_input_shapes(input_shape),
            tagged=tagged,
        )
        if json_output:
            sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
        else:
            api.print_report(out, data)
        if tagged is not None:
            err.print(f"wrote {tagged}", highlight=False, soft_wrap=True)
        api.check_gates(data, gates)
        return 0

    guard(action)


@app.command()
def device(
    model: Annotated[Path, typer.Argument(help="ONNX model")],
    input_shape: Annotated[list[str] | None, typer.Option("--input-shape")] = None,
    sram_kib: Annotated[int | None, typer.Option(help="input SRAM per NP, KiB")] = None,
    device: Annotated[
        str, typer.Option(help="device to map on: akida2-2n/4n/6n/12n or custom:NODES")
    ] = "akida2-12n",
    keep_on_cpu: Annotated[
        str | None, typer.Option(help="NODE[,NODE]: ONNX nodes to keep on the CPU")
    ] = None,
    sweep: Annotated[
        bool, typer.Option(help="estimate on every preset and custom sizes (same partition)")
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="print JSON (docs/cli.md)")] = False,
    measure_cpu: Annotated[
        bool, typer.Option(help="price CPU parts at this machine's measured onnxruntime rate")
    ] = False,
    plot: Annotated[
        Path | None,
        typer.Option(help="draw per-layer time/MACs and the sweep to this PNG (needs [plot])"),
    ] = None,
) -> None:
    """How the model's Akida programs map on a device (NPs, hardware passes), the smallest
    preset that holds each program in one pass, and the estimated latency and energy."""

    def action() -> int:
        from akidac import api

        check_output_path(plot, "--plot")
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
        if plot is not None:
            api.plot_estimate(data, plot)
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
    model: Annotated[Path, typer.Argument(help="ONNX model")],
    samples: Annotated[
        Path | None,
        typer.Option(help="calibration samples (.npz by input name, or an image folder)"),
    ] = None,
    input_shape: Annotated[list[str] | None, typer.Option("--input-shape")] = None,
    wbits: Annotated[int, typer.Option(help="weight bits (4 or 8)")] = 8,
    abits: Annotated[int, typer.Option(help="activation bits (4 or 8)")] = 8,
    quant_config: Annotated[
        Path | None, typer.Option(help="per-layer bits (TOML or JSON, by ONNX node name)")
    ] = None,
    calibration: Annotated[
        str, typer.Option(help="activation observer: auto, percentile, minmax or mse")
    ] = "auto",
    device: Annotated[str, typer.Option(help="akida2-2n/4n/6n/12n or custom:NODES")] = (
        "akida2-12n"
    ),
    keep_on_cpu: Annotated[
        str | None, typer.Option(help="NODE[,NODE]: ONNX nodes to keep on the CPU")
    ] = None,
    threshold: Annotated[
        float, typer.Option(help="SQNR (dB) below which a layer counts as divergent")
    ] = 20.0,
    count: Annotated[int, typer.Option(help="samples to compare on")] = 4,
    fidelity_guard: Annotated[
        bool, typer.Option(help="compile with the fidelity guard, as `compile` does")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="print the figures as JSON")] = False,
    plot: Annotated[
        Path | None, typer.Option(help="draw the SQNR per layer to this PNG (needs matplotlib)")
    ] = None,
) -> None:
    """Compile MODEL as `compile` would, then compare the hybrid and the float model at every
    value both compute: where accuracy is lost, and what to try."""

    def action() -> int:
        from akidac import api

        check_output_path(plot, "--plot")
        options = api.make_options(
            samples=samples,
            device=device,
            wbits=wbits,
            abits=abits,
            calibration=calibration,
            quant_config=str(quant_config) if quant_config else None,
            keep_on_cpu=names(keep_on_cpu),
            min_region_sqnr=20.0 if fidelity_guard else None,
        )
        with err.status("compiling and comparing…"):
            result = api.bisect_model(
                model,
                options=options,
                input_shapes=api.parse_input_shapes(input_shape),
                threshold_db=threshold,
                count=count,
            )
        data = result.as_json()
        if plot is not None:
            api.plot_bisect(data, plot)
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
