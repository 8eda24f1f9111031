"""Running the real `akidac` CLI in a subprocess and checking how it fails: the documented exit
code (docs/cli.md, `akidac.errors.EXIT_CODES`), one line on stderr without a traceback, and no
output file or `.tmp` leftover after a failed command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def cli_env() -> dict[str, str]:
    """The environment of a CLI subprocess: this checkout's akidac first, no colours, wide
    enough that rich does not wrap one-line messages."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + (
        os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""
    )
    env["COLUMNS"] = "200"
    env["NO_COLOR"] = "1"
    return env


def akidac(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run `python -m akidac.cli ARGS` and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "akidac.cli", *map(str, args)],
        cwd=cwd,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def compile_cli(model: Path, out: Path, *extra: str | Path) -> subprocess.CompletedProcess[str]:
    """`akidac compile MODEL -o OUT EXTRA…`, run in the output's folder."""
    return akidac("compile", model, "-o", out, *extra, cwd=out.parent)


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int, *names: str) -> str:
    """The exit code is `code`; stderr is one line naming every one of `names`."""
    stderr = result.stderr.strip()
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    assert stderr, "an error must say something on stderr"
    assert len(stderr.splitlines()) == 1, stderr
    for name in names:
        assert name in stderr, (name, stderr)
    return stderr


def assert_no_output(out: Path) -> None:
    """A failed compile leaves no output file and no temporary file beside it."""
    assert not out.exists(), f"{out} was written by a failed compile"
    leftovers = [p.name for p in out.parent.iterdir() if p.name.endswith(".tmp")]
    assert not leftovers, leftovers
