"""Help that reads as words: every option of every command has help text and a metavar (no
Python types such as <list[str]> or <bool>), and compile's options are grouped in panels."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from akidac.cli import app


def _commands() -> dict[str, object]:
    return typer.main.get_command(app).commands  # type: ignore[attr-defined,no-any-return]


def test_every_option_has_help_and_a_word_metavar() -> None:
    missing = []
    for name, command in _commands().items():
        for param in command.params:  # type: ignore[attr-defined]
            if param.param_type_name != "option" or "--help" in param.opts:
                continue
            if not (param.help or "").strip():
                missing.append(f"{name} {param.opts[0]}: no help")
            if param.metavar is None:
                missing.append(f"{name} {param.opts[0]}: no metavar (typer prints a type)")
    assert missing == []


def test_compile_help_groups_its_options_and_prints_no_python_types() -> None:
    result = CliRunner().invoke(app, ["compile", "--help"], env={"COLUMNS": "160"})
    assert result.exit_code == 0
    for panel in ("Model and inputs", "Quantization", "Fidelity", "Target", "Gates", "Outputs"):
        assert panel in result.output, panel
    for python_type in ("<list[str]>", "<str>", "<int>", "<float>"):
        assert python_type not in result.output
    assert "NAME=1x3x224x224" in result.output and "my-pass[threshold=0.5" in result.output
