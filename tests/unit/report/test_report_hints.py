"""Hints that point at the cause: an op that would fuse into a layer running on the CPU names
that layer and its reason; the human report lists the nodes not on Akida by MACs, with them."""

from __future__ import annotations

import io

from models import realistic
from rich.console import Console

from akidac.api import analyze, make_options, print_report


def _report(**options: object) -> dict:
    return analyze(realistic.conv_stack(), options=make_options(**options))


def _reasons(report: dict, name: str) -> list[dict]:
    return next(node["reasons"] for node in report["nodes"] if node["name"] == name)


def test_an_activation_after_a_cpu_conv_names_the_conv_and_its_reason() -> None:
    report = _report(keep_on_cpu=("conv2",))
    (relu,) = _reasons(report, "relu2")
    assert relu["message"] == (
        "Relu 'relu2' would fuse into Conv 'conv2', but 'conv2' runs on the CPU "
        "(AK-USER-CPU: 'conv2' is kept on the CPU by --keep-on-cpu)"
    )
    assert relu["hint"].startswith("make 'conv2' run on Akida and 'relu2' fuses into it")
    assert "place it right after" not in relu["hint"]
    (gap,) = _reasons(report, "gap")
    assert "would fuse into Conv 'conv2' (through relu2)" in gap["message"]


def test_with_the_conv_on_akida_the_activation_fuses() -> None:
    report = _report()
    assert {n["name"]: n["target"] for n in report["nodes"]}["relu2"] == "akida"


def test_the_human_report_lists_cpu_nodes_by_macs_with_their_macs() -> None:
    report = _report(keep_on_cpu=("conv1", "conv2"))
    stream = io.StringIO()
    print_report(Console(file=stream, width=300, color_system=None), report)
    text = stream.getvalue()
    section = text[text.index("nodes not on Akida") :]
    listed = [line.split(" (")[0].strip() for line in section.splitlines()[1:] if ": cpu" in line]
    macs = {n["name"]: n["macs"] for n in report["nodes"]}
    assert listed == sorted(listed, key=lambda name: -macs[name])
    assert listed[:2] == ["conv1", "conv2"] and macs["conv1"] > 0
    assert f"conv1 (Conv): cpu, {macs['conv1']:,} MACs" in section
