"""The typer app, its two consoles, the error guard every command runs in, and `main`.

Every `AkidacError` becomes one line on stderr and its documented exit code (docs/cli.md);
anything else is a bug, reported with exit code 1 and a hint to file an issue. A closed stdout
(`akidac report m.onnx | head -1`) is exit 0, as for any Unix filter.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, overload

import typer
from rich.console import Console
from rich.markup import escape

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


def guard(action: Callable[[], int | None]) -> None:
    """Run a command's `action`: its return value is the exit code; an `AkidacError` is one
    line and its code, a closed stdout exit 0, Ctrl-C 130, anything else a bug (exit 1)."""
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


def note_kernel_compilation() -> None:
    """Say so when this process compiled hardware-model kernels (a first run, ~1–2 s each)."""
    from akidac import api

    compiled = api.kernels_compiled()
    if compiled:
        err.print(
            f"note: compiled {compiled} hardware-model kernel(s) on this first run; later runs "
            "load them from the cache"
        )


@overload
def check_output_path(
    text: str | os.PathLike[str], what: str, *, model: Path | None = None
) -> Path: ...
@overload
def check_output_path(
    text: str | os.PathLike[str] | None, what: str, *, model: Path | None = None
) -> Path | None: ...
def check_output_path(
    text: str | os.PathLike[str] | None, what: str, *, model: Path | None = None
) -> Path | None:
    """The output file an option names, refused before any work when it ends with '/' (a
    folder), is a folder, lies in a missing or read-only folder, is not a regular file, or is
    the input `model` itself (it would be overwritten)."""
    if text is None:
        return None
    if str(text).endswith(("/", os.sep)):
        raise UsageError(f"{what} '{text}' ends with '/': give a file name, not a folder")
    path = Path(text)
    if path.is_dir():
        raise UsageError(f"{what} '{path}' is a folder; give a file name")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise UsageError(f"{what} '{path}': folder '{folder}' does not exist")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"{what} '{path}': folder '{folder}' is not writable")
    if path.exists() and not path.is_file():
        raise UsageError(f"{what} '{path}' exists and is not a regular file (a device or FIFO)")
    if model is not None and path.exists() and model.exists() and path.samefile(model):
        raise UsageError(f"{what} '{path}' is the input model: it would be overwritten")
    return path


def check_distinct(first: tuple[Path | None, str], second: tuple[Path | None, str]) -> None:
    """Two outputs of one command must be different files (one would overwrite the other)."""
    (a, a_what), (b, b_what) = first, second
    if a is not None and b is not None and a.resolve() == b.resolve():
        raise UsageError(f"{a_what} and {b_what} are the same file '{a}': give two names")


def floats(text: str | None, what: str) -> tuple[float, ...] | None:
    """`0.5,0.5,0.5` → (0.5, 0.5, 0.5); None → None; anything else a `UsageError`."""
    if text is None:
        return None
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"{what} takes comma-separated numbers, not {text!r}") from None


def names(text: str | None) -> tuple[str, ...]:
    """`a,b` → ('a', 'b'); None → ()."""
    return tuple(name.strip() for name in (text or "").split(",") if name.strip())


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
