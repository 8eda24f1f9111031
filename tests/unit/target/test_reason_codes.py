"""The reason-code registry: complete, well-formed, and in step with the error classes."""

from __future__ import annotations

import re

import pytest

from akidac import errors
from akidac.target.reason_codes import CATEGORIES, REASON_CODES, codes_in, reason_code

#: the codes the passes and reports rely on (the brief of the target package).
REQUIRED_CODES = [
    "AK-KERNEL-SIZE", "AK-STRIDE", "AK-PADDING", "AK-DILATION", "AK-GROUPS", "AK-CHANNELS",
    "AK-FILTERS", "AK-INPUT-CONV-CHANNELS", "AK-INPUT-CONV-HEIGHT", "AK-POOL-SIZE",
    "AK-POOL-STRIDE", "AK-POOL-WITH-STRIDE2", "AK-POOL-WITH-LUT", "AK-GAP-SIZE",
    "AK-DENSE-INPUTS", "AK-BITS", "AK-DTYPE", "AK-OP-UNSUPPORTED", "AK-NOT-CONSTANT", "AK-RANK",
    "AK-ACTIVATION", "AK-REGION-MAXPOOL-LAST", "AK-REGION-CONSUMERS", "AK-REGION-OUTPUTS",
    "AK-REGION-COST", "AK-MERGE-INPUTS", "AK-MERGE-CONSUMER",
    "AK-CONCAT-AXIS", "AK-SHAPE-MISMATCH", "AK-QUANT", "AK-DEVICE-TOO-SMALL",
]  # fmt: skip


@pytest.mark.parametrize("code", REQUIRED_CODES)
def test_every_code_the_compiler_emits_is_registered(code: str) -> None:
    assert reason_code(code).code == code


def test_every_code_is_well_formed_and_fully_described() -> None:
    for code, rc in REASON_CODES.items():
        assert re.fullmatch(r"AK-[A-Z0-9]+(-[A-Z0-9]+)*", code)
        assert rc.code == code
        assert rc.category in CATEGORIES
        assert rc.title and rc.description.endswith(".") and rc.hint.endswith(".")


def test_every_category_holds_at_least_one_code() -> None:
    for category in CATEGORIES:
        assert codes_in(category)


def test_the_default_code_of_every_error_class_is_registered() -> None:
    classes = [errors.AkidacError, *errors.AkidacError.__subclasses__()]
    for cls in classes:
        assert cls.code_prefix in REASON_CODES, cls.__name__
        assert f"exit code {cls.exit_code}" in REASON_CODES[cls.code_prefix].title


def test_an_unknown_code_is_named_in_the_error() -> None:
    with pytest.raises(KeyError, match="AK-NOPE"):
        reason_code("AK-NOPE")
    with pytest.raises(ValueError, match="nope"):
        codes_in("nope")
