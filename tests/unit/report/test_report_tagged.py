"""The tagged model: the input model, each node carrying its target, region and reasons."""

from __future__ import annotations

from pathlib import Path

import onnx
import onnxruntime as ort
import pytest
from conftest import mixed_model

from akidac.api import analyze
from akidac.report.tagged import REASONS_KEY, REGION_KEY, TARGET_KEY, tag_model


def metadata(node: onnx.NodeProto) -> dict[str, str]:
    return {p.key: p.value for p in node.metadata_props}


def test_the_tagged_model_passes_the_checker_and_tags_every_node(tmp_path: Path) -> None:
    source = mixed_model()
    out = tmp_path / "tagged.onnx"
    report = analyze(source, tagged=out)
    tagged = onnx.load(out)
    onnx.checker.check_model(tagged, full_check=True)
    assert [n.name for n in tagged.graph.node] == [n.name for n in source.graph.node]
    assert list(tagged.graph.initializer) == list(source.graph.initializer)
    for node, entry in zip(tagged.graph.node, report["nodes"], strict=True):
        props = metadata(node)
        assert props[TARGET_KEY] == entry["target"]
        assert props[REGION_KEY] == ("" if entry["region"] is None else str(entry["region"]))
        for reason in entry["reasons"]:
            assert f"{reason['code']}: {reason['message']}" in props[REASONS_KEY]
    by_name = {n.name: metadata(n) for n in tagged.graph.node}
    assert by_name["mm"][TARGET_KEY] == "akida" and by_name["mm"][REGION_KEY] == "0"
    assert by_name["mm"][REASONS_KEY] == ""
    assert "AK-STRIDE: " in by_name["odd_conv"][REASONS_KEY]
    assert "AK-DILATION: " in by_name["odd_conv"][REASONS_KEY]
    assert by_name["ident"][TARGET_KEY] == "removed"
    assert [p.name for p in tmp_path.iterdir()] == ["tagged.onnx"]  # no temporary file left


def test_the_tagged_model_still_runs_and_is_tagged_afresh_each_time() -> None:
    source = mixed_model()
    report = analyze(source)
    twice = tag_model(tag_model(source, report), report)
    assert all(len(n.metadata_props) == 3 for n in twice.graph.node)
    assert not any(n.metadata_props for n in source.graph.node)  # the input is untouched
    ort.InferenceSession(twice.SerializeToString(), providers=["CPUExecutionProvider"])


def test_tagging_a_model_with_another_models_report_is_refused(conv_net_analysis) -> None:
    with pytest.raises(ValueError, match="does not describe"):
        tag_model(mixed_model(), conv_net_analysis)
