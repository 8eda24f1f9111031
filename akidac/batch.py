"""Batch compile: many models, one process pool, one summary (`akidac compile --batch`).

The models are the `*.onnx` files of a folder (sorted by name) or the lines of a list file
(paths relative to the list's folder; blank lines and `#` comments skipped). Each compiles on
its own (`akidac.api.compile_batch_job`, in a worker process when `jobs` > 1) into
`OUTDIR/NAME.hybrid.onnx` and `OUTDIR/NAME.report.json`; one model's failure is recorded with
its exit code and reason and does not stop the others; gates apply per model. Entries come
back in the models' order and hold no timing, so `summary.json` is byte-identical whatever
`jobs` is. This module holds the batch's data and pool; the compile itself is the API's.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from akidac.errors import AkidacError, UsageError

#: version of `summary.json` (documented in docs/cli.md).
BATCH_SCHEMA_VERSION = 1
HYBRID_SUFFIX = ".hybrid.onnx"
REPORT_SUFFIX = ".report.json"


@dataclass(frozen=True)
class BatchJob:
    """One model of a batch and everything its compile needs (picklable for a worker)."""

    model: str
    name: str
    outdir: str
    options: Any
    input_shapes: dict[str, tuple[int, ...]]
    gates: Any
    verify_each: bool = True


@dataclass(frozen=True)
class BatchEntry:
    """What became of one model: its exit code (0, or the documented code of its error), the
    reason code and sentence of a failure, the files written, and its headline figures."""

    model: str
    name: str
    exit_code: int
    code: str | None
    reason: str | None
    hybrid: str | None
    report: str | None
    akida_share_macs: float | None
    regions: int | None
    worst_sqnr_db: float | None


def find_models(source: str | os.PathLike[str]) -> list[Path]:
    """The models of `--batch`: a folder's `*.onnx` files by name, or a list file's lines."""
    source = Path(source)
    if source.is_dir():
        models = sorted(p for p in source.glob("*.onnx") if p.is_file())
        if not models:
            raise UsageError(f"--batch folder '{source}' holds no .onnx file")
        return models
    if not source.is_file():
        raise UsageError(f"--batch '{source}' is neither a folder nor a list file")
    try:
        lines = source.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"--batch list '{source}' is not readable text ({error})") from None
    models = [
        source.parent / line.strip()
        for line in lines
        if line.strip() and not line.strip().startswith("#")
    ]
    if not models:
        raise UsageError(f"--batch list '{source}' names no model")
    return models


def batch_names(models: Sequence[Path]) -> list[str]:
    """Each model's output name (its file stem); two models of one name are a `UsageError`."""
    seen: dict[str, Path] = {}
    for model in models:
        if model.stem in seen:
            raise UsageError(
                f"--batch: '{seen[model.stem]}' and '{model}' would both write "
                f"'{model.stem}{HYBRID_SUFFIX}'; rename one"
            )
        seen[model.stem] = model
    return list(seen)


def _figures(report: dict[str, Any]) -> dict[str, Any]:
    outputs = (report.get("fidelity") or {}).get("outputs") or []
    sqnrs = [o["sqnr_db"] for o in outputs if o.get("sqnr_db") is not None]
    return {
        "akida_share_macs": round(float(report["shares"]["macs"]["akida"]), 6),
        "regions": int(report["summary"]["regions"]),
        "worst_sqnr_db": min(sqnrs) if sqnrs else None,
    }


def batch_entry(
    job: BatchJob, written: bool, report: dict[str, Any] | None, error: BaseException | None
) -> BatchEntry:
    """The entry of one model from what its compile gave: the outputs `written` or not, its
    `report`, and the error that stopped it or failed its gates (an `AkidacError`: its exit
    code and message; anything else a bug, exit 1, as on the command line)."""
    figures: dict[str, Any] = {"akida_share_macs": None, "regions": None, "worst_sqnr_db": None}
    if report is not None:
        figures = _figures(report)
    if error is None:
        exit_code, code, reason = 0, None, None
    elif isinstance(error, AkidacError):
        exit_code, code, reason = error.exit_code, error.code, error.message
    else:
        exit_code, code = 1, "AK-INTERNAL"
        reason = f"{type(error).__name__}: {' '.join(str(error).split())} — this is a bug in akidac"
    return BatchEntry(
        model=job.model,
        name=job.name,
        exit_code=exit_code,
        code=code,
        reason=reason,
        hybrid=f"{job.name}{HYBRID_SUFFIX}" if written else None,
        report=f"{job.name}{REPORT_SUFFIX}" if written else None,
        **figures,
    )


def run_batch(
    jobs: Sequence[BatchJob],
    workers: int,
    compile_one: Callable[[BatchJob], BatchEntry],
    on_done: Callable[[BatchEntry], None] | None = None,
) -> list[BatchEntry]:
    """`compile_one` every job (a module-level function, so a worker process can run it),
    `workers` at a time: in this process when 1, else in a pool of spawned processes, so no
    numba or onnxruntime thread state is forked. Entries come back in `jobs`' order;
    `on_done(entry)` is called as each model finishes (a progress bar)."""
    if workers <= 1 or len(jobs) <= 1:
        entries = []
        for job in jobs:
            entries.append(compile_one(job))
            if on_done is not None:
                on_done(entries[-1])
        return entries
    results: dict[int, BatchEntry] = {}
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(compile_one, job): index for index, job in enumerate(jobs)}
        for future in as_completed(futures):
            results[futures[future]] = future.result()
            if on_done is not None:
                on_done(results[futures[future]])
    return [results[index] for index in range(len(jobs))]


def batch_summary(entries: Sequence[BatchEntry]) -> dict[str, Any]:
    """`summary.json`: every model's entry in order, the counts, and the batch's exit code."""
    return {
        "schema_version": BATCH_SCHEMA_VERSION,
        "models": [asdict(entry) for entry in entries],
        "compiled": sum(1 for e in entries if e.exit_code in (0, 7)),
        "failed": sum(1 for e in entries if e.exit_code not in (0, 7)),
        "gates_failed": sum(1 for e in entries if e.exit_code == 7),
        "exit_code": batch_exit_code(entries),
    }


def batch_exit_code(entries: Sequence[BatchEntry]) -> int:
    """0 when every model compiled and met its gates; 7 when the only failures are gates (all
    outputs written); 8 when any model failed to compile (its own code is in the summary)."""
    codes = {entry.exit_code for entry in entries}
    if codes <= {0}:
        return 0
    if codes <= {0, 7}:
        return 7
    return 8
