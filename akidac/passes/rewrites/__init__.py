"""ONNX-level rewrites that let Akida run more of a model, one rule per module; and the public
rewrite API for writing more (docs/passes.md, "Writing a rewrite", builds one step by step).

Each module's docstring states the algebra of its rewrite; `import-cleanup` runs the folds
(`IMPORT_CLEANUP_RULES`), `canonicalize` the reshaping rewrites (`CANONICALIZE_RULES`). Every
rule stays in the `onnx` dialect, keeps the ONNX origins of the ops it replaces, and never
renames a graph output.

The public API (stable like the pass API, `PASS_API_VERSION`): `RewriteRule` (a name, the op
types it starts from, and `apply(graph, op, by) -> Outcome`), `Miss` (what `apply` returns for
an op that almost matched: the near miss, with its sentence), `run_rules` (the fixed-point
driver that records near misses as `RewriteMiss` in `ctx.analyses["rewrite_misses"]` and as
`AK-REWRITE-NEAR-MISS` notes), and the helpers `const_of`, `single_consumer`, `replace_ops` and
`replace_value`, which keep origins, use lists and graph output names right.
"""

from akidac.passes.rewrites import (
    affine_depthwise,
    channel_pad,
    concat_pairs,
    conv_dense,
    even_kernel,
    fold_affine,
    fold_pad,
    prelu,
    push_transpose,
    reshape_chain,
    resize_nearest,
    split_channels,
    strided_depthwise,
)
from akidac.passes.rewrites.rule import (
    Miss,
    Outcome,
    RewriteMiss,
    RewriteRule,
    const_of,
    replace_ops,
    replace_value,
    run_rules,
    single_consumer,
)

IMPORT_CLEANUP_RULES: tuple[RewriteRule, ...] = (
    push_transpose.COMPOSE_RULE,
    push_transpose.PUSH_RULE,
    reshape_chain.RULE,
    fold_affine.RULE,
)
CANONICALIZE_RULES: tuple[RewriteRule, ...] = (
    prelu.RULE,
    fold_pad.RULE,
    channel_pad.RULE,
    resize_nearest.RULE,
    conv_dense.RULE,
    even_kernel.RULE,
    strided_depthwise.RULE,
    affine_depthwise.RULE,
    affine_depthwise.CHANNEL_AFFINE_RULE,
    split_channels.RULE,
    concat_pairs.RULE,
)

__all__ = [
    "CANONICALIZE_RULES",
    "IMPORT_CLEANUP_RULES",
    "Miss",
    "Outcome",
    "RewriteMiss",
    "RewriteRule",
    "const_of",
    "replace_ops",
    "replace_value",
    "run_rules",
    "single_consumer",
]
