"""The `akidac` command line: argument handling and printing only; the work is in `akidac.api`.

Every `AkidacError` becomes one line on stderr and its documented exit code (see
docs/cli.md); anything else is a bug, reported with exit code 1 and a hint to file an issue.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from akidac.errors import AkidacError, UsageError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="akidac: compile ONNX models for BrainChip Akida 2, run them anywhere.",
    context_settings={"help_option_names": ["-h", "--help"]},
)


class _Console(Console):
    """rich's Console, except that a closed stdout (`akidac report m.onnx | head -1`) ends the
    command with exit 0, as for any Unix filter, rather than rich's exit 1."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise SystemExit(0)


out = _Console()
err = Console(stderr=True)


def _print_version(value: bool) -> None:
    if value:
        from akidac import __version__

        out.print(f"akidac {__version__}", highlight=False)
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="print the version and exit"
        ),
    ] = False,
) -> None:
    """akidac: compile ONNX models for BrainChip Akida 2, run them anywhere."""


def _closed_stdout() -> None:
    """The reader of our stdout went away (`akidac report m.onnx | head -1`): not an error.
    Later writes (and the interpreter's final flush) go to /dev/null; exit 0."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    raise typer.Exit(0)


def _guard(action: Callable[[], int | None]) -> None:
    try:
        code = action() or 0
        sys.stdout.flush()
    except BrokenPipeError:
        _closed_stdout()
    except AkidacError as error:
        err.print(f"[bold red]error[/] {escape(str(error))}", highlight=False, soft_wrap=True)
        raise typer.Exit(error.exit_code) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except Exception as error:  # a bug: say so, in one line
        err.print(
            f"[bold red]internal error[/] {type(error).__name__}: "
            f"{escape(' '.join(str(error).split()))} — this is a bug "
            "in akidac; please report it with the command line and the model",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1) from None
    raise typer.Exit(code)


def _load_npz(path: Path, what: str) -> dict[str, np.ndarray]:
    """Arrays of an .npz (by name) or an .npy (keyed '' for the single input)."""
    if not path.is_file():
        raise UsageError(f"{what} file '{path}' does not exist or is not a file")
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            return {"": loaded}
        with loaded as data:
            return {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UsageError(
            f"{what} file '{path}' is not a readable NumPy .npz/.npy file ({first})"
        ) from None


def _report_kernel_compilation() -> None:
    """Say so when this process compiled hardware-model kernels (a first run, ~1–2 s each)."""
    from akidac.backends.akida.kernels import kernels_compiled_in_this_process

    compiled = kernels_compiled_in_this_process()
    if compiled:
        err.print(
            f"note: compiled {compiled} hardware-model kernel(s) on this first run; later runs "
            "load them from the cache"
        )


def check_output_path(path: Path | None, what: str) -> None:
    """Refuse an output path whose folder is missing or which is a folder, before any work."""
    if path is None:
        return
    if path.is_dir():
        raise UsageError(f"{what} '{path}' is a folder; give a file name")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise UsageError(f"{what} '{path}': folder '{folder}' does not exist")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"{what} '{path}': folder '{folder}' is not writable")
    if path.exists() and not path.is_file():
        raise UsageError(f"{what} '{path}' exists and is not a regular file (a device or FIFO)")


def _floats(text: str | None, what: str) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"{what} takes comma-separated numbers, not {text!r}") from None


def _names(text: str | None) -> tuple[str, ...]:
    """`a,b` → ('a', 'b'); None → ()."""
    return tuple(name.strip() for name in (text or "").split(",") if name.strip())


@app.command()
def compile(
    model: Annotated[Path, typer.Argument(help="ONNX model to compile")],
    output: Annotated[Path, typer.Option("-o", "--output", help="hybrid model to write")],
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
        from akidac.api import compile_model
        from akidac.frontend.shapes import parse_input_shapes
        from akidac.passes import (
            DEFAULT_PIPELINE,
            CompileOptions,
            DumpInstrument,
            TimingInstrument,
        )
        from akidac.report.gates import Gates, check_gates, parse_share

        gates = Gates(parse_share(min_akida_share), min_sqnr, max_regions, max_transfer)
        if min_sqnr is not None and fidelity_samples == 0:
            raise UsageError("--min-sqnr needs the fidelity figures: drop --fidelity-samples 0")
        check_output_path(output, "--output")
        check_output_path(report_json, "--report-json")
        for path, what in ((output, "--output"), (report_json, "--report-json")):
            if path is not None and path.exists() and model.exists() and path.samefile(model):
                raise UsageError(f"{what} '{path}' is the input model: it would be overwritten")
        if num_samples < 1:
            raise UsageError(f"--num-samples must be at least 1, not {num_samples}")
        if fidelity_samples < 0:
            raise UsageError(f"--fidelity-samples must be 0 or more, not {fidelity_samples}")
        for name, bits in (("--wbits", wbits), ("--abits", abits)):
            if bits not in (4, 8):
                raise UsageError(f"{name} must be 4 or 8, not {bits}")
        if calibration not in ("auto", "percentile", "minmax", "mse"):
            raise UsageError(
                f"--calibration must be auto, percentile, minmax or mse, not {calibration!r}"
            )
        if weight_observer not in ("auto", "minmax", "mse"):
            raise UsageError(
                f"--weight-observer must be auto, minmax or mse, not {weight_observer!r}"
            )
        options = CompileOptions(
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
            sample_mean=_floats(sample_mean, "--sample-mean"),
            sample_std=_floats(sample_std, "--sample-std"),
            keep_on_cpu=_names(keep_on_cpu),
            min_region_sqnr=min_region_sqnr if fidelity_guard else None,
            strict_device=strict_device,
        )
        if samples is not None and samples.is_dir():
            options.samples_dir = str(samples)
        elif samples is not None:
            options.samples = _load_npz(samples, "--samples")
        pipeline = [p.strip() for p in passes.split(",") if p.strip()] if passes else None
        instruments: list[Any] = []
        timing = TimingInstrument()
        if time_passes:
            instruments.append(timing)
        if dump_after:
            names = None if dump_after == "all" else frozenset(dump_after.split(","))
            known = set(pipeline or DEFAULT_PIPELINE)
            unknown = sorted((names or set()) - known)
            if unknown:
                raise UsageError(
                    f"--dump-after names {', '.join(unknown)}, which the pipeline "
                    f"does not run ({', '.join(pipeline or DEFAULT_PIPELINE)})"
                )
            instruments.append(DumpInstrument(dump_dir, names, elide_weights=elide_weights))
        start = time.perf_counter()
        choice = None
        if target_sqnr is not None:
            from akidac.api import compile_to_target

            if pipeline is not None or instruments:
                raise UsageError(
                    "--target-sqnr compiles several times: it takes no --passes, "
                    "--dump-after or --time-passes"
                )
            check_output_path(write_quant_config, "--write-quant-config")
            with err.status(f"compiling towards {target_sqnr:g} dB…"):
                result, choice = compile_to_target(
                    model,
                    None,
                    target_sqnr=target_sqnr,
                    options=options,
                    input_shapes=parse_input_shapes(input_shape),
                )
        else:
            if write_quant_config is not None:
                raise UsageError("--write-quant-config needs --target-sqnr")
            with err.status("compiling…"):
                result = compile_model(
                    model,
                    None,
                    options=options,
                    input_shapes=parse_input_shapes(input_shape),
                    passes=pipeline,
                    instruments=instruments,
                    verify_each=verify_each,
                )
        seconds = time.perf_counter() - start
        if choice is not None:
            _print_precision(choice, write_quant_config)
        _report_kernel_compilation()
        _print_diagnostics(result.diagnostics.items, verbose)
        if time_passes:
            table = Table(title="pass times")
            table.add_column("pass")
            table.add_column("ms", justify="right")
            table.add_column("changed")
            for name, secs, changed in timing.rows:
                table.add_row(name, f"{secs * 1000:.1f}", "yes" if changed else "no")
            out.print(table)
        _write_outputs(result, output, report_json)
        print_summary(result.report, output, seconds)
        check_gates(result.report, gates)
        return 0

    _guard(action)


#: diagnostics of one code printed one by one before the rest are counted.
GROUPED_DIAGNOSTICS = 3


def _print_diagnostics(items: list[Any], verbose: bool) -> None:
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


def _write_outputs(result: Any, output: Path | None, report_json: Path | None) -> None:
    """The report, then the hybrid model, each atomically; when the second write fails the
    first one is taken back, so a failed compile leaves no output behind (a report that was
    there before is not restored: it described an earlier compile)."""
    from akidac.api import write_json_atomically, write_model_atomically

    if report_json is not None:
        write_json_atomically(result.report, report_json)
    if output is None:
        return
    try:
        write_model_atomically(result.model, output)
    except BaseException:
        if report_json is not None:
            report_json.unlink(missing_ok=True)
        raise


def _print_precision(choice: Any, config_path: Path | None) -> None:
    """The mixed-precision search: output SQNR per compile, and the bits chosen per layer."""
    from akidac.api import write_bytes_atomically

    steps = ", ".join(f"{step.sqnr_db:.1f}" for step in choice.steps)
    verdict = "reached" if choice.reached else "not reached"
    out.print(
        f"--target-sqnr {choice.target_db:g} dB {verdict}: worst output SQNR per compile {steps} dB"
    )
    table = Table(title="bits per Akida layer")
    for column in ("layer", "wbits", "abits"):
        table.add_column(column, justify="left" if column == "layer" else "right")
    for name in sorted(choice.layers):
        bits = choice.layers[name]
        table.add_row(escape(name), str(bits.get("wbits", "")), str(bits.get("abits", "")))
    out.print(table)
    if config_path is not None:
        write_bytes_atomically(choice.toml().encode(), config_path)
        out.print(f"per-layer bits written to {escape(str(config_path))} (--quant-config)")


def print_summary(report: dict[str, Any], output: Path | None, seconds: float) -> None:
    """The end-of-compile table: device, where nodes and MACs run, regions, bytes, file, time."""
    from akidac.backends.akida.estimate import summary_line
    from akidac.report.render import compile_summary_table

    out.print(compile_summary_table(report, output, seconds))
    out.print(summary_line(report.get("estimate")), highlight=False, soft_wrap=True)


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
        from akidac.api import write_bytes_atomically
        from akidac.metrics import compare_outputs
        from akidac.runtime.dataset import (
            chunk_size,
            iter_chunks,
            non_finite_inputs,
            run_chunks,
            sample_count,
        )
        from akidac.runtime.session import HybridSession

        check_output_path(save, "--save")
        if compare is None and (min_sqnr is not None or atol is not None):
            raise UsageError("--min-sqnr and --atol compare with the float model: give --compare")
        session = HybridSession(model)
        feeds: dict[str, np.ndarray] = {}
        for path in input:
            feeds.update(_load_npz(path, "--input"))
        if "" in feeds:
            if len(session.get_inputs()) != 1:
                raise UsageError("the model has several inputs: pass an .npz keyed by name")
            feeds = {session.get_inputs()[0].name: feeds.pop("")}
        bad = non_finite_inputs(feeds)
        if bad:
            code = "AK-INPUT-NONFINITE"
            err.print(
                f"[yellow]warning[/] {code}: input(s) {escape(', '.join(bad))} hold "
                "NaN or infinity; the outputs and figures follow from them",
                highlight=False,
                soft_wrap=True,
            )
        size = chunk_size(session)
        total = sample_count(session, feeds)
        chunks = total // size if total % size == 0 else total
        reference = _float_session(compare) if compare is not None else None
        show = not quiet and chunks > 1 and out.is_terminal
        from rich.progress import Progress

        with Progress(console=out, transient=True, disable=not show) as progress:
            task = progress.add_task("running", total=chunks)
            results, expected = run_chunks(
                session,
                iter_chunks(session, feeds, size),
                reference,
                on_chunk=lambda: progress.advance(task),
            )
        outputs = [np.concatenate(part, axis=0) for part in results]
        title = "outputs" if total == 1 else f"outputs over {total} samples"
        table = Table(title=title)
        for column in ("output", "shape", "dtype"):
            table.add_column(column)
        if expected is not None:
            for column in ("SQNR dB (min)", "Pearson (min)", "top-1", "max abs error"):
                table.add_column(column, justify="right")
        failures: list[str] = []
        for index, (info, value) in enumerate(zip(session.get_outputs(), outputs, strict=True)):
            row = [info.name, str(list(value.shape)), str(value.dtype)]
            if expected is not None:
                with np.errstate(all="ignore"):
                    figures = compare_outputs(expected[index], results[index])
                if min_sqnr is not None and figures["sqnr_db"] < min_sqnr:
                    failures.append(
                        f"output '{info.name}' SQNR {figures['sqnr_db']:.1f} dB is below "
                        f"--min-sqnr {min_sqnr:g} dB"
                    )
                if atol is not None and figures["max_abs_error"] > atol:
                    failures.append(
                        f"output '{info.name}' max abs error {figures['max_abs_error']:.6g} "
                        f"exceeds --atol {atol:g}"
                    )
                top1 = figures["top1_agreement"]
                row += [
                    f"{figures['sqnr_db']:.1f}",
                    f"{figures['pearson']:.4f}",
                    "" if top1 is None else f"{top1:.1%}",
                    f"{figures['max_abs_error']:.6g}",
                ]
            table.add_row(*row)
        out.print(table)
        _report_kernel_compilation()
        if save is not None:
            buffer = io.BytesIO()
            arrays: dict[str, Any] = {
                i.name: v for i, v in zip(session.get_outputs(), outputs, strict=True)
            }
            np.savez(buffer, **arrays)
            write_bytes_atomically(buffer.getvalue(), save)
        if failures:
            from akidac.errors import GateFailed

            raise GateFailed("; ".join(failures))
        return 0

    _guard(action)


def _float_session(path: Path) -> Any:
    from akidac.frontend.loader import load_model
    from akidac.runtime.compare import float_session

    return float_session(load_model(path))


@app.command()
def inspect(
    model: Annotated[Path, typer.Argument(help="hybrid ONNX model")],
) -> None:
    """Decode and describe every Akida program embedded in a hybrid model."""

    def action() -> int:
        from akidac.backends.akida.program import program_summary
        from akidac.runtime.session import HybridSession

        session = HybridSession(model)
        steps = session.akida_steps()
        if not steps:
            out.print(f"{model} holds no AkidaOp: it runs entirely on the CPU")
        for name, program, input_name in steps:
            out.print(f"[bold]{escape(name)}[/] (reads '{escape(input_name)}')")
            out.print(escape(program_summary(program)), highlight=False, soft_wrap=True)
        return 0

    _guard(action)


@app.command(name="passes")
def list_passes() -> None:
    """List the registered passes with their one-line descriptions."""

    def action() -> int:
        from akidac.passes import DEFAULT_PIPELINE, registered_passes
        from akidac.passes.base import one_line_doc

        table = Table(title="registered passes")
        table.add_column("pass")
        table.add_column("default pipeline", justify="right")
        table.add_column("what it does")
        for name, cls in registered_passes().items():
            position = DEFAULT_PIPELINE.index(name) + 1 if name in DEFAULT_PIPELINE else ""
            table.add_row(name, str(position), one_line_doc(cls))
        out.print(table)
        return 0

    _guard(action)


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
        from akidac.api import analyze
        from akidac.frontend.shapes import parse_input_shapes
        from akidac.passes import CompileOptions
        from akidac.report.render import print_report

        check_output_path(tagged, "--tagged")
        data = analyze(
            model,
            options=CompileOptions(device=device, keep_on_cpu=_names(keep_on_cpu)),
            input_shapes=parse_input_shapes(input_shape),
            tagged=tagged,
        )
        if json_output:
            sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
        else:
            print_report(out, data)
        if tagged is not None:
            err.print(f"wrote {tagged}", highlight=False, soft_wrap=True)
        from akidac.report.gates import Gates, check_gates, parse_share

        check_gates(data, Gates(parse_share(min_akida_share), None, max_regions, max_transfer))
        return 0

    _guard(action)


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
        from akidac.api import estimate_device
        from akidac.backends.akida.estimate import SWEEP_DEVICES, summary_line
        from akidac.frontend.shapes import parse_input_shapes
        from akidac.passes import CompileOptions

        check_output_path(plot, "--plot")
        if plot is not None:
            from akidac.report.estimate_plot import require_matplotlib

            require_matplotlib()
        data = estimate_device(
            model,
            input_shapes=parse_input_shapes(input_shape),
            sram_kib=sram_kib,
            options=CompileOptions(device=device, keep_on_cpu=_names(keep_on_cpu)),
            sweep=SWEEP_DEVICES if sweep or plot is not None else (),
            measure_cpu=measure_cpu,
        )
        if plot is not None:
            from akidac.report.estimate_plot import plot_estimate

            plot_estimate(data, plot)
            err.print(f"wrote {plot}", highlight=False, soft_wrap=True)
        if json_output:
            sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
            return 0
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
        out.print(table)
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
        out.print(summary_line(data["estimate"]), highlight=False)
        if "sweep" in data:
            out.print(sweep_table(data["sweep"]))
        return 0

    _guard(action)


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
        from akidac.api import bisect_model
        from akidac.frontend.shapes import parse_input_shapes
        from akidac.passes import CompileOptions

        check_output_path(plot, "--plot")
        for name, bits in (("--wbits", wbits), ("--abits", abits)):
            if bits not in (4, 8):
                raise UsageError(f"{name} must be 4 or 8, not {bits}")
        options = CompileOptions(
            device=device,
            wbits=wbits,
            abits=abits,
            calibration=calibration,
            quant_config=str(quant_config) if quant_config else None,
            keep_on_cpu=_names(keep_on_cpu),
            min_region_sqnr=20.0 if fidelity_guard else None,
        )
        if samples is not None and samples.is_dir():
            options.samples_dir = str(samples)
        elif samples is not None:
            options.samples = _load_npz(samples, "--samples")
        with err.status("compiling and comparing…"):
            result = bisect_model(
                model,
                options=options,
                input_shapes=parse_input_shapes(input_shape),
                threshold_db=threshold,
                count=count,
            )
        data = result.as_json()
        if plot is not None:
            from akidac.report.bisect_plot import plot_bisect

            plot_bisect(data, plot)
        if as_json:
            out.print_json(json.dumps(data))
            return 0
        table = Table(title=f"SQNR against the float model, {data['samples']} sample(s)")
        for column in (
            "node",
            "layer",
            "on",
            "SQNR dB",
            "own dB",
            "worst ch dB",
            "bits",
            "clipped",
        ):
            table.add_column(
                column, justify="left" if column in ("node", "layer", "on") else "right"
            )
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
        out.print(table)
        out.print(f"samples: {escape(data['samples_note'])}")
        if data["first_divergent"] is None:
            out.print(f"no value falls below {threshold:g} dB")
        else:
            out.print(f"first value below {threshold:g} dB: {escape(data['first_divergent'])}")
            for line in data["suggestions"]:
                out.print(f"- {escape(line)}")
        return 0

    _guard(action)


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


def main() -> None:
    """Console-script entry point. Usage errors of the argument parser (a missing argument, an
    option without its value, an unknown option) are one line with a code, like every other
    error, rather than click's framed panel."""
    try:
        result = app(standalone_mode=False)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except typer.Abort:
        sys.exit(130)
    except BrokenPipeError:  # raised outside a command, e.g. while printing help
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(0)
    except Exception as error:
        # typer bundles its own click (typer._click, private): recognise its exceptions by
        # their public shape rather than importing it
        if not any(c.__name__ == "ClickException" for c in type(error).__mro__):
            raise
        context = getattr(error, "ctx", None)
        command = context.command_path if context is not None else "akidac"
        message = " ".join(error.format_message().split())  # type: ignore[attr-defined]
        if not message:  # `akidac` alone: the help was printed, nothing else to say
            sys.exit(error.exit_code)  # type: ignore[attr-defined]
        err.print(
            f"[bold red]error[/] AK-USAGE: {escape(message)} (see `{command} --help`)",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(error.exit_code)  # type: ignore[attr-defined]
    # without standalone mode, a command's typer.Exit comes back as its exit code
    sys.exit(result if isinstance(result, int) else 0)


if __name__ == "__main__":
    main()
