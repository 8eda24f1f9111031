"""Error classes of akidac, each with its process exit code and reason-code prefix.

Every error that reaches the user is one of these; the CLI prints `str(error)` on one line and
exits with `error.exit_code`. Anything else escaping the compiler is a bug (exit code 1).
"""

from __future__ import annotations


class AkidacError(Exception):
    """Base class: a failure that is explained to the user, with a stable exit code."""

    exit_code: int = 1
    code_prefix: str = "AK-INTERNAL"

    def __init__(self, message: str, *, code: str | None = None, node: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.code_prefix
        self.node = node

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class InternalError(AkidacError):
    """A bug in akidac: the message asks the user to report it."""

    exit_code = 1
    code_prefix = "AK-INTERNAL"


class UsageError(AkidacError):
    """Wrong command-line or API arguments (a bad option value, an unknown pass name)."""

    exit_code = 2
    code_prefix = "AK-USAGE"


class ModelError(AkidacError):
    """The model file is missing, unreadable, not ONNX, or an invalid graph."""

    exit_code = 3
    code_prefix = "AK-MODEL"


class UnsupportedModelError(AkidacError):
    """A valid model uses a feature akidac cannot handle at all (opset, dynamic shape, dtype)."""

    exit_code = 4
    code_prefix = "AK-UNSUPPORTED"


class AllocationError(AkidacError):
    """The model does not fit the chosen device, or NP/SRAM allocation failed."""

    exit_code = 5
    code_prefix = "AK-ALLOC"


class ProgramError(AkidacError):
    """A program binary or hybrid model is corrupt, truncated or inconsistent."""

    exit_code = 6
    code_prefix = "AK-PROGRAM"


class GateFailed(AkidacError):
    """A CI gate (`--min-sqnr`, `--min-akida-share`, `--max-regions`, `--max-transfer`) was not
    met; the outputs were written all the same."""

    exit_code = 7
    code_prefix = "AK-GATE"


class BatchFailed(AkidacError):
    """Some models of `compile --batch` failed to compile (each one's own exit code and reason
    are in the batch's summary.json); the others were compiled and written."""

    exit_code = 8
    code_prefix = "AK-BATCH"


EXIT_CODES: dict[int, str] = {
    0: "success",
    1: "internal error (a bug in akidac: please report it with the command line and model)",
    2: "usage error (bad options or arguments)",
    3: "invalid or unreadable model",
    4: "unsupported model feature",
    5: "device too small / allocation failure",
    6: "corrupt program binary or hybrid model",
    7: "a gate failed (the outputs were written)",
    8: "some models of a batch failed to compile (summary.json says which and why)",
}


class FallbackToCpu(UnsupportedModelError):
    """Nodes that must run on the CPU for the compile to succeed (quantization cannot express
    them, or the fidelity guard measured their region too far from the float model).

    The compile driver (`akidac.api.compile_model`) catches it, records `nodes` (ONNX node name
    → (reason code, sentence)) as CPU overrides and compiles again, so a model is never refused
    for one layer. Raised outside the driver (a hand-made pipeline), it is an unsupported-model
    error (exit 4) naming the first node."""

    def __init__(self, nodes: dict[str, tuple[str, str]]) -> None:
        first = next(iter(nodes.items()))
        name, (code, sentence) = first
        more = f" (and {len(nodes) - 1} more node(s))" if len(nodes) > 1 else ""
        super().__init__(f"{sentence}{more}", code=code, node=name)
        self.nodes = dict(nodes)
