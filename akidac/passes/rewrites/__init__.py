"""ONNX-level rewrites that let Akida run more of a model, one rule per module.

Each module's docstring states the algebra of its rewrite; `import-cleanup` runs the folds
(`IMPORT_CLEANUP_RULES`), `canonicalize` the reshaping rewrites (`CANONICALIZE_RULES`). Every
rule stays in the `onnx` dialect, keeps the ONNX origins of the ops it replaces, and never
renames a graph output.
"""

from akidac.passes.rewrites import (
    affine_depthwise,
    concat_pairs,
    even_kernel,
    fold_affine,
    fold_pad,
    resize_nearest,
    split_channels,
    strided_depthwise,
)
from akidac.passes.rewrites.rule import Miss, RewriteMiss, RewriteRule, run_rules

IMPORT_CLEANUP_RULES: tuple[RewriteRule, ...] = (fold_affine.RULE,)
CANONICALIZE_RULES: tuple[RewriteRule, ...] = (
    fold_pad.RULE,
    resize_nearest.RULE,
    even_kernel.RULE,
    strided_depthwise.RULE,
    affine_depthwise.RULE,
    split_channels.RULE,
    concat_pairs.RULE,
)

__all__ = [
    "CANONICALIZE_RULES",
    "IMPORT_CLEANUP_RULES",
    "Miss",
    "RewriteMiss",
    "RewriteRule",
    "run_rules",
]
