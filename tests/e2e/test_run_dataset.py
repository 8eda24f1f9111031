"""`akidac run` over a dataset: an N-sample npz, whole-set fidelity, --save, NaN warnings
(issue "Hybrid runtime at the speed of its kernels", datasets; "Hostile inputs", item 12)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from models import realistic
from models.cli import cli_env

from akidac.api import compile_model
from akidac.passes import CompileOptions


def _compiled(tmp_path: Path) -> tuple[Path, Path, str]:
    model = realistic.conv_stack()
    float_path, hybrid_path = tmp_path / "float.onnx", tmp_path / "hybrid.onnx"
    onnx.save(model, float_path)
    compile_model(model, hybrid_path, options=CompileOptions(num_samples=8, fidelity_samples=0))
    return float_path, hybrid_path, model.graph.input[0].name


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "akidac.cli", "run", *args]
    return subprocess.run(command, capture_output=True, text=True, env=cli_env(), timeout=300)


def _run_set(tmp_path: Path, count: int, seed: int) -> tuple[Path, Path, Path, str, np.ndarray]:
    """`akidac run --input --compare --save` over `count` samples of a compiled model: checks
    the exit code and the whole-set figures; returns the float model, the hybrid, the npz,
    the input's name and the saved output."""
    float_path, hybrid_path, name = _compiled(tmp_path)
    x = np.random.default_rng(seed).standard_normal((count, 3, 16, 16)).astype(np.float32)
    data, saved = tmp_path / "set.npz", tmp_path / "out.npz"
    np.savez(data, **{name: x})
    proc = _run(
        str(hybrid_path), "--input", str(data), "--compare", str(float_path), "--save", str(saved)
    )
    assert proc.returncode == 0, proc.stderr
    assert f"over {count} samples" in proc.stdout and "SQNR" in proc.stdout
    assert "top-1" in proc.stdout
    (out,) = np.load(saved).values()
    assert out.shape[0] == count
    return float_path, hybrid_path, data, name, out


def test_run_over_an_npz_of_samples_saves_every_output_and_prints_whole_set_fidelity(
    tmp_path: Path,
) -> None:
    float_path, _, data, name, out = _run_set(tmp_path, 12, seed=0)
    x = np.load(data)[name]
    want = ort.InferenceSession(str(float_path)).run(None, {name: x[:1]})[0]
    assert out.shape == (12, *want.shape[1:])
    assert np.corrcoef(out[0], want[0])[0, 1] > 0.99


def test_a_256_sample_set_advances_the_progress_once_per_chunk_and_scores_the_whole_set(
    tmp_path: Path,
) -> None:
    """The issue's acceptance size: 256 samples through `akidac run` (whole-set figures, every
    output saved) and through the API that drives its progress bar (one advance per chunk; the
    bar itself is drawn on a terminal only, see test_cli_progress)."""
    from akidac import api

    float_path, hybrid_path, data, _, out = _run_set(tmp_path, 256, seed=1)
    session = api.open_hybrid(hybrid_path)
    feeds = api.read_feeds(session, [data])
    advances: list[None] = []
    result = api.run_hybrid(
        session, feeds, reference=float_path, on_chunk=lambda: advances.append(None)
    )
    assert len(advances) == api.chunk_count(session, feeds) > 0
    assert result.samples == 256 and result.figures is not None
    np.testing.assert_array_equal(next(iter(result.outputs.values())), out)


def test_inputs_with_nan_get_one_warning_and_no_python_warning(tmp_path: Path) -> None:
    float_path, hybrid_path, name = _compiled(tmp_path)
    x = np.random.default_rng(0).standard_normal((2, 3, 16, 16)).astype(np.float32)
    x[0, 0, 0, 0] = np.nan
    data = tmp_path / "nan.npz"
    np.savez(data, **{name: x})
    proc = _run(str(hybrid_path), "--input", str(data), "--compare", str(float_path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("AK-INPUT-NONFINITE") == 1
    assert "RuntimeWarning" not in proc.stderr


def test_an_array_for_no_model_input_is_a_usage_error(tmp_path: Path) -> None:
    _, hybrid_path, name = _compiled(tmp_path)
    data = tmp_path / "bad.npz"
    np.savez(data, **{name: np.zeros((3, 3, 16, 16), np.float32), "other": np.zeros((2, 4))})
    proc = _run(str(hybrid_path), "--input", str(data))
    assert proc.returncode == 2 and "unknown input 'other'" in proc.stderr


def test_samples_run_in_chunks_of_the_models_batch_and_counts_must_agree() -> None:
    from akidac.errors import UsageError
    from akidac.runtime.dataset import chunk_size, iter_chunks, sample_count

    class Info:
        def __init__(self, name: str, shape: list) -> None:
            self.name, self.shape = name, shape

    class TwoInputs:
        def get_inputs(self) -> list[Info]:
            return [Info("a", [2, 4]), Info("b", ["N", 3]), Info("rate", [])]

    session = TwoInputs()
    assert chunk_size(session) == 2
    feeds = {"a": np.zeros((6, 4)), "b": np.ones((6, 3)), "rate": np.array(16000)}
    assert sample_count(session, feeds) == 6
    chunks = list(iter_chunks(session, feeds, 2))
    assert [c["a"].shape for c in chunks] == [(2, 4)] * 3
    assert all(c["rate"].shape == () for c in chunks)
    try:
        sample_count(session, {"a": np.zeros((6, 4)), "b": np.ones((4, 3)), "rate": 1})
    except UsageError as error:
        assert "different numbers of samples" in str(error)
    else:
        raise AssertionError("different sample counts were accepted")
