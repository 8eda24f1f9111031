"""A progress display on stderr for the long steps of a command (compile rounds and passes,
calibration, the fidelity guard and measurement, a dataset run, a batch).

It implements `akidac.api.ProgressListener`. Nothing is drawn for a command that ends within
`DELAY_S` (most do), when stderr is not a terminal (CI logs, pipes), or with `--quiet`; the
display is transient, so it leaves no trace in the terminal once the command prints its results.
"""

from __future__ import annotations

import threading
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

#: seconds of work before the display appears.
DELAY_S = 1.0


class TerminalProgress:
    """`ProgressListener` drawing one line: spinner, phase, bar (when the phase counts its
    steps), steps done, time elapsed. Use as a context manager around the work."""

    def __init__(self, console: Console, *, quiet: bool = False) -> None:
        self.enabled = console.is_terminal and not quiet
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._task: TaskID | None = None
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._shown = False
        self._closed = False

    def __enter__(self) -> TerminalProgress:
        if self.enabled:
            self._timer = threading.Timer(DELAY_S, self._show)
            self._timer.daemon = True
            self._timer.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
            if self._shown:
                self._progress.stop()

    def _show(self) -> None:
        with self._lock:
            if not self._closed:
                self._progress.start()
                self._shown = True

    def phase(self, description: str, total: int | None = None) -> None:
        if not self.enabled:
            return
        if self._task is not None:  # a new task: rich cannot set a counted task back to None
            self._progress.remove_task(self._task)
        self._task = self._progress.add_task(description, total=total)

    def describe(self, description: str) -> None:
        if self.enabled and self._task is not None:
            self._progress.update(self._task, description=description)

    def advance(self) -> None:
        if self.enabled and self._task is not None:
            self._progress.advance(self._task)
