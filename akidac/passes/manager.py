"""`PassManager`: runs passes in order with one between-passes hook for instruments.

Timing (`--time-passes`), verification (`--verify-each`) and IR dumps (`--dump-after`) are
instruments hanging off that hook. A pass that raises is reported as "pass X failed after
a, b, c" with the culprit op's ONNX origin when the error carries one.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from akidac.errors import AkidacError, InternalError, UsageError
from akidac.ir.graph import Graph
from akidac.ir.printer import print_graph
from akidac.ir.verifier import verify_graph
from akidac.passes.base import Pass, PassContext, PassResult
from akidac.passes.builtin import create_pass


class Instrument(Protocol):
    """Called after each pass with its index, the pass, its result and its duration."""

    def after_pass(self, index: int, pass_: Pass, result: PassResult, seconds: float) -> None: ...


@dataclass
class TimingInstrument:
    """Collects (pass name, seconds, changed) rows for `--time-passes`."""

    rows: list[tuple[str, float, bool]] = field(default_factory=list)

    def after_pass(self, index: int, pass_: Pass, result: PassResult, seconds: float) -> None:
        self.rows.append((pass_.name, seconds, result.changed))


@dataclass
class VerifyInstrument:
    """Runs the IR verifier after every pass (`--verify-each`); an error names that pass."""

    def after_pass(self, index: int, pass_: Pass, result: PassResult, seconds: float) -> None:
        verify_graph(result.graph, after_pass=pass_.name)


@dataclass
class DumpInstrument:
    """Writes `NN-passname.air` into `folder` after the named passes (or all).

    It refuses a folder that holds files other than earlier dumps, so it never wipes data.
    """

    folder: Path
    after: frozenset[str] | None = None
    elide_weights: bool = True
    written: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.folder = Path(self.folder)
        if self.folder.exists():
            if not self.folder.is_dir():
                raise UsageError(f"--dump-dir '{self.folder}' exists and is not a folder")
            others = [p for p in self.folder.iterdir() if p.suffix != ".air"]
            if others:
                raise UsageError(
                    f"--dump-dir '{self.folder}' holds other files "
                    f"({others[0].name}); choose an empty or new folder"
                )
            for old in self.folder.glob("*.air"):
                old.unlink()
        self.folder.mkdir(parents=True, exist_ok=True)

    def write(self, index: int, label: str, graph: Graph) -> None:
        path = self.folder / f"{index:02d}-{label}.air"
        path.write_text(print_graph(graph, elide_weights=self.elide_weights))
        self.written.append(path)

    def after_pass(self, index: int, pass_: Pass, result: PassResult, seconds: float) -> None:
        if self.after is None or pass_.name in self.after:
            self.write(index + 1, pass_.name, result.graph)


class PassManager:
    """Runs a list of passes (instances or registered names) over a graph."""

    def __init__(
        self,
        passes: Sequence[Pass | str],
        instruments: Sequence[Instrument] = (),
    ) -> None:
        self.passes: list[Pass] = [create_pass(p) if isinstance(p, str) else p for p in passes]
        for pass_ in self.passes:
            if not isinstance(pass_, Pass):
                raise UsageError(f"{pass_!r} is not a pass (it needs 'name' and 'run')")
        self.instruments = list(instruments)

    def run(self, graph: Graph, ctx: PassContext | None = None) -> PassResult:
        ctx = ctx if ctx is not None else PassContext()
        changed_any = False
        done: list[str] = []
        for index, pass_ in enumerate(self.passes):
            start = time.perf_counter()
            try:
                result = pass_.run(graph, ctx)
            except AkidacError as error:
                if isinstance(error, InternalError):
                    error.message = f"pass '{pass_.name}' failed{_after(done)}: {error.message}"
                raise
            except Exception as error:
                raise InternalError(
                    f"pass '{pass_.name}' failed{_after(done)}: {type(error).__name__}: {error}"
                ) from error
            seconds = time.perf_counter() - start
            if not isinstance(result, PassResult):
                raise InternalError(
                    f"pass '{pass_.name}' returned {type(result).__name__}, not PassResult"
                )
            for instrument in self.instruments:
                instrument.after_pass(index, pass_, result, seconds)
            graph = result.graph
            changed_any = changed_any or result.changed
            done.append(pass_.name)
        return PassResult(graph, changed_any)


def _after(done: list[str]) -> str:
    return f" after {', '.join(done)}" if done else " (first pass)"
