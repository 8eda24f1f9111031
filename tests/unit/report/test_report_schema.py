"""The JSON report: documented field for field, validated on real reports, deterministic."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from conftest import mixed_model

from akidac.api import CompileResult, analyze, compile_model
from akidac.models import conv_net
from akidac.passes import CompileOptions
from akidac.report.compat import REPORT_SCHEMA_VERSION
from akidac.report.schema import REPORT_SCHEMA, field_rows, main, render_schema_md, validate

DOC = Path(__file__).resolve().parents[3] / "docs" / "report-schema.md"


def as_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=True)


def test_the_schema_doc_equals_the_text_generated_from_the_schema() -> None:
    assert DOC.read_text(encoding="utf-8") == render_schema_md(), (
        "docs/report-schema.md is stale: run python -m akidac.report.schema"
    )


def test_the_doc_lists_every_field_path_and_embeds_the_schema_itself() -> None:
    text = DOC.read_text(encoding="utf-8")
    for path, _, _ in field_rows():
        assert f"| `{path}` |" in text
    embedded = text.split("```json\n", 1)[1].split("\n```", 1)[0]
    assert json.loads(embedded) == REPORT_SCHEMA
    assert "## Versioning policy" in text


def test_check_mode_fails_on_a_stale_doc_and_passes_once_written(tmp_path: Path) -> None:
    assert main(["--check", "--docs-dir", str(tmp_path)]) == 1
    assert main(["--docs-dir", str(tmp_path)]) == 0
    assert main(["--check", "--docs-dir", str(tmp_path)]) == 0


def test_real_reports_of_both_stages_validate_against_the_documented_schema(
    conv_net_analysis: dict[str, Any], conv_net_compiled: CompileResult
) -> None:
    reports = [conv_net_analysis, conv_net_compiled.report, analyze(mixed_model())]
    reports.append(compile_model(mixed_model()).report)
    for report in reports:
        # through JSON text, as a CI job reads it
        assert validate(json.loads(as_json(report))) == []
        assert report["schema_version"] == REPORT_SCHEMA_VERSION


def test_every_field_a_report_holds_is_documented_and_every_documented_field_appears(
    conv_net_compiled: CompileResult,
) -> None:
    def paths(data: Any, prefix: str = "") -> set[str]:
        found = set()
        if isinstance(data, dict):
            for key, value in data.items():
                found.add(f"{prefix}{key}")
                found |= paths(value, f"{prefix}{key}.")
        elif isinstance(data, list):
            for item in data:
                found |= paths(item, prefix[:-1] + "[].")
        return found

    report = conv_net_compiled.report
    documented = {path for path, _, _ in field_rows()}
    held = paths(report)
    assert held <= documented
    # only the optional fidelity block (measured when there are regions) and the estimate's
    # reason (only when the device is too small) may be absent
    assert all(path.startswith(("fidelity", "estimate.reason")) for path in documented - held)


def test_the_validator_catches_missing_undocumented_and_mistyped_fields(
    conv_net_analysis: dict[str, Any],
) -> None:
    report = copy.deepcopy(conv_net_analysis)
    del report["summary"]["macs_total"]
    report["nodes"][0]["extra"] = 1
    report["regions"][0]["nps"] = "many"
    report["nodes"][1]["target"] = "gpu"
    errors = validate(report)
    assert "$.summary: missing field 'macs_total'" in errors
    assert "$.nodes[0]: undocumented field 'extra'" in errors
    assert any(e.startswith("$.regions[0].nps: expected integer or null") for e in errors)
    assert any(e.startswith("$.nodes[1].target: 'gpu' is not one of") for e in errors)
    assert validate({**conv_net_analysis, "schema_version": True})  # a bool is no integer


def test_a_measured_fidelity_passes_through_and_validates() -> None:
    from akidac.ir.graph import Graph
    from akidac.report.compat import build_report
    from akidac.target.devices import parse_device

    fidelity = {
        "samples": 8,
        "note": "8 held-out samples",
        "outputs": [
            {
                "name": "y",
                "sqnr_db": 30.0,
                "constant_sqnr_db": 2.0,
                "pearson": 0.999,
                "top1_agreement": None,
                "cosine": 0.998,
                "max_abs_error": 0.01,
            }
        ],
    }
    report = build_report(
        Graph(), {"fidelity": fidelity}, [], parse_device("akida2-2n"), stage="compile"
    )
    assert report["fidelity"] == fidelity
    assert validate(report) == []


def test_the_same_model_gives_byte_identical_json() -> None:
    options = CompileOptions(num_samples=4)
    first = as_json(analyze(conv_net()))
    assert as_json(analyze(conv_net())) == first
    assert as_json(analyze(mixed_model())) == as_json(analyze(mixed_model()))
    compiled = as_json(compile_model(conv_net(), options=options).report)
    assert as_json(compile_model(conv_net(), options=options).report) == compiled
