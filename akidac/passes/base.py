"""The pass protocol, its result, the per-compile context and the pass registry.

A pass is a small frozen dataclass: a kebab-case `name`, its options as fields, a docstring
that states what the pass guarantees afterwards, and `run(graph, ctx) -> PassResult`. Passes
are registered by name with `@register_pass` (`akidac.passes.registry`, re-exported here for
pass modules and plugins); options, diagnostics and lineage live in the `PassContext` of one
compile, never in global state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TypeAlias, runtime_checkable

import numpy as np

from akidac.ir.diagnostics import DiagnosticSink
from akidac.ir.graph import Graph
from akidac.passes.registry import one_line_doc, register_pass

__all__ = [
    "PASS_API_VERSION",
    "CalibrationSamples",
    "CalibrationSource",
    "CompileOptions",
    "Pass",
    "PassContext",
    "PassResult",
    "one_line_doc",
    "register_pass",
]

#: version of the Python pass API (bumped when `Pass`, `PassResult` or `PassContext` change).
PASS_API_VERSION = 2


@dataclass(frozen=True)
class PassResult:
    """What a pass returns: the graph (usually the same object) and whether it changed."""

    graph: Graph
    changed: bool


@dataclass
class CompileOptions:
    """Options of one compile; the CLI flags map one to one onto these fields."""

    device: str = "akida2-12n"
    sram_kib: int | None = None
    wbits: int = 8
    abits: int = 8
    samples: dict[str, np.ndarray] | None = None
    num_samples: int = 32
    seed: int = 0
    #: activation observer: "auto" (percentile at 8 bits, mse at 4), "percentile" (of |x|),
    #: "minmax" or "mse" (see passes/calibration.py).
    calibration: str = "auto"
    percentile: float = 99.99
    #: weight observer: "auto" (minmax at 8 bits, mse at 4), "minmax" (max |w| per channel) or
    #: "mse" (searched clip per channel).
    weight_observer: str = "auto"
    #: a folder of calibration images (NPY/NPZ; PNG, PGM/PPM, JPEG with Pillow), used when
    #: `samples` is None; resized to the input's H × W and normalised by these, in [0, 1] units.
    samples_dir: str | None = None
    sample_mean: tuple[float, ...] | None = None
    sample_std: tuple[float, ...] | None = None
    #: per-layer bit overrides: a TOML or JSON file (see passes/quant_config).
    quant_config: str | None = None
    #: held-out samples the fidelity figure is measured on.
    fidelity_samples: int = 8
    #: ONNX node names the user keeps on the CPU (`--keep-on-cpu`; reason AK-USER-CPU).
    keep_on_cpu: tuple[str, ...] = ()
    #: the fidelity guard: an Akida region whose own quantized output scores below this SQNR (dB)
    #: against the float model on the calibration samples moves to the CPU
    #: (`--min-region-sqnr`, AK-REGION-FIDELITY); None turns the guard off.
    min_region_sqnr: float | None = 20.0
    #: the guard's threshold for a region with a 4-bit layer (never above `min_region_sqnr`):
    #: 4-bit activations measure 8–22 dB on their own on the project's zoo.
    min_region_sqnr_4bit: float = 6.0
    #: the output guard (`akidac.output_guard`): while a model output scores below this SQNR (dB)
    #: against the float model on the calibration samples, Akida regions upstream of it move to
    #: the CPU (`--min-output-sqnr`, AK-OUTPUT-GUARD); None turns it off. Applied at 8 bits only.
    min_output_sqnr: float | None = 20.0
    #: refuse (exit 5) a program that does not fit the device in one hardware pass, instead of
    #: running it in several passes (`--strict-device`).
    strict_device: bool = False
    #: filled by the compile driver (`akidac.api.compile_model`), not by users: ONNX node name →
    #: (reason code, sentence) of nodes an earlier round sent to the CPU (quantization could not
    #: express them, or the fidelity guard rejected their region).
    cpu_overrides: dict[str, tuple[str, str]] = field(default_factory=dict)


class CalibrationSamples(Protocol):
    """The samples `quantize` calibrates on: one feed per sample (graph input name → array of
    the input's shape), whether they are random inputs (quantize then warns
    AK-CALIBRATION-RANDOM) and where they came from (for the report).

    Loading them (user arrays, image folders, seeded random inputs) is the frontend's job
    (`akidac.frontend.samples.SampleSet` is one); passes only read them.
    """

    @property
    def feeds(self) -> list[dict[str, np.ndarray]]: ...

    @property
    def random(self) -> bool: ...

    @property
    def source(self) -> str: ...


#: `PassContext.calibration`: the samples, or a function of the graph that loads them when
#: `quantize` asks, from the graph as quantize sees it (the compile driver's: a model without
#: Akida regions loads nothing).
CalibrationSource: TypeAlias = CalibrationSamples | Callable[[Graph], CalibrationSamples]


@dataclass
class PassContext:
    """Per-compile state shared by passes: options, diagnostics, analysis results, and the
    calibration samples the driver loaded for `quantize`."""

    options: CompileOptions = field(default_factory=CompileOptions)
    sink: DiagnosticSink = field(default_factory=DiagnosticSink)
    #: results one pass leaves for a later one or for the report (e.g. 'regions').
    analyses: dict[str, Any] = field(default_factory=dict)
    #: what `quantize` calibrates on; without it quantize refuses (a `UsageError`). The compile
    #: driver sets it from the options' samples (`akidac.api.pass_context`).
    calibration: CalibrationSource | None = None


@runtime_checkable
class Pass(Protocol):
    """The protocol every pass follows (see docs/passes.md)."""

    name: ClassVar[str]

    def run(self, graph: Graph, ctx: PassContext) -> PassResult: ...
