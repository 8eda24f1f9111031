"""Progress on long steps: `compile_model` tells a listener about every round, pass, guarded
region and fidelity step; the terminal display draws only on a terminal, after a second, and
never with --quiet; --time-passes accounts for the steps outside the passes."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import onnx
from models import realistic
from rich.console import Console

from akidac.api import COMPILE_STEPS, compile_model
from akidac.cli.progress import DELAY_S, TerminalProgress

REPO_ROOT = Path(__file__).resolve().parents[2]


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    def phase(self, description: str, total: int | None = None) -> None:
        self.events.append(("phase", (description, total)))

    def describe(self, description: str) -> None:
        self.events.append(("describe", description))

    def advance(self) -> None:
        self.events.append(("advance", None))


def test_a_compile_reports_its_rounds_passes_guard_and_fidelity_steps() -> None:
    recorder = Recorder()
    result = compile_model(realistic.conv_stack(), progress=recorder)
    phases = [value[0] for kind, value in recorder.events if kind == "phase"]  # type: ignore[index]
    assert phases[0] == "compile round 1: import"
    assert any(p.startswith("fidelity guard: 2 Akida region") for p in phases)
    assert phases[-2:] == [
        "building the hybrid model",
        "fidelity: 8 sample(s) through the float and the hybrid model",
    ]
    described = [value for kind, value in recorder.events if kind == "describe"]
    # the float model runs first and is released; only then is the hybrid loaded
    assert described[-2:] == [
        "fidelity: loading the hybrid model",
        "fidelity: 8 sample(s) through the hybrid model",
    ]
    assert "compile round 1: quantize (calibrating)" in described
    # every pass of the round advances the round's bar, every region the guard's
    first_round = recorder.events[: recorder.events.index(("phase", (phases[1], 2)))]
    assert sum(1 for kind, _ in first_round if kind == "advance") == 7
    assert list(result.steps) == list(COMPILE_STEPS)
    assert all(seconds >= 0 for seconds in result.steps.values())


def test_the_display_draws_only_on_a_terminal_after_the_delay_and_not_when_quiet() -> None:
    for terminal, quiet, drawn in ((True, False, True), (True, True, False), (False, False, False)):
        stream = io.StringIO()
        console = Console(file=stream, force_terminal=terminal, width=80)
        with TerminalProgress(console, quiet=quiet) as progress:
            progress.phase("fidelity guard: 3 Akida region(s)", 3)
            progress.advance()
            time.sleep(DELAY_S + 0.5)
        assert ("fidelity guard" in stream.getvalue()) is drawn, (terminal, quiet)
    stream = io.StringIO()
    with TerminalProgress(Console(file=stream, force_terminal=True), quiet=False) as progress:
        progress.phase("quick", None)
    assert stream.getvalue() == ""  # ended before the delay: nothing drawn


def test_time_passes_has_rows_for_calibration_guard_and_fidelity(tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    onnx.save(realistic.conv_stack(), model)
    env = dict(os.environ, NO_COLOR="1", COLUMNS="200")
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "akidac.cli",
            "compile",
            str(model),
            "-o",
            str(tmp_path / "h.onnx"),
            "--time-passes",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    for row in (*COMPILE_STEPS, "whole compile", "quantize"):
        assert f"│ {row}" in proc.stdout, row
    assert proc.stderr.count("━") == 0  # not a terminal: no progress drawn
