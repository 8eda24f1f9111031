"""Device presets, `custom:NODES`, the SRAM knob and the cost constants."""

from __future__ import annotations

import numbers

import pytest

from akidac.target import devices as dev
from akidac.target import limits as lim
from akidac.target.devices import parse_device, preset_devices


@pytest.mark.parametrize(
    ("spec", "nodes", "nps"),
    [("akida2-2n", 2, 8), ("akida2-4n", 4, 16), ("akida2-6n", 6, 24), ("akida2-12n", 12, 48)],
)
def test_each_preset_has_its_nodes_and_four_nps_per_node(spec: str, nodes: int, nps: int) -> None:
    device = parse_device(spec)
    assert (device.name, device.nodes, device.nps) == (spec, nodes, nps)
    assert device.sram_per_np_bytes == 64 * 1024
    assert device.weight_bytes_per_np == 51_200


def test_the_default_device_is_the_12_node_preset() -> None:
    assert parse_device(dev.DEFAULT_DEVICE).nps == 48


def test_device_names_are_read_without_case_or_surrounding_spaces() -> None:
    assert parse_device("  AKIDA2-4N ").name == "akida2-4n"


def test_a_custom_device_has_the_given_nodes_and_a_canonical_name() -> None:
    device = parse_device("custom:05")
    assert (device.name, device.nodes, device.nps) == ("custom:5", 5, 20)


def test_the_sram_knob_sets_the_input_sram_of_every_np() -> None:
    device = parse_device("akida2-6n", sram_kib=32)
    assert device.sram_per_np_bytes == 32 * 1024
    assert "32 KiB" in device.describe()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("akida3-4n", "unknown device 'akida3-4n'"),
        ("", "unknown device ''"),
        ("custom:", "positive whole number"),
        ("custom:0", "positive whole number"),
        ("custom:-2", "positive whole number"),
        ("custom:x", "positive whole number"),
    ],
)
def test_a_bad_device_spec_is_refused_with_a_sentence(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_device(spec)


@pytest.mark.parametrize("sram_kib", [0, -1, True, 1.5])
def test_a_bad_sram_size_is_refused(sram_kib: object) -> None:
    with pytest.raises(ValueError, match="--sram-kib"):
        parse_device("akida2-2n", sram_kib=sram_kib)  # type: ignore[arg-type]


def test_presets_are_listed_smallest_first() -> None:
    sizes = [d.nps for d in preset_devices()]
    assert sizes == sorted(sizes)


def test_the_description_names_the_device_its_nps_and_memories() -> None:
    assert parse_device("akida2-12n").describe() == (
        "akida2-12n: 12 nodes, 48 NPs, 64 KiB input SRAM and 51,200 B weights per NP"
    )


def test_every_cost_constant_exists_with_a_unit_and_a_source() -> None:
    for name, (unit, source) in dev.COST_CONSTANTS.items():
        assert isinstance(getattr(dev, name), numbers.Real)
        assert unit and source


def test_macs_per_np_per_cycle_is_derived_from_the_akida_e_figure() -> None:
    nps = dev.AKIDA_E_NODES * lim.NPS_PER_NODE
    derived = dev.AKIDA_E_PEAK_OPS_PER_S / dev.OPS_PER_MAC / nps / dev.CLOCK_HZ
    assert round(derived) == dev.MACS_PER_NP_PER_CYCLE
    assert parse_device("custom:4").peak_macs_per_s * dev.OPS_PER_MAC == pytest.approx(
        dev.AKIDA_E_PEAK_OPS_PER_S, rel=0.03
    )
