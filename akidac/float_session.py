"""The one way akidac opens the float model (or a piece of it) in onnxruntime.

Calibration (`passes.observation`) and the fidelity measure (`runtime.compare`) both run the
float model; they share this leaf so that both stay on one thread and both keep onnxruntime's
own log lines off stderr.
"""

from __future__ import annotations

import onnx
import onnxruntime as ort


def float_session(model: onnx.ModelProto | bytes) -> ort.InferenceSession:
    """An onnxruntime session on one thread that prints nothing of its own."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    # 4 = fatal only: at 3 onnxruntime still prints its ANSI-coloured error lines on stderr
    # (e.g. a failing node) before the exception that akidac turns into its one-line message
    options.log_severity_level = 4
    data = model if isinstance(model, bytes) else model.SerializeToString()
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
