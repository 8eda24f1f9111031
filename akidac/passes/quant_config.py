"""Per-layer quantization overrides from a small TOML or JSON file.

```toml
wbits = 8            # optional defaults for every layer
abits = 8
[layers.conv1]       # keyed by ONNX node name
wbits = 4
abits = 4
```
or the same as JSON: `{"layers": {"conv1": {"wbits": 4, "abits": 4}}}`. An Akida layer takes the
entry of the first of its ONNX nodes (`origin`) that the file names; bits are 4 or 8. A malformed
file, or a name no node of the model has, is a `UsageError` (AK-USAGE-QUANT-CONFIG, exit 2).
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from akidac.errors import UsageError

ALLOWED_BITS = (4, 8)
_LAYER_KEYS = ("wbits", "abits")


@dataclass(frozen=True)
class LayerBits:
    """Bits requested for one layer; None keeps the compile-wide value."""

    wbits: int | None = None
    abits: int | None = None


@dataclass(frozen=True)
class QuantConfig:
    """Defaults and per-ONNX-node overrides of weight and activation bits."""

    wbits: int | None = None
    abits: int | None = None
    layers: dict[str, LayerBits] = field(default_factory=dict)
    source: str = ""

    def bits_for(self, origin: tuple[str, ...]) -> tuple[str | None, LayerBits]:
        """(matched node name or None, bits) of a layer made of the ONNX nodes `origin`."""
        for name in origin:
            if name in self.layers:
                entry = self.layers[name]
                return name, LayerBits(
                    entry.wbits if entry.wbits is not None else self.wbits,
                    entry.abits if entry.abits is not None else self.abits,
                )
        return None, LayerBits(self.wbits, self.abits)


def _bits(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value not in ALLOWED_BITS:
        raise UsageError(f"{where} must be 4 or 8, got {value!r}", code="AK-USAGE-QUANT-CONFIG")
    return value


def parse_quant_config(data: Any, source: str = "<config>") -> QuantConfig:
    """Check and convert the decoded file content; `UsageError` names what is wrong."""
    if not isinstance(data, dict):
        raise UsageError(
            f"{source}: the top level must be a table/object", code="AK-USAGE-QUANT-CONFIG"
        )
    unknown = sorted(set(data) - {"layers", *_LAYER_KEYS})
    if unknown:
        raise UsageError(
            f"{source}: unknown key(s) {', '.join(unknown)}; allowed: layers, wbits, abits",
            code="AK-USAGE-QUANT-CONFIG",
        )
    layers_data = data.get("layers", {})
    if not isinstance(layers_data, dict):
        raise UsageError(
            f"{source}: 'layers' must map ONNX node names to tables", code="AK-USAGE-QUANT-CONFIG"
        )
    layers: dict[str, LayerBits] = {}
    for name, entry in layers_data.items():
        if not isinstance(entry, dict):
            raise UsageError(
                f"{source}: layers.{name} must be a table with wbits/abits",
                code="AK-USAGE-QUANT-CONFIG",
            )
        extra = sorted(set(entry) - set(_LAYER_KEYS))
        if extra:
            raise UsageError(
                f"{source}: layers.{name} has unknown key(s) {', '.join(extra)}; "
                "allowed: wbits, abits",
                code="AK-USAGE-QUANT-CONFIG",
            )
        layers[str(name)] = LayerBits(
            _bits(entry.get("wbits"), f"{source}: layers.{name}.wbits"),
            _bits(entry.get("abits"), f"{source}: layers.{name}.abits"),
        )
    return QuantConfig(
        _bits(data.get("wbits"), f"{source}: wbits"),
        _bits(data.get("abits"), f"{source}: abits"),
        layers,
        source,
    )


def load_quant_config(path: str | os.PathLike[str]) -> QuantConfig:
    """Read a `.toml` or `.json` override file."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as error:
        raise UsageError(
            f"cannot read quantization config '{file}': {error.strerror or error}",
            code="AK-USAGE-QUANT-CONFIG",
        ) from None
    except UnicodeDecodeError as error:
        raise UsageError(
            f"quantization config '{file}' is not UTF-8 text "
            f"(byte 0x{error.object[error.start]:02x} at offset {error.start})",
            code="AK-USAGE-QUANT-CONFIG",
        ) from None
    try:
        if file.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            data = tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, RecursionError) as error:
        raise UsageError(
            f"quantization config '{file}' is not valid {file.suffix.lstrip('.').upper() or 'TOML'}"
            f": {error}",
            code="AK-USAGE-QUANT-CONFIG",
        ) from None
    return parse_quant_config(data, str(file))
