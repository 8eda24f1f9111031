"""Properties of the estimator over random partitions: more NPs never cost time, no pass holds
more NPs than the device, and the same inputs give the same estimate."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from akidac.target.devices import Device
from akidac.target.estimate import RegionCost, estimate
from akidac.target.footprint import LayerFootprint

NP_TYPES = ("CNP", "CNP", "FNP3", "FNP2", "none")


@st.composite
def layers(draw: st.DrawFn) -> LayerFootprint:
    np_type = draw(st.sampled_from(NP_TYPES))
    nps = 0 if np_type == "none" else draw(st.integers(1, 12))
    return LayerFootprint(
        node_name="l",
        kind="conv2d",
        np_type=np_type,
        weight_bits=draw(st.integers(0, 400_000)),
        filters_per_np=1,
        filter_groups=max(nps, 1),
        column_strips=1,
        row_strips=1,
        rows_per_strip=1,
        nps=nps,
        input_bytes_per_np=0,
        macs=0 if np_type == "none" else draw(st.integers(0, 10_000_000)),
    )


regions_strategy = st.lists(
    st.tuples(
        st.lists(layers(), min_size=1, max_size=12),
        st.integers(0, 100_000),
        st.integers(0, 100_000),
    ),
    min_size=0,
    max_size=3,
).map(
    lambda parts: [
        RegionCost(i, [(f"l{k}", f) for k, f in enumerate(ls)], a, b)
        for i, (ls, a, b) in enumerate(parts)
    ]
)


@settings(max_examples=150, deadline=None)
@given(regions_strategy, st.integers(0, 10**8), st.integers(3, 30), st.integers(1, 30))
def test_more_nps_never_increase_the_latency_of_a_fixed_partition(
    regions: list[RegionCost], cpu_macs: int, nodes: int, more: int
) -> None:
    small = estimate(regions, cpu_macs, Device("s", nodes))
    large = estimate(regions, cpu_macs, Device("l", nodes + more))
    if small["fits"]:
        assert large["fits"]
        assert large["latency_ms"] <= small["latency_ms"]
        assert large["energy_uj"] <= small["energy_uj"]


@settings(max_examples=150, deadline=None)
@given(regions_strategy, st.integers(1, 20))
def test_no_pass_holds_more_nps_than_the_device(regions: list[RegionCost], nodes: int) -> None:
    device = Device("d", nodes)
    est = estimate(regions, 0, device)
    if not est["fits"]:
        return
    for region in est["regions"]:
        assert all(n <= device.nps for n in region["nps_per_pass"])
    per_pass: dict[tuple[int, int], int] = {}
    for layer in est["layers"]:
        key = (layer["region"], layer["pass"])
        per_pass[key] = per_pass.get(key, 0) + layer["nps"]
    assert all(n <= device.nps for n in per_pass.values())


@settings(max_examples=50, deadline=None)
@given(regions_strategy, st.integers(0, 10**8), st.integers(1, 20))
def test_estimates_are_deterministic(regions: list[RegionCost], cpu_macs: int, nodes: int) -> None:
    device = Device("d", nodes)
    assert estimate(regions, cpu_macs, device) == estimate(regions, cpu_macs, device)
