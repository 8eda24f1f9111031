"""Automatic mixed precision: raise the bits of the layers that lose most until the output
reaches a target SQNR (`akidac compile --target-sqnr DB`).

At 4 bits most models lose more than users accept, while keeping every layer at 8 bits gives
up what 4 bits buy (half the weight memory, faster layers). The search compiles the model,
measures every output's SQNR against the float model (the compile's own fidelity figures), and
while the worst output is below the target asks `akidac bisect`'s measurement which layers add
most error on their own: the worst quarter of the layers still below 8 bits (at least one),
and the last Akida layer when its own SQNR is about the output's (its error reaches the output
undiluted), go to 8 bits — weights and activations, and the activations of the layers feeding
them, since a layer's weight bits never exceed its input bits — and the model is compiled
again. It stops at
the target, when every layer is at 8 bits, or after `MAX_STEPS` compiles. The per-layer bits
it chose are a `--quant-config` file (`QuantChoice.toml()`), so the result can be reproduced
with a plain compile.
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import onnx

from akidac.passes.base import CompileOptions
from akidac.passes.quant_config import load_quant_config

#: compiles at most, the first included.
MAX_STEPS = 8
#: the last Akida layer is raised at once when its own SQNR is within this of the output's.
BOTTLENECK_DB = 1.0
#: samples the fidelity figures are measured on when the options ask for fewer.
MIN_FIDELITY_SAMPLES = 4


@dataclass
class PrecisionStep:
    """One compile of the search: the worst output SQNR and the layers still below 8 bits."""

    sqnr_db: float
    low_bit_layers: int
    raised: list[str] = field(default_factory=list)


@dataclass
class QuantChoice:
    """The search's result: per-layer bits by ONNX node name, the steps, and the last compile."""

    target_db: float
    layers: dict[str, dict[str, int]]
    steps: list[PrecisionStep]
    result: Any = None  # the CompileResult of the last step

    @property
    def reached(self) -> bool:
        return bool(self.steps) and self.steps[-1].sqnr_db >= self.target_db

    def toml(self) -> str:
        """The chosen bits as a `--quant-config` TOML file."""
        lines = [f"# akidac --target-sqnr {self.target_db:g}: bits chosen per layer"]
        for name in sorted(self.layers):
            lines.append(f"[layers.{json.dumps(name)}]")
            lines += [f"{key} = {value}" for key, value in sorted(self.layers[name].items())]
        return "\n".join(lines) + "\n"


def _worst_output_sqnr(result: Any) -> float:
    outputs = (result.analyses.get("fidelity") or {}).get("outputs") or []
    figures = [o["sqnr_db"] for o in outputs if o.get("sqnr_db") is not None]
    return min(figures) if figures else math.inf


def _starting_bits(options: CompileOptions) -> dict[str, dict[str, int]]:
    """The user's own --quant-config entries, which the search starts from."""
    if not options.quant_config:
        return {}
    config = load_quant_config(options.quant_config)
    return {
        name: {k: v for k, v in (("wbits", bits.wbits), ("abits", bits.abits)) if v is not None}
        for name, bits in config.layers.items()
    }


def _layer_bits(result: Any) -> dict[str, tuple[int, int, Any]]:
    """Anchor node name → (wbits, abits, op) of every quantized Akida layer (a merge has no
    weights: its wbits count as 8)."""
    layers = {}
    for region in result.analyses.get("regions", []):
        for op in region.ops:
            if "abits" not in op.attrs or op.annotations.get("inserted"):
                continue
            wbits = op.int_attr("wbits", 8)
            layers[op.display_name] = (wbits, op.int_attr("abits"), op)
    return layers


def _feeding(op: Any) -> list[str]:
    """The Akida layers whose outputs `op` reads (an inserted identity layer goes by the name
    of the merge it follows, which a config entry reaches too)."""
    names = []
    for value in op.inputs[:2]:
        producer = value.producer if value is not None else None
        if producer is not None and "abits" in producer.attrs and producer.origin:
            names.append(producer.display_name)
    return names


def search_precision(
    proto: onnx.ModelProto,
    options: CompileOptions,
    target_db: float,
    compile_once: Any,
) -> QuantChoice:
    """Run the search; `compile_once(options)` compiles `proto` and returns a CompileResult."""
    from akidac.bisect import bisect_hybrid
    from akidac.frontend.samples import fidelity_feeds

    options = replace(options, fidelity_samples=max(options.fidelity_samples, MIN_FIDELITY_SAMPLES))
    chosen = _starting_bits(options)
    steps: list[PrecisionStep] = []
    with tempfile.TemporaryDirectory(prefix="akidac-precision-") as folder:
        config = Path(folder) / "bits.json"
        result = None
        for _ in range(MAX_STEPS):
            config.write_text(json.dumps({"layers": chosen}), encoding="utf-8")
            step_options = replace(options, quant_config=str(config) if chosen else None)
            result = compile_once(step_options)
            sqnr = _worst_output_sqnr(result)
            bits = _layer_bits(result)
            low = {name: entry for name, entry in bits.items() if min(entry[:2]) < 8}
            steps.append(PrecisionStep(sqnr, len(low)))
            if sqnr >= target_db or not low:
                break
            feeds, _ = fidelity_feeds(result.graph, step_options, MIN_FIDELITY_SAMPLES)
            figures = bisect_hybrid(
                proto,
                result.model,
                result.analyses.get("regions", []),
                list(result.programs),
                feeds,
                target_db,
            )
            own = {f.layer: f.own_sqnr_db for f in figures.layers if f.layer is not None}
            ranked = sorted(low, key=lambda name: (own.get(name) is None, own.get(name) or 0.0))
            # the worst quarter by own SQNR, and the last Akida layer when alone it is about as
            # bad as the output (its error reaches the output undiluted: a classifier head)
            picked = ranked[: max(1, len(ranked) // 4)]
            akida = [f.layer for f in figures.layers if f.target == "akida" and f.layer]
            last = akida[-1] if akida else None
            if (
                last in low
                and last not in picked
                and (own.get(last) or math.inf) <= sqnr + BOTTLENECK_DB
            ):
                picked.append(last)
            for name in picked:
                op = bits[name][2]
                chosen[name] = {"wbits": 8, "abits": 8} if "wbits" in op.attrs else {"abits": 8}
                for producer in _feeding(op):  # input bits bound weight bits
                    chosen.setdefault(producer, {})["abits"] = 8
            steps[-1].raised = picked
    final = {
        name: {"wbits": wbits, "abits": abits} if "wbits" in op.attrs else {"abits": abits}
        for name, (wbits, abits, op) in _layer_bits(result).items()
    }
    return QuantChoice(target_db, final, steps, result)
