"""The MAC rate of this machine's CPU on a model, measured with onnxruntime (`--measure-cpu`).

The estimator prices CPU parts at a host MAC rate; an assumed class by default. Measuring runs
the whole float model in onnxruntime on random inputs (one thread, so the figure is one core's
like the assumed class) and divides its MACs by the median time: the rate this machine reaches
on this model's own operators. The figure is a plain number: the caller (`akidac.api`) makes it
the estimator's `HostRate`, so running onnxruntime here needs nothing of the target.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import onnx

#: how the estimate names a host whose rate `measure_host_rate` measured.
MEASURED_HOST = "this machine, onnxruntime, one thread (measured)"

_NUMPY_OF_ORT = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(uint8)": np.uint8,
    "tensor(int8)": np.int8,
    "tensor(bool)": np.bool_,
}


def measure_host_rate(
    model: onnx.ModelProto,
    macs: int,
    input_shapes: dict[str, tuple[int, ...]] | None = None,
    runs: int = 7,
) -> float | None:
    """MACs per second of this machine on `model` (None when it has no MACs to time by)."""
    import onnxruntime as ort

    if macs <= 0:
        return None
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    rng = np.random.default_rng(0)
    feeds: dict[str, np.ndarray] = {}
    for arg in session.get_inputs():
        given = (input_shapes or {}).get(arg.name)
        shape = given or tuple(d if isinstance(d, int) and d > 0 else 1 for d in arg.shape)
        dtype = _NUMPY_OF_ORT.get(arg.type, np.float32)
        feeds[arg.name] = rng.random(shape).astype(dtype)
    session.run(None, feeds)  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, feeds)
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    return macs / seconds
