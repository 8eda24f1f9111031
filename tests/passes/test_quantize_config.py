"""Per-layer bit overrides from a TOML or JSON file, keyed by ONNX node name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from models import conv_net

from akidac.api import compile_model
from akidac.errors import UsageError
from akidac.passes import CompileOptions
from akidac.passes.quant_config import LayerBits, load_quant_config, parse_quant_config


def _records(result) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    return {r.name: r.params for p in result.programs for r in p.layers}


def test_a_toml_file_sets_the_bits_of_the_layers_it_names(tmp_path: Path) -> None:
    config = tmp_path / "bits.toml"
    config.write_text("[layers.conv3]\nwbits = 4\nabits = 4\n[layers.fc1]\nwbits = 4\n")
    result = compile_model(
        conv_net(), options=CompileOptions(num_samples=4, quant_config=str(config))
    )
    params = _records(result)
    assert params["conv3"]["weights_bits"] == 4 and params["conv3"]["output_bits"] == 4
    assert params["conv4"]["weights_bits"] == 4  # it reads conv3's 4-bit activations
    assert params["conv1"]["weights_bits"] == 8 and params["conv2"]["output_bits"] == 8
    assert params["fc1"]["weights_bits"] == 4
    warnings = [d for d in result.diagnostics.items if d.code == "AK-BITS"]
    assert [d.node for d in warnings] == ["conv4"]


def test_a_json_file_with_defaults_applies_them_to_every_layer(tmp_path: Path) -> None:
    config = tmp_path / "bits.json"
    config.write_text(json.dumps({"wbits": 4, "layers": {"conv1": {"wbits": 8}}}))
    result = compile_model(
        conv_net(), options=CompileOptions(num_samples=4, quant_config=str(config))
    )
    params = _records(result)
    assert params["conv1"]["weights_bits"] == 8
    assert {params[n]["weights_bits"] for n in ("conv2", "conv3", "conv4", "fc1", "fc2")} == {4}


def test_a_config_naming_a_node_the_model_lacks_is_a_usage_error(tmp_path: Path) -> None:
    config = tmp_path / "bits.toml"
    config.write_text("[layers.conv9]\nwbits = 4\n")
    with pytest.raises(UsageError, match="conv9") as caught:
        compile_model(conv_net(), options=CompileOptions(num_samples=2, quant_config=str(config)))
    assert caught.value.code == "AK-USAGE-QUANT-CONFIG"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"layers": {"conv1": {"wbits": 3}}}, "must be 4 or 8"),
        ({"layers": {"conv1": {"bits": 4}}}, "unknown key"),
        ({"precision": 4}, "unknown key"),
        ({"layers": ["conv1"]}, "must map ONNX node names"),
    ],
)
def test_malformed_configs_are_usage_errors_that_say_what_is_wrong(
    data: object, message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        parse_quant_config(data, "bits.toml")


def test_a_layer_takes_the_entry_of_its_first_named_node_over_the_defaults(tmp_path: Path) -> None:
    config = tmp_path / "bits.toml"
    config.write_text("abits = 4\n[layers.relu1]\nabits = 8\n[layers.conv1]\nwbits = 4\n")
    loaded = load_quant_config(config)
    assert loaded.bits_for(("conv1", "relu1")) == ("conv1", LayerBits(4, 4))
    assert loaded.bits_for(("relu1",)) == ("relu1", LayerBits(None, 8))
    assert loaded.bits_for(("other",)) == (None, LayerBits(None, 4))
    (tmp_path / "bad.toml").write_text("layers = [")
    with pytest.raises(UsageError, match="not valid TOML"):
        load_quant_config(tmp_path / "bad.toml")


def test_a_config_file_that_is_not_utf8_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    config = tmp_path / "bits.toml"
    config.write_bytes(b"wbits = 4\n# \xff\xfe latin-1 comment \xe9\n")
    with pytest.raises(
        UsageError, match=r"bits.toml' is not UTF-8 text \(byte 0xff at offset 12\)"
    ):
        load_quant_config(config)
    try:
        load_quant_config(config)
    except UsageError as error:
        assert error.code == "AK-USAGE-QUANT-CONFIG" and error.exit_code == 2
