"""Writing output files so that a failure never leaves half a file behind.

A leaf module (it imports only `akidac.errors`), so every part that writes an output — the API,
the CLI and the report's plots — shares one implementation.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from akidac.errors import UsageError


def write_bytes_atomically(data: bytes, path: str | os.PathLike[str]) -> None:
    """Write `data` to a temporary file beside `path` (mode from the umask, like a plain
    write), then rename it into place: a failure never leaves half a file behind."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise UsageError(f"output '{target}' is a folder; give a file name")
    if not folder.is_dir():
        raise UsageError(f"output '{target}': folder '{folder}' does not exist")
    check_regular_target(target)
    try:
        handle, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as error:
        raise UsageError(f"cannot write output '{target}': {error.strerror or error}") from None
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp_name, 0o666 & ~umask)
        os.replace(temp_name, target)
    except OSError as error:  # disk full, read-only file system, permissions
        Path(temp_name).unlink(missing_ok=True)
        raise UsageError(f"cannot write output '{target}': {error.strerror or error}") from None
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def check_regular_target(target: Path) -> None:
    """An output may replace a regular file only: writing through a rename would turn a FIFO
    or a device into a regular file."""
    if target.exists() and not target.is_file():
        raise UsageError(f"output '{target}' exists and is not a regular file (a device or FIFO)")
