"""Load the Akida 2 integer test vectors (`tests/data/vectors/*.npz`) into layer records.

Each case is a tiny Akida model run by the vendor's engine: its layers become `LayerRecord`s
(parameters as Python ints or enum names, variables in the engine's dtypes), with the engine's
input, final output and per-layer outputs kept beside them for bit-exact comparison.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from akidac.target.layer_record import LayerRecord

VECTORS_DIR = Path(__file__).resolve().parents[2] / "data" / "vectors"


@dataclass
class VectorCase:
    """One engine case: its records in topological order, input and the engine's outputs."""

    name: str
    records: list[LayerRecord]
    input: np.ndarray
    output: np.ndarray
    layer_outputs: dict[str, np.ndarray]


def case_names() -> list[str]:
    """Names of every case in the vectors folder, sorted."""
    return sorted(path.stem for path in VECTORS_DIR.glob("*.npz"))


def _param_value(value: np.ndarray) -> int | str:
    """A stored parameter: integers as Python ints, enum names as str."""
    if value.dtype.kind in "US":
        return str(value)
    return int(value)


def load_case(name: str) -> VectorCase:
    """Read `<name>.npz` into records and the engine's outputs."""
    with np.load(VECTORS_DIR / f"{name}.npz", allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    records: list[LayerRecord] = []
    layer_outputs: dict[str, np.ndarray] = {}
    for layer in (str(layer) for layer in arrays["layers"]):
        prefix = f"{layer}."
        params: dict[str, int | str] = {}
        variables: dict[str, np.ndarray] = {}
        for key, value in arrays.items():
            if key.startswith(prefix + "param."):
                params[key[len(prefix + "param.") :]] = _param_value(value)
            elif key.startswith(prefix + "var."):
                variables[key[len(prefix + "var.") :]] = value
        records.append(
            LayerRecord(
                name=layer,
                layer_type=str(arrays[prefix + "type"]),
                inbounds=[str(inbound) for inbound in arrays[prefix + "inbounds"]],
                params=params,
                variables=variables,
                output_dims=tuple(int(d) for d in arrays[prefix + "output_dims"]),
            )
        )
        layer_outputs[layer] = arrays[prefix + "output"]
    return VectorCase(
        name=name,
        records=records,
        input=arrays["input"],
        output=arrays["output"],
        layer_outputs=layer_outputs,
    )
