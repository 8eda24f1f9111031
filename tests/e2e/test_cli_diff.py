"""`akidac diff OLD NEW`: what changed between two reports, exit 7 on a regression beyond the
thresholds, exit 2 on reports of different schema versions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from models import realistic

from akidac.api import compile_model, diff_reports, write_json_atomically
from akidac.errors import UsageError
from akidac.passes import CompileOptions

REPO_ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    env = dict(os.environ, NO_COLOR="1", COLUMNS="200")
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The same model compiled twice: as is, and with its last conv kept on the CPU at 4 bits."""
    folder = tmp_path_factory.mktemp("diff")
    model = realistic.conv_stack()
    base = compile_model(model).report
    worse = compile_model(
        model, options=CompileOptions(wbits=4, keep_on_cpu=("conv2",), fidelity_samples=8)
    ).report
    old, new = folder / "old.json", folder / "new.json"
    write_json_atomically(base, old)
    write_json_atomically(worse, new)
    return old, new


def _run(*args: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "akidac.cli", "diff", *map(str, args)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )


def test_a_report_against_itself_has_no_change(reports: tuple[Path, Path]) -> None:
    old, _ = reports
    result = diff_reports(old, old)
    assert result.regressions == [] and result.moved_nodes == [] and result.provenance == []
    assert all(row["old"] == row["new"] for row in result.figures)
    proc = _run(old, old)
    assert proc.returncode == 0, proc.stderr
    assert "no regression beyond the thresholds" in proc.stdout


def test_coverage_and_fidelity_regressions_exit_7_naming_each(reports: tuple[Path, Path]) -> None:
    old, new = reports
    result = diff_reports(old, new)
    joined = "; ".join(result.regressions)
    assert "Akida share of macs fell" in joined and "SQNR fell" in joined
    assert [n["name"] for n in result.moved_nodes][:1] == ["conv2"]
    assert (
        result.moved_nodes[0]["old"] == "akida"
        and "AK-USER-CPU" in result.moved_nodes[0]["reasons"]
    )
    changed = {row["field"] for row in result.provenance}
    assert {"option wbits", "option keep_on_cpu"} <= changed
    proc = _run(old, new)
    assert proc.returncode == 7
    assert proc.stderr.startswith("error AK-GATE") and len(proc.stderr.splitlines()) == 1
    assert "node 'conv2' moved from akida to cpu" in proc.stdout
    # thresholds wide enough let the same change pass
    proc = _run(old, new, "--max-share-drop", 100, "--max-sqnr-drop", 100)
    assert proc.returncode == 0, proc.stderr


def test_the_json_form_lists_figures_and_regressions(reports: tuple[Path, Path]) -> None:
    old, new = reports
    proc = _run(old, new, "--json")
    data = json.loads(proc.stdout)
    assert data["schema_version"] == 1 and data["regressions"]
    shares = {row["what"]: row for row in data["figures"]}["share of macs on Akida"]
    assert shares["old"] == 100.0 and shares["new"] < 100.0 and shares["regression"]


def test_a_latency_rise_beyond_the_threshold_is_a_regression(
    reports: tuple[Path, Path], tmp_path: Path
) -> None:
    old, _ = reports
    data = json.loads(old.read_text())
    data["estimate"]["latency_ms"] *= 1.10
    slower = tmp_path / "slower.json"
    slower.write_text(json.dumps(data))
    assert any("latency rose" in r for r in diff_reports(old, slower).regressions)
    assert diff_reports(old, slower, max_latency_rise=20).regressions == []


def test_reports_of_different_schema_versions_are_refused(
    reports: tuple[Path, Path], tmp_path: Path
) -> None:
    old, _ = reports
    data = json.loads(old.read_text())
    data["schema_version"] = 2
    older = tmp_path / "older.json"
    older.write_text(json.dumps(data))
    with pytest.raises(UsageError, match="schema 2 report"):
        diff_reports(older, old)
    proc = _run(older, old)
    assert proc.returncode == 2 and "regenerate the older one" in proc.stderr
    (tmp_path / "bad.json").write_text("{not json")
    proc = _run(tmp_path / "bad.json", old)
    assert proc.returncode == 2 and "not readable JSON" in proc.stderr
