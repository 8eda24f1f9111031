"""The `akidac` command line: argument handling and printing only; the work is in `akidac.api`.

Every `AkidacError` becomes one line on stderr and its documented exit code (see
docs/cli.md); anything else is a bug, reported with exit code 1 and a hint to file an issue.
The commands live in `commands` (and `compile_command`), the shared console, error guard and
entry point in `app`, the rich tables in `tables`. Nothing here imports the compiler but
`akidac.api` (and `akidac.errors`).
"""

from akidac.cli import commands, compile_command, diff_command  # noqa: F401  (registers them)
from akidac.cli.app import app, main

__all__ = ["app", "main"]
