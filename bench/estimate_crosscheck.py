"""The estimator against the only per-model hardware figures BrainChip publishes: a table.

BrainChip's user guide (its "Command-line interface for model evaluation" section, akida 2.x
documentation) prints `akida run` on a real AKD1000 board for two pretrained models, with the
NPs of every layer and the hardware clock counter:

| model | NPs | inference clocks per frame | frames/s | board mW (floor) | mJ/frame |
| --- | --- | --- | --- | --- | --- |
| DS-CNN KWS, 49×10×1 | 65 | 93,965 | 62.5 (1 frame) | - (914) | - |
| AkidaNet α=0.5, 224×224×3 | 68 | 4,300,064 | 43.48 | 1021 (912) | 23.48 |

This script builds both networks in ONNX exactly as those summaries list them (layer by
layer: kernel, stride, filters, the global pooling fused into the last separable layer), with
random weights (cost does not depend on weight values), maps them with `akidac.api
.estimate_device` on a device with as many NPs as the board used (`custom:17`, 68 NPs) and
prints the estimate beside the published figures, with the ratios.

Read the ratios knowing what differs: AKD1000 is an Akida 1 part (event-based NPs, 4-bit
activations, a clock AKIDA.md does not give) while akidac's constants describe Akida 2 from its
published peak rate; the board's figures include its floor power and the host's PCIe/USB
transfers. The comparison says how far akidac's Akida-2 peak-derived figures are from one
generation of measured silicon, not that either is wrong.

    python bench/estimate_crosscheck.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from akidac.api import estimate_device
from akidac.passes import CompileOptions
from akidac.target import devices

DEVICE = "custom:17"  # 68 NPs, as many as the AKD1000 mappings above used

#: the published figures (see the module docstring): clocks per frame, frames/s, mJ per frame
#: above the board's floor power (None when not printed).
PUBLISHED = {
    "ds_cnn_kws": {"nps": 65, "clocks": 93_965, "fps": 62.5, "dynamic_mj": None},
    "akidanet_0.5_224": {
        "nps": 68,
        "clocks": 43_000_636 / 10,
        "fps": 43.48,
        # (1021 mW average - 912.23 mW floor) over one frame at 43.48 frames/s
        "dynamic_mj": (1021.0 - 912.23) / 43.48,
    },
}


class Builder:
    """A small NCHW ONNX graph builder: conv (+BN folded away: plain bias) + ReLU chains."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def _name(self, kind: str) -> str:
        self.count += 1
        return f"{kind}_{self.count}"

    def conv(
        self, x: str, cin: int, cout: int, k: int, stride: int = 1, group: int = 1, relu=True
    ) -> str:
        name = self._name("conv")
        fan_in = cin // group * k * k
        w = self.rng.normal(0, np.sqrt(2 / fan_in), (cout, cin // group, k, k))
        self.inits += [
            numpy_helper.from_array(w.astype(np.float32), f"{name}_w"),
            numpy_helper.from_array(np.zeros(cout, np.float32), f"{name}_b"),
        ]
        pad = k // 2
        self.nodes.append(
            helper.make_node(
                "Conv",
                [x, f"{name}_w", f"{name}_b"],
                [name],
                name=name,
                kernel_shape=[k, k],
                strides=[stride, stride],
                pads=[pad, pad, pad, pad],
                group=group,
            )
        )
        if not relu:
            return name
        self.nodes.append(helper.make_node("Relu", [name], [f"{name}_relu"], name=f"{name}_r"))
        return f"{name}_relu"

    def separable(self, x: str, cin: int, cout: int, stride: int = 1) -> str:
        depthwise = self.conv(x, cin, cin, 3, stride, group=cin, relu=False)
        return self.conv(depthwise, cin, cout, 1)

    def pool(self, x: str, kind: str, **attrs: object) -> str:
        name = self._name(kind.lower())
        self.nodes.append(helper.make_node(kind, [x], [name], name=name, **attrs))
        return name

    def dense(self, x: str, cin: int, cout: int) -> str:
        flat = self._name("flatten")
        self.nodes.append(helper.make_node("Flatten", [x], [flat], name=flat))
        name = self._name("dense")
        w = self.rng.normal(0, np.sqrt(1 / cin), (cin, cout)).astype(np.float32)
        self.inits += [
            numpy_helper.from_array(w, f"{name}_w"),
            numpy_helper.from_array(np.zeros(cout, np.float32), f"{name}_b"),
        ]
        self.nodes.append(
            helper.make_node("Gemm", [flat, f"{name}_w", f"{name}_b"], [name], name=name)
        )
        return name

    def model(self, shape: list[int], out: str, classes: int) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes,
            "crosscheck",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
            [helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, classes])],
            self.inits,
        )
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def ds_cnn_kws() -> onnx.ModelProto:
    """DS-CNN as listed: 5×5/2 input conv to 64 maps of 25×5, four separable 3×3 64→64 (the last
    one followed by global average pooling), a 33-way dense layer."""
    b = Builder(0)
    x = b.conv("input", 1, 64, 5, stride=2)
    for _ in range(4):
        x = b.separable(x, 64, 64)
    x = b.pool(x, "GlobalAveragePool")
    return b.model([1, 1, 49, 10], b.dense(x, 64, 33), 33)


def akidanet_05_224() -> onnx.ModelProto:
    """AkidaNet α=0.5 as listed: input conv 3×3/2 to 16; conv 3×3 16→32; conv 3×3/2 32→64 (the
    summary's stride-2 by its 56×56 output); conv 3×3 64→64; separable 64→128/2, 128→128,
    128→256/2, five 256→256, 256→512/2, 512→512 with global average pooling; dense 512→1000."""
    b = Builder(1)
    x = b.conv("input", 3, 16, 3, stride=2)
    x = b.conv(x, 16, 32, 3)
    x = b.conv(x, 32, 64, 3, stride=2)
    x = b.conv(x, 64, 64, 3)
    x = b.separable(x, 64, 128, stride=2)
    x = b.separable(x, 128, 128)
    x = b.separable(x, 128, 256, stride=2)
    for _ in range(5):
        x = b.separable(x, 256, 256)
    x = b.separable(x, 256, 512, stride=2)
    x = b.separable(x, 512, 512)
    x = b.pool(x, "GlobalAveragePool")
    return b.model([1, 3, 224, 224], b.dense(x, 512, 1000), 1000)


def measure(name: str, model: onnx.ModelProto) -> list[str]:
    data = estimate_device(model, options=CompileOptions(device=DEVICE))
    est = data["estimate"]
    published = PUBLISHED[name]
    cycles = sum(layer["cycles"] or 0 for layer in data["layers"])
    nps = sum(layer["nps"] for layer in data["layers"])
    macs = est["macs_on_akida"]
    fps = est["inferences_per_s"] or 0.0
    akida_mj = macs * devices.AKIDA_PJ_PER_MAC / 1e9
    dynamic = published["dynamic_mj"]
    return [
        name,
        f"{macs / 1e6:.1f}",
        f"{nps} / {published['nps']}",
        f"{cycles:,} / {published['clocks']:,.0f}",
        f"{published['clocks'] / max(cycles, 1):.1f}×",
        f"{macs / published['clocks']:.1f}",
        f"{fps:,.0f} / {published['fps']}",
        f"{akida_mj:.3f} / {dynamic:.2f}" if dynamic else f"{akida_mj:.3f} / -",
        f"{dynamic / akida_mj:.0f}×" if dynamic else "-",
    ]


def main() -> int:
    header = [
        "model",
        "MMACs on Akida",
        "NPs est / published",
        "cycles est / published",
        "published ÷ est",
        "published MACs per clock",
        "frames/s est / published",
        "mJ est (Akida MACs) / published above floor",
        "published ÷ est",
    ]
    rows = [measure("ds_cnn_kws", ds_cnn_kws()), measure("akidanet_0.5_224", akidanet_05_224())]
    print(
        f"device {DEVICE}; constants: {devices.MACS_PER_NP_PER_CYCLE} MACs/NP/cycle, "
        f"{devices.CLOCK_HZ / 1e6:.0f} MHz, {devices.AKIDA_PJ_PER_MAC} pJ/MAC"
    )
    print("| " + " | ".join(header) + " |")
    print("|" + " --- |" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
