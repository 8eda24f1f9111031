"""Imports every built-in pass module so that each registers itself."""

from akidac.passes import (  # noqa: F401
    allocate,
    canonicalize,
    fuse,
    import_cleanup,
    legalize,
    partition,
    quantize,
)
