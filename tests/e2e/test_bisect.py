"""`akidac bisect`: where accuracy is lost, layer by layer (issue "Where accuracy is lost")."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from models import realistic
from models.cli import cli_env
from onnx import TensorProto, helper, numpy_helper

from akidac import CompileOptions, bisect_model


def outlier_chain(outlier: float = 1e4) -> onnx.ModelProto:
    """conv0…conv3 with ReLUs; conv1's output channel 0 is `outlier`× the others and conv2
    reads it with weights `1/outlier`: in float every channel counts alike, but conv1's small
    channels keep a code or two (per-channel scales give a small channel at most 256× the
    tensor's resolution, and 10^4× is beyond that)."""
    rng = np.random.default_rng(5)
    c = 8
    weights = [
        rng.normal(scale=1 / np.sqrt(27), size=(c, 3, 3, 3)),
        rng.normal(scale=1 / np.sqrt(c * 9), size=(c, c, 3, 3)),
        rng.normal(scale=1 / np.sqrt(c * 9), size=(c, c, 3, 3)),
        rng.normal(scale=1 / np.sqrt(c * 9), size=(c, c, 3, 3)),
    ]
    weights[1][0] *= outlier
    weights[2][:, 0] /= outlier
    inits = [numpy_helper.from_array(w.astype(np.float32), f"w{i}") for i, w in enumerate(weights)]
    nodes, x = [], "x"
    for i in range(4):
        nodes.append(helper.make_node("Conv", [x, f"w{i}"], [f"c{i}"], f"conv{i}", pads=[1] * 4))
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"], f"relu{i}"))
        x = f"r{i}"
    graph = helper.make_graph(
        nodes,
        "outlier_chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, c, 16, 16])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_bisect_names_the_layer_with_an_outlier_channel_first() -> None:
    # both guards off: they would move the drifting layers to the CPU before bisect sees them
    options = CompileOptions(num_samples=16, min_region_sqnr=None, min_output_sqnr=None)
    result = bisect_model(outlier_chain(), options=options)
    by_layer = {f.layer: f for f in result.layers}
    assert result.first_divergent == "relu1"  # conv1 + its ReLU: the value the error starts at
    assert by_layer["conv1"].channel_sqnr_db < 20.0 <= by_layer["conv1"].sqnr_db
    assert by_layer["conv2"].sqnr_db < 20.0  # where the energy-weighted SQNR falls
    assert by_layer["conv0"].worst_db >= 20.0
    assert any("conv1" in line and "--keep-on-cpu conv1" in line for line in result.suggestions)
    # without the outlier nothing diverges: the figure is the model's, not the method's
    clean = bisect_model(outlier_chain(outlier=1.0), options=options)
    assert clean.first_divergent is None


def test_bisect_walks_akida_and_cpu_values_in_topological_order() -> None:
    result = bisect_model(realistic.conv_stack(), options=CompileOptions(num_samples=8))
    data = result.as_json()
    assert data["schema_version"] == 1 and data["threshold_db"] == 20.0
    names = [layer["name"] for layer in data["layers"]]
    order = [n.name for n in realistic.conv_stack().graph.node]
    assert names == sorted(names, key=order.index)
    targets = {layer["name"]: layer["target"] for layer in data["layers"]}
    assert targets["relu0"] == "akida" and targets["gap"] == "cpu"
    akida = [layer for layer in data["layers"] if layer["target"] == "akida"]
    assert all(layer["own_sqnr_db"] is not None for layer in akida)
    # the first layer reads the float input itself: accumulated and own figures coincide
    assert akida[0]["sqnr_db"] == pytest.approx(akida[0]["own_sqnr_db"])
    # later layers accumulate: never better than what they add on their own, by much
    assert all(layer["sqnr_db"] <= layer["own_sqnr_db"] + 3.0 for layer in akida[1:])
    cpu = [layer for layer in data["layers"] if layer["target"] == "cpu"]
    assert all(layer["own_sqnr_db"] is None and layer["bits"] is None for layer in cpu)


def test_a_4_bit_layer_is_named_with_a_quant_config_line_that_keeps_it_at_8_bits(
    tmp_path: Path,
) -> None:
    config = tmp_path / "bits.toml"
    config.write_text("[layers.conv1]\nwbits = 4\nabits = 4\n")
    options = CompileOptions(num_samples=8, quant_config=str(config), min_region_sqnr=None)
    result = bisect_model(realistic.conv_stack(), options=options, threshold_db=25.0)
    by_layer = {f.layer: f for f in result.layers}
    assert by_layer["conv1"].bits == 4 and by_layer["conv0"].bits == 8
    assert by_layer["conv1"].own_sqnr_db < by_layer["conv0"].own_sqnr_db
    assert result.first_divergent == "relu1"
    assert any("wbits = 8, abits = 8" in line for line in result.suggestions)


def test_the_cli_prints_json_and_draws_the_plot(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    model = tmp_path / "outlier.onnx"
    onnx.save(outlier_chain(), model)
    picture = tmp_path / "bisect.png"
    command = [sys.executable, "-m", "akidac.cli", "bisect", str(model), "--json"]
    command += ["--plot", str(picture), "--no-fidelity-guard"]
    proc = subprocess.run(command, capture_output=True, text=True, env=cli_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["first_divergent"] == "relu1"
    assert [layer["target"] for layer in data["layers"]] == ["akida"] * 4
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    human = subprocess.run(
        [*command[:-4], "--no-fidelity-guard"],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=300,
    )
    assert human.returncode == 0, human.stderr
    assert "first value below 20 dB: relu1" in human.stdout


def test_target_sqnr_raises_the_layers_that_lose_most_and_its_bits_reproduce_the_figure(
    tmp_path: Path,
) -> None:
    from models.zoo import ZOO

    from akidac import compile_model, compile_to_target

    model = ZOO["resnet_like"][0]()
    options = CompileOptions(wbits=4, abits=4)
    result, choice = compile_to_target(model, target_sqnr=25.0, options=options)
    assert choice.steps[0].sqnr_db < 25.0 <= choice.steps[-1].sqnr_db and choice.reached
    bits = list(choice.layers.values())
    assert any(b.get("wbits") == 8 for b in bits)  # some layers raised …
    assert any(min(b.values()) == 4 for b in bits)  # … not all: the point of mixed precision
    config = tmp_path / "bits.toml"
    config.write_text(choice.toml())
    again = compile_model(model, options=CompileOptions(wbits=4, abits=4, quant_config=str(config)))
    figure = again.analyses["fidelity"]["outputs"][0]["sqnr_db"]
    assert figure == pytest.approx(result.analyses["fidelity"]["outputs"][0]["sqnr_db"])


def test_write_quant_config_without_target_sqnr_is_a_usage_error(tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    onnx.save(realistic.conv_stack(), model)
    command = [sys.executable, "-m", "akidac.cli", "compile", str(model), "-o"]
    command += [str(tmp_path / "h.onnx"), "--write-quant-config", str(tmp_path / "b.toml")]
    proc = subprocess.run(command, capture_output=True, text=True, env=cli_env(), timeout=300)
    assert proc.returncode == 2
    assert "--target-sqnr" in proc.stderr
    assert not (tmp_path / "h.onnx").exists()
