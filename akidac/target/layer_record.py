"""The integer programming interface of one Akida layer, in the vendor's own vocabulary.

A `LayerRecord` is what a compiled Akida layer *is*: its type (akida `LayerType` name), its
integer parameters and its integer variables, named and typed exactly as BrainChip's engine
names them (`weights`, `input_shift`, `bias`, `bias_shift`, `max_value`, `max_value_shift`,
`activation_scales`, `activation_shift`, `lut_values`, `output_scales`, `output_shift`,
`padding_value`, `a_shift`, `b_shift`). The quantizer produces records, the program binary
stores them, and both the NumPy reference interpreter and the numba hardware model execute them,
so a compiled layer could be handed to the vendor's engine unchanged and the test vectors in
`tests/data/vectors/` load into records directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: akida `LayerType` names that a record may carry, in a fixed order (their index is the
#: type code of the program binary).
LAYER_TYPES: tuple[str, ...] = (
    "InputData",
    "InputConv2D",
    "Conv2D",
    "DepthwiseConv2D",
    "Conv2DTranspose",
    "DepthwiseConv2DTranspose",
    "Dense1D",
    "Add",
    "Concatenate",
)

#: the integer variables of a layer besides its `weights`, in the engine's names and order.
LAYER_VARIABLES: tuple[str, ...] = (
    "input_shift",
    "padding_value",
    "bias",
    "bias_shift",
    "max_value",
    "max_value_shift",
    "activation_scales",
    "activation_shift",
    "lut_values",
    "output_scales",
    "output_shift",
)
#: the integer variables of an Add: the shifts of its two inputs and of its output.
ADD_VARIABLES: tuple[str, ...] = ("a_shift", "b_shift", "output_shift")

#: enum-valued parameters and their allowed names (stored by name, as the vendor's engine does).
ENUM_PARAMS: dict[str, tuple[str, ...]] = {
    "activation": ("NoActivation", "ReLU", "LUT"),
    "pool_type": ("NoPooling", "Max", "Average"),
    "padding": ("Valid", "Same", "SameUpper"),
}


@dataclass
class LayerRecord:
    """One Akida layer: type, inbound layer names, integer parameters and variables.

    `params` holds integers and the enum names of `ENUM_PARAMS`; `variables` holds NumPy
    arrays in the engine's dtypes (weights int8, shifts uint8/int8, LUT int32, ...).
    `inbounds` is empty for the first layer of a program, which reads the program input.
    `output_dims` is `(H, W, C)` of the layer's output, without the batch axis.
    """

    name: str
    layer_type: str
    inbounds: list[str] = field(default_factory=list)
    params: dict[str, int | str] = field(default_factory=dict)
    variables: dict[str, np.ndarray] = field(default_factory=dict)
    output_dims: tuple[int, ...] = ()

    def param(self, key: str, default: int | str | None = None) -> int | str:
        """Return a parameter, or `default` when the record does not carry it."""
        if key in self.params:
            return self.params[key]
        if default is None:
            raise KeyError(f"layer {self.name!r} ({self.layer_type}) has no parameter {key!r}")
        return default
