"""The generated docs match the registries they are generated from."""

from __future__ import annotations

from pathlib import Path

import pytest

from akidac.target.constraints import all_constraints
from akidac.target.docgen import GENERATED, main, render_reason_codes_md
from akidac.target.reason_codes import REASON_CODES

DOCS = Path(__file__).resolve().parents[3] / "docs"


@pytest.mark.parametrize("filename", sorted(GENERATED))
def test_the_docs_file_equals_the_generated_text(filename: str) -> None:
    assert (DOCS / filename).read_text(encoding="utf-8") == GENERATED[filename](), (
        f"docs/{filename} is stale: run python -m akidac.target.docgen"
    )


def test_every_reason_code_and_every_rule_appears_in_the_docs() -> None:
    text = render_reason_codes_md()
    for code in REASON_CODES:
        assert f"### {code}\n" in text
    for rule in all_constraints():
        for kind in rule.kinds:
            assert rule.rule(kind) in text


def test_check_mode_fails_on_stale_docs_and_passes_once_written(tmp_path: Path) -> None:
    assert main(["--check", "--docs-dir", str(tmp_path)]) == 1
    assert main(["--docs-dir", str(tmp_path)]) == 0
    assert main(["--check", "--docs-dir", str(tmp_path)]) == 0
    (tmp_path / "devices.md").write_text("edited by hand\n", encoding="utf-8")
    assert main(["--check", "--docs-dir", str(tmp_path)]) == 1
