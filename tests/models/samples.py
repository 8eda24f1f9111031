"""Representative inputs for any model of the zoo: smooth random maps, one distribution.

Calibration and held-out sets are drawn from the same distribution with different seeds, so a
fidelity figure measures quantization error on unseen data of the kind the model was calibrated
on.
"""

from __future__ import annotations

import numpy as np
import onnx


def input_shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    """Static input shapes (a symbolic batch becomes 1)."""
    initializers = {t.name for t in model.graph.initializer}
    shapes = {}
    for value in model.graph.input:
        if value.name in initializers:
            continue
        dims = [
            d.dim_value if d.HasField("dim_value") else 1 for d in value.type.tensor_type.shape.dim
        ]
        shapes[value.name] = tuple(dims)
    return shapes


def _blur(row: np.ndarray) -> np.ndarray:
    return np.convolve(row, np.ones(3, np.float32) / 3, "same")


def smooth_samples(model: onnx.ModelProto, count: int, seed: int) -> dict[str, np.ndarray]:
    """`count` samples per input (batch axis first): blurred noise along the last two axes."""
    rng = np.random.default_rng(seed)
    samples = {}
    for name, shape in input_shapes(model).items():
        noise = rng.standard_normal((count, *shape[1:])).astype(np.float32)
        for axis in range(max(1, noise.ndim - 2), noise.ndim):
            if noise.shape[axis] >= 3:
                noise = np.apply_along_axis(_blur, axis, noise)
        samples[name] = (noise * 1.5).astype(np.float32)
    return samples
