"""`akidac compile --batch DIR_OR_LIST -o OUTDIR --jobs N`: one model's failure does not stop the
others, per-model outputs and summary.json, gates per model, outputs independent of --jobs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import onnx
from models import realistic

from akidac.models import chain_net

REPO_ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    env = dict(os.environ, NO_COLOR="1", COLUMNS="200")
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _akidac(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "akidac.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=600,
    )


def _folder(tmp_path: Path) -> Path:
    models = tmp_path / "models"
    models.mkdir()
    onnx.save(realistic.conv_stack(), models / "a.onnx")
    onnx.save(chain_net(4), models / "b.onnx")
    (models / "c.onnx").write_bytes(b"not an onnx model")
    (models / "notes.txt").write_text("ignored: not .onnx")
    return models


def test_a_broken_model_does_not_stop_the_batch_and_jobs_change_nothing(tmp_path: Path) -> None:
    models = _folder(tmp_path)
    one = _akidac("compile", "--batch", models, "-o", tmp_path / "one", "--fidelity-samples", 2)
    assert one.returncode == 8, one.stderr
    assert one.stderr.strip().splitlines()[-1] == "error AK-BATCH: 1 of 3 models failed: c (exit 3)"
    summary = json.loads((tmp_path / "one" / "summary.json").read_text())
    assert [(m["name"], m["exit_code"]) for m in summary["models"]] == [
        ("a", 0),
        ("b", 0),
        ("c", 3),
    ]
    assert (
        summary["models"][2]["code"] == "AK-MODEL-NOT-ONNX"
        and summary["models"][2]["hybrid"] is None
    )
    assert summary["exit_code"] == 8 and summary["compiled"] == 2 and summary["failed"] == 1
    for name in ("a", "b"):
        report = json.loads((tmp_path / "one" / f"{name}.report.json").read_text())
        assert report["stage"] == "compile"
        onnx.checker.check_model(onnx.load(tmp_path / "one" / f"{name}.hybrid.onnx"))
    two = _akidac(
        "compile", "--batch", models, "-o", tmp_path / "two", "--fidelity-samples", 2, "--jobs", 2
    )
    assert two.returncode == 8, two.stderr
    names = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "two").iterdir())
    for name in names:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), (
            name
        )


def test_gates_apply_per_model_and_a_list_file_names_the_models(tmp_path: Path) -> None:
    _folder(tmp_path)
    listing = tmp_path / "list.txt"
    listing.write_text("# the two good ones\nmodels/a.onnx\n\nmodels/b.onnx\n")
    proc = _akidac(
        "compile",
        "--batch",
        listing,
        "-o",
        tmp_path / "out",
        "--max-regions",
        3,
        "--fidelity-samples",
        2,
    )
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    by_name = {m["name"]: m for m in summary["models"]}
    assert by_name["a"]["regions"] == 2 and by_name["a"]["exit_code"] == 0
    assert by_name["b"]["regions"] > 3 and by_name["b"]["exit_code"] == 7
    assert "--max-regions" in by_name["b"]["reason"]
    assert (tmp_path / "out" / "b.hybrid.onnx").exists()  # a failed gate still writes
    assert proc.returncode == 7 and summary["exit_code"] == 7


def test_batch_usage_errors_are_one_line(tmp_path: Path) -> None:
    models = _folder(tmp_path)
    cases = [
        (
            ["compile", "--batch", models, "-o", tmp_path / "o", "--report-json", "r.json"],
            "--report-json",
        ),
        (["compile", models / "a.onnx", "--batch", models, "-o", tmp_path / "o"], "not both"),
        (["compile", "--batch", tmp_path / "missing", "-o", tmp_path / "o"], "neither a folder"),
        (["compile", "--batch", models, "-o", tmp_path / "o", "--jobs", 0], "--jobs"),
    ]
    for args, words in cases:
        proc = _akidac(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1 and words in proc.stderr, proc.stderr
