"""Mutated program binaries in a hybrid model: what `HybridSession` must make of them.

Programs come from compiling a few small models of the zoo (`SOURCES`). Each mutant is the
original program's bytes changed by one `mutate` step, with its CRC32 recomputed (and, for the
steps that change the length, sometimes its total-length field too), so that the checks behind
the CRC are reached. Mutations: bit flips, random bytes, truncation, insertion and deletion of
bytes, and field-aware ones: the decoder's own reads of the original (`field_map`) locate every
count, dimension, length, tag, code and parameter, which are set to edge values (0, 1, the
type's maximum, 2^31, off by one, doubled), and the variables' data (weights, shifts, scales),
whose elements are replaced.

The rule every mutant must follow (`judge`), after it replaces the program of the hybrid's
first AkidaOp:

- loading or running the hybrid raises a `ProgramError` (exit 6): `refused`; any other
  exception, or an `AkidacError` with another exit code, is a failure (`crashed`);
- or it runs, and then the mutant is a program the decoder accepts, so it is judged as a
  program: the hardware model's output for each AkidaOp run must equal, bit for bit, the
  integer reference interpreter's (`akidac.ir.reference`) on the decoded mutant and the same
  program input (`ran`; a mismatch or a reference failure is `wrong`). A mutation of a weight,
  a shift or a scale is a different valid program: "never exit 0 with a wrong result" means
  its result is the one its decoded program defines, not the original's. When the mutant
  decodes to a program equal to the original, the hybrid's outputs must equal the original
  hybrid's exactly (`unchanged`);
- memory: the traced peak of loading and running one mutant stays under
  `MEMORY_BOUND_BYTES` (`tracemalloc`; numpy's allocations are traced).
"""

from __future__ import annotations

import contextlib
import struct
import sys
import tracemalloc
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from akidac.api import compile_model
from akidac.backends.akida import program as program_format
from akidac.backends.akida.akida_node import PROGRAM_ATTR, program_bytes
from akidac.backends.akida.executor import PreparedProgram
from akidac.backends.akida.program import Program, decode_program
from akidac.errors import AkidacError
from akidac.ir import reference
from akidac.passes import CompileOptions
from akidac.runtime.session import HybridSession

#: zoo models whose programs are mutated: conv/depthwise/dense, residual Add, Concatenate
SOURCES = ("mobilenet_like", "resnet_like", "concat_branches", "mlp")
#: the fixed set the test suite runs: seeds 0 … CI_MUTANTS − 1 (`make fuzz` starts after it)
CI_MUTANTS = 400
#: the traced peak one mutant may take to load and run (the programs are a few KiB to 100 KiB)
MEMORY_BOUND_BYTES = 64 << 20
#: the outcomes that make the fuzz fail
FAILURES = ("crashed", "wrong", "memory")

_EDGE_VALUES = {
    1: (0, 1, 2, 0x7F, 0x80, 0xFF),
    2: (0, 1, 2, 0x7FFF, 0xFFFF),
    4: (0, 1, 2, 3, 64, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF),
    8: (0, 1, -1, 2**31, 2**62, 2**63 - 1, -(2**63)),
}


@dataclass(frozen=True)
class Field:
    """One read of the decoder: where, how many bytes, and what it read."""

    offset: int
    size: int
    what: str


@dataclass
class Source:
    name: str
    hybrid: onnx.ModelProto
    node_index: int
    original: bytes
    program: Program
    fields: list[Field]
    feed: dict[str, np.ndarray]
    outputs: list[np.ndarray]


def field_map(data: bytes) -> list[Field]:
    """Every field the decoder reads from `data`, in reading order (its `take` calls)."""
    fields: list[Field] = []
    take = program_format._Reader.take

    def recording(reader: program_format._Reader, size: int, what: str) -> int:
        start = take(reader, size, what)
        fields.append(Field(start, size, what))
        return start

    program_format._Reader.take = recording  # type: ignore[method-assign]
    try:
        decode_program(data)
    finally:
        program_format._Reader.take = take  # type: ignore[method-assign]
    return fields


def with_crc(body: bytes | bytearray, fix_length: bool) -> bytes:
    """The body (everything but the CRC) with a fresh CRC32, and its total length field
    rewritten when `fix_length`."""
    body = bytearray(body)
    if fix_length and len(body) >= 12:
        struct.pack_into("<I", body, 8, len(body) + program_format.CRC_SIZE)
    return bytes(body) + struct.pack("<I", zlib.crc32(body))


def _set_int(body: bytearray, field: Field, value: int) -> None:
    """Store `value` modulo the field's width (two's complement, little-endian)."""
    body[field.offset : field.offset + field.size] = (value % (1 << (8 * field.size))).to_bytes(
        field.size, "little"
    )


def mutate(source: Source, rng: np.random.Generator) -> tuple[str, bytes]:
    """One mutant of the source program: (what was done, bytes with a recomputed CRC)."""
    body = bytearray(source.original[: -program_format.CRC_SIZE])
    kind = str(rng.choice(["flip", "byte", "truncate", "insert", "delete", "field", "data"]))
    fix_length = bool(rng.integers(0, 2))
    if kind == "flip":
        for _ in range(int(rng.integers(1, 5))):
            bit = int(rng.integers(0, 8 * len(body)))
            body[bit // 8] ^= 1 << (bit % 8)
        return "flip bits", with_crc(body, False)
    if kind == "byte":
        at = int(rng.integers(0, len(body)))
        body[at] = int(rng.integers(0, 256))
        return f"byte {at}", with_crc(body, False)
    if kind == "truncate":
        at = int(rng.integers(0, len(body)))
        return f"truncate at {at}", with_crc(body[:at], fix_length)
    if kind == "insert":
        at = int(rng.integers(0, len(body) + 1))
        extra = rng.integers(0, 256, int(rng.integers(1, 17))).astype(np.uint8).tobytes()
        return f"insert {len(extra)} at {at}", with_crc(body[:at] + extra + body[at:], fix_length)
    if kind == "delete":
        at = int(rng.integers(0, len(body)))
        size = int(rng.integers(1, 17))
        return f"delete {size} at {at}", with_crc(body[:at] + body[at + size :], fix_length)
    integers = [f for f in source.fields if f.size in _EDGE_VALUES]
    if kind == "field" and integers:
        field = integers[int(rng.integers(0, len(integers)))]
        current = int.from_bytes(
            body[field.offset : field.offset + field.size], "little", signed=field.size == 8
        )
        choices = [*_EDGE_VALUES[field.size], current + 1, current - 1, current * 2]
        value = int(choices[int(rng.integers(0, len(choices)))])
        _set_int(body, field, value)
        return f"{field.what} at {field.offset} := {value}", with_crc(body, False)
    data = [f for f in source.fields if f.size > 8 and "data" in f.what]
    if not data:
        return "nothing", source.original
    field = data[int(rng.integers(0, len(data)))]
    for _ in range(int(rng.integers(1, 4))):
        at = field.offset + int(rng.integers(0, field.size))
        body[at] = int(rng.integers(0, 256))
    return f"{field.what} bytes at {field.offset}", with_crc(body, False)


def load_sources(names: tuple[str, ...] = SOURCES) -> list[Source]:
    """Compile each zoo model and keep its hybrid, first program and its outputs on one feed."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from models.samples import smooth_samples
    from models.zoo import ZOO

    sources = []
    for name in names:
        model = ZOO[name][0]()
        samples = smooth_samples(model, 8, seed=1)
        options = CompileOptions(samples=samples, num_samples=8, fidelity_samples=0)
        hybrid = compile_model(model, options=options).model
        index = next(i for i, n in enumerate(hybrid.graph.node) if n.op_type == "AkidaOp")
        original = program_bytes(hybrid.graph.node[index])
        assert original is not None
        feed = {k: v[:1] for k, v in smooth_samples(model, 1, seed=7).items()}
        outputs = HybridSession(hybrid).run(None, feed)
        sources.append(
            Source(
                name,
                hybrid,
                index,
                original,
                decode_program(original),
                field_map(original),
                feed,
                outputs,
            )
        )
    return sources


def with_program(source: Source, blob: bytes) -> onnx.ModelProto:
    """The source hybrid with its AkidaOp's program replaced by `blob`."""
    model = onnx.ModelProto()
    model.CopyFrom(source.hybrid)
    node = model.graph.node[source.node_index]
    attribute = next(a for a in node.attribute if a.name == PROGRAM_ATTR)
    attribute.t.raw_data = blob
    del attribute.t.dims[:]
    attribute.t.dims.append(len(blob))
    return model


@contextlib.contextmanager
def recorded_runs() -> Iterator[list[tuple[Program, np.ndarray, np.ndarray]]]:
    """Every `PreparedProgram.run` inside the block: (program, input, output)."""
    runs: list[tuple[Program, np.ndarray, np.ndarray]] = []
    run = PreparedProgram.run

    def recording(self: PreparedProgram, x: np.ndarray) -> np.ndarray:
        y = run(self, x)
        runs.append((self.program, x.copy(), y.copy()))
        return y

    PreparedProgram.run = recording  # type: ignore[method-assign]
    try:
        yield runs
    finally:
        PreparedProgram.run = run  # type: ignore[method-assign]


def _reference_problem(runs: list[tuple[Program, np.ndarray, np.ndarray]]) -> str:
    for program, x, y in runs:
        try:
            want = reference.run_layers(program.layers, x)[program.output_layer]
        except Exception as error:
            return f"the reference interpreter fails ({type(error).__name__}: {error})"
        if want.shape != y.shape or not np.array_equal(want, y):
            return "the hardware model and the reference interpreter disagree"
    return ""


def judge(source: Source, blob: bytes) -> tuple[str, str]:
    """(outcome, detail) of one mutant (see the module docstring)."""
    tracemalloc.reset_peak()
    start = tracemalloc.get_traced_memory()[0]
    try:
        with recorded_runs() as runs:
            outputs = HybridSession(with_program(source, blob)).run(None, source.feed)
    except AkidacError as error:
        if error.exit_code == 6:
            return "refused", str(error)
        return "crashed", f"exit {error.exit_code}: {error}"
    except Exception as error:
        return "crashed", f"{type(error).__name__}: {error}"
    finally:
        peak = tracemalloc.get_traced_memory()[1] - start
    if peak > MEMORY_BOUND_BYTES:
        return "memory", f"traced peak {peak:,} bytes"
    if decode_program(blob) == source.program:
        same = all(np.array_equal(a, b) for a, b in zip(outputs, source.outputs, strict=True))
        return ("unchanged", "") if same else ("wrong", "same program, different output")
    problem = _reference_problem(runs)
    return ("wrong", problem) if problem else ("ran", "")


def run(
    seeds: range,
    sources: list[Source] | None = None,
    progress: Callable[[int, str, str, str], None] | None = None,
) -> Counter[str]:
    """Judge one mutant per seed (source chosen by the seed); counts by outcome, and failures
    (outcome: detail) counted under their own key."""
    sources = sources or load_sources()
    counts: Counter[str] = Counter()
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    try:
        for seed in seeds:
            rng = np.random.default_rng(seed)
            source = sources[seed % len(sources)]
            what, blob = mutate(source, rng)
            outcome, detail = judge(source, blob)
            counts[outcome] += 1
            if outcome in FAILURES:
                counts[f"seed {seed} ({source.name}, {what}): {outcome}: {detail[:200]}"] += 1
            if progress is not None:
                progress(seed, what, outcome, detail)
    finally:
        if not tracing:
            tracemalloc.stop()
    return counts


def summarize(counts: Counter[str]) -> str:
    order = ["refused", "ran", "unchanged", *FAILURES]
    total = sum(counts[name] for name in order)
    lines = [f"{total} mutants"]
    lines += [f"  {name:<18} {counts.get(name, 0):>6}" for name in order]
    lines += [f"  {key}" for key in sorted(counts) if key.startswith("seed ")]
    return "\n".join(lines)
