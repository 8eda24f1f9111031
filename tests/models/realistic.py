"""Small models built in code that reproduce what real exported models do and once broke
akidac: a log-mel front end, a pruned (near-zero) channel, a layer whose float output overflows,
an Identity before the graph output, -1 dims, a residual net with Adds before its outputs."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _model(nodes, inputs, outputs, initializers, opset: int = 17) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "realistic", inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def log_mel(frames: int = 32, n_fft: int = 64, hop: int = 16, mels: int = 16) -> onnx.ModelProto:
    """A keyword-spotting front end as exporters write it: a strided Conv with fixed DFT
    cos/sin kernels over the waveform (N, 1, 1, T), the power spectrum x² + y², a MatMul with a
    mel filterbank, and Log(x + 1e-6)."""
    samples = (frames - 1) * hop + n_fft
    bins = n_fft // 2 + 1
    t = np.arange(n_fft)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * t / n_fft)
    k = np.arange(bins)[:, None]
    cos = (np.cos(2 * np.pi * k * t / n_fft) * window).astype(np.float32)
    sin = (-np.sin(2 * np.pi * k * t / n_fft) * window).astype(np.float32)
    rng = np.random.default_rng(0)
    mel = np.abs(rng.normal(size=(bins, mels))).astype(np.float32) / bins
    inits = [
        numpy_helper.from_array(cos.reshape(bins, 1, 1, n_fft), "dft_real"),
        numpy_helper.from_array(sin.reshape(bins, 1, 1, n_fft), "dft_imag"),
        numpy_helper.from_array(mel, "mel_fb"),
        numpy_helper.from_array(np.array(1e-6, np.float32), "eps"),
        numpy_helper.from_array(np.array([0, 2, 1, 3], np.int64), "perm_unused"),
    ]
    nodes = [
        helper.make_node("Conv", ["audio", "dft_real"], ["re"], "stft_real", strides=[1, hop]),
        helper.make_node("Conv", ["audio", "dft_imag"], ["im"], "stft_imag", strides=[1, hop]),
        helper.make_node("Mul", ["re", "re"], ["re2"], "re_sq"),
        helper.make_node("Mul", ["im", "im"], ["im2"], "im_sq"),
        helper.make_node("Add", ["re2", "im2"], ["power"], "power"),
        helper.make_node("Transpose", ["power"], ["power_t"], "to_frames", perm=[0, 2, 3, 1]),
        helper.make_node("MatMul", ["power_t", "mel_fb"], ["mel"], "mel"),
        helper.make_node("Add", ["mel", "eps"], ["mel_eps"], "mel_eps"),
        helper.make_node("Log", ["mel_eps"], ["log_mel"], "log"),
    ]
    return _model(
        nodes,
        [helper.make_tensor_value_info("audio", TensorProto.FLOAT, [1, 1, 1, samples])],
        [helper.make_tensor_value_info("log_mel", TensorProto.FLOAT, [1, 1, frames, mels])],
        inits[:4],
    )


def conv_stack(
    channels: int = 8,
    *,
    dead_channel_scale: float | None = None,
    overflow_layer: bool = False,
    identity_before_output: bool = False,
    batch: int | str = 1,
) -> onnx.ModelProto:
    """conv-ReLU ×3 then GAP and a Gemm head. `dead_channel_scale` multiplies the weights of
    channel 0 of the second conv (1e-30: a pruned channel); `overflow_layer` gives the second
    conv weights so large that its float output overflows to inf (quantization has no range
    for it); `identity_before_output` ends the graph with an Identity, as many exporters do."""
    rng = np.random.default_rng(1)
    inits = []
    nodes = []
    x = "image"
    cin = 3
    for i in range(3):
        w = rng.normal(scale=1 / np.sqrt(cin * 9), size=(channels, cin, 3, 3)).astype(np.float32)
        if i == 1 and dead_channel_scale is not None:
            w[0] *= np.float32(dead_channel_scale)
        if i == 1 and overflow_layer:
            w[:] = np.float32(3e38)
        b = rng.normal(scale=0.1, size=channels).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        nodes.append(
            helper.make_node("Conv", [x, f"w{i}", f"b{i}"], [f"c{i}"], f"conv{i}", pads=[1] * 4)
        )
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"], f"relu{i}"))
        x = f"r{i}"
        cin = channels
    fc = rng.normal(scale=1 / np.sqrt(channels), size=(channels, 5)).astype(np.float32)
    inits += [
        numpy_helper.from_array(fc, "fc_w"),
        numpy_helper.from_array(np.zeros(5, np.float32), "fc_b"),
    ]
    nodes += [
        helper.make_node("GlobalAveragePool", [x], ["gap"], "gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], "flatten"),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], "fc"),
    ]
    out = "logits"
    if identity_before_output:
        nodes.append(helper.make_node("Identity", ["logits"], ["output"], "output_identity"))
        out = "output"
    return _model(
        nodes,
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [batch, 3, 16, 16])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, [batch, 5])],
        inits,
    )
