"""Compatibility of the model zoo: every conv AKIDA.md allows is on Akida, the rest has reasons."""

from __future__ import annotations

import pytest
from models.zoo import ZOO

from akidac.api import analyze


@pytest.fixture(scope="module")
def reports() -> dict[str, dict]:
    return {name: analyze(build()) for name, (build, _) in ZOO.items()}


@pytest.mark.parametrize("name", sorted(ZOO))
def test_each_zoo_model_puts_the_expected_op_types_on_akida(name: str, reports) -> None:
    expectation = ZOO[name][1]
    nodes = reports[name]["nodes"]
    for node in nodes:
        if node["op_type"] in expectation.on_akida:
            assert node["target"] == "akida", (node["name"], node["reasons"])
        if node["op_type"] in expectation.on_cpu:
            assert node["target"] == "cpu", node["name"]
    summary = reports[name]["summary"]
    assert summary["nodes_on_akida"] / summary["nodes_total"] >= expectation.min_akida_share


@pytest.mark.parametrize("name", sorted(ZOO))
def test_every_node_left_on_the_cpu_says_why_with_a_documented_code(name: str, reports) -> None:
    from akidac.target.reason_codes import REASON_CODES

    for node in reports[name]["nodes"]:
        if node["target"] == "cpu":
            assert node["reasons"], node["name"]
            for reason in node["reasons"]:
                assert reason["code"] in REASON_CODES
                assert node["name"] in reason["message"] or reason["code"].startswith("AK-REGION")


def test_the_three_block_conv_net_keeps_at_least_80_percent_of_its_nodes_on_akida(
    reports,
) -> None:
    summary = reports["conv_net"]["summary"]
    assert summary["nodes_on_akida"] / summary["nodes_total"] >= 0.8


def test_an_mlp_within_dense_limits_runs_entirely_on_akida(reports) -> None:
    summary = reports["mlp"]["summary"]
    assert summary["nodes_on_akida"] == summary["nodes_total"] == 5


def test_the_transformer_block_stays_on_the_cpu_with_reasons(reports) -> None:
    nodes = reports["transformer_block"]["nodes"]
    assert all(node["target"] == "cpu" for node in nodes)
    codes = {reason["code"] for node in nodes for reason in node["reasons"]}
    assert {"AK-OP-UNSUPPORTED", "AK-NOT-CONSTANT"} <= codes
