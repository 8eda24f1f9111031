"""Export TensorFlow models to ONNX with tf2onnx for bench/realworld.py. Runs in the SEPARATE
TensorFlow environment (default ~/.cache/akidac-realworld/venv-tf), never in akidac's venv:

    VENV-TF/bin/python bench/realworld_export_tf.py OUT_DIR SPEC.json

SPEC.json is a list of model objects from realworld.py's registry. Two kinds:

- "keras": a Keras application built with weights=None (no download; keras.utils.set_random_seed
  (0)), its BatchNorm statistics set to the cumulative average of a few training-mode passes on
  random inputs of the application's own input distribution (so eval-mode activations are not
  degenerate), then exported the way tf2onnx users export Keras models: a tf.function of the
  model with a (None, H, W, 3) float input, tf2onnx opset 17. The ONNX model keeps TensorFlow's
  NHWC input layout and the dynamic batch dimension that tf2onnx writes.
- "tflite": a trained TFLite model that a package of the environment ships (the mediapipe
  wheel's face, hand, pose and selfie models), converted by the tf2onnx command line,
  `python -m tf2onnx.convert --tflite FILE --output OUT --opset 17`, as a user would.

Every result is checked with onnx.checker. One line per model on stdout: `ok NAME: note` or
`fail NAME: why`.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
from realworld_export import export_all  # the script's folder is on sys.path

OPSET = 17
BN_BATCHES, BN_BATCH_SIZE = 6, 8

# BGR channel means that Keras' "caffe" preprocessing subtracts (ResNet50's input convention)
CAFFE_BGR_MEAN = np.array([103.939, 116.779, 123.68], np.float32)
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def keras_batch(dist: str, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform random RGB pixels (NHWC) brought to what the application's `preprocess_input`
    produces: realworld.py's `_sample` draws its calibration and held-out inputs the same way."""
    pixels = rng.random((n, size, size, 3), dtype=np.float32)
    if dist == "pm1":  # mode "tf": x / 127.5 - 1
        return 2.0 * pixels - 1.0
    if dist == "pixels255":  # preprocessing inside the model (MobileNetV3, EfficientNet)
        return 255.0 * pixels
    if dist == "caffe":  # mode "caffe": RGB -> BGR, minus the ImageNet means, 0..255 scale
        return 255.0 * pixels[..., ::-1] - CAFFE_BGR_MEAN
    if dist == "imagenet":  # mode "torch": x / 255, minus mean, over std
        return (pixels - IMAGENET_MEAN) / IMAGENET_STD
    raise ValueError(f"no Keras input distribution {dist!r}")


def set_batchnorm_statistics(keras, model, make_batch) -> int:
    """Reset every BatchNormalization's moving statistics to the cumulative average over a few
    training-mode passes: momentum (k-1)/k at pass k makes the moving value the mean of the
    batch statistics of passes 1..k (Keras: moving = moving * momentum + batch * (1 - momentum))."""
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in norms:
        layer.moving_mean.assign(np.zeros(layer.moving_mean.shape, np.float32))
        layer.moving_variance.assign(np.ones(layer.moving_variance.shape, np.float32))
    for k in range(1, BN_BATCHES + 1 if norms else 1):
        for layer in norms:
            layer.momentum = (k - 1) / k
        model(make_batch(BN_BATCH_SIZE), training=True)
    return len(norms)


def export_keras(spec: dict, out: Path) -> str:
    import keras
    import tensorflow as tf
    import tf2onnx

    keras.utils.set_random_seed(0)
    size = spec["size"]
    builder = getattr(keras.applications, spec["arch"])
    model = builder(input_shape=(size, size, 3), weights=None, **spec.get("kwargs", {}))
    rng = np.random.default_rng(0)
    norms = set_batchnorm_statistics(
        keras, model, lambda n: keras_batch(spec["dist"], n, size, rng)
    )
    signature = (tf.TensorSpec((None, size, size, 3), tf.float32, name="input"),)
    function = tf.function(lambda x: model(x, training=False))
    tmp = out.with_suffix(".tmp.onnx")
    tf2onnx.convert.from_function(
        function, input_signature=signature, opset=OPSET, output_path=str(tmp)
    )
    import onnx

    onnx.checker.check_model(str(tmp))
    tmp.replace(out)
    return f"{norms} BatchNorms calibrated, input (N, {size}, {size}, 3)"


def export_tflite(spec: dict, out: Path) -> str:
    found = importlib.util.find_spec(spec["package"])  # finds the files without importing
    if found is None or not found.submodule_search_locations:
        raise RuntimeError(f"package {spec['package']!r} is not installed")
    source = Path(next(iter(found.submodule_search_locations))) / spec["file"]
    if not source.exists():
        raise RuntimeError(f"{spec['package']} ships no {spec['file']}")
    tmp = out.with_suffix(".tmp.onnx")
    command = [sys.executable, "-m", "tf2onnx.convert", "--tflite", str(source)]
    command += ["--output", str(tmp), "--opset", str(OPSET)]
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        raise RuntimeError(f"tf2onnx exit {proc.returncode}: {lines[-1] if lines else ''}")
    import onnx

    onnx.checker.check_model(str(tmp))
    tmp.replace(out)
    return f"converted {source}"


EXPORTERS = {"keras": export_keras, "tflite": export_tflite}

if __name__ == "__main__":
    sys.exit(export_all(lambda spec, out: EXPORTERS[spec["kind"]](spec, out)))
