"""Fingerprints of the compiled zoo: proof that a refactoring commit changes no output.

Compiles every zoo model (tests/models/zoo.py) with default options through `akidac.api`, at 8
and at 4 bits, and records the sha256 of each hybrid model and of its JSON report. Run it before
and after a refactor; `--compare` exits 1 and names the models whose bytes changed.

    python bench/zoo_snapshot.py --write /tmp/before.json
    ... refactor ...
    python bench/zoo_snapshot.py --compare /tmp/before.json

The report's provenance block is left in (it holds no time and no path, only the akidac version,
the model hash and the options), so a version bump shows up as a changed report: bump versions
in commits of their own.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

from models.zoo import ZOO

from akidac.api import compile_model
from akidac.passes import CompileOptions

BITS = (8, 4)


def fingerprints() -> dict[str, dict[str, str]]:
    """{"model@bits": {"hybrid": sha256, "report": sha256}} for every zoo model."""
    found: dict[str, dict[str, str]] = {}
    for name, (build, _) in ZOO.items():
        for bits in BITS:
            options = CompileOptions(wbits=bits, abits=bits)
            result = compile_model(build(), options=options)
            report = json.dumps(result.report, sort_keys=True, default=str).encode()
            found[f"{name}@{bits}"] = {
                "hybrid": hashlib.sha256(result.model.SerializeToString()).hexdigest(),
                "report": hashlib.sha256(report).hexdigest(),
            }
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", type=Path, help="save the fingerprints to this JSON file")
    parser.add_argument("--compare", type=Path, help="compare with fingerprints saved earlier")
    args = parser.parse_args()
    now = fingerprints()
    if args.write:
        args.write.write_text(json.dumps(now, indent=1, sort_keys=True) + "\n")
    before = json.loads(args.compare.read_text()) if args.compare else None
    changed = 0
    print("| model | hybrid sha256 | report sha256 | vs before |")
    print("| --- | --- | --- | --- |")
    for key, digests in now.items():
        verdict = "-"
        if before is not None:
            old = before.get(key)
            if old == digests:
                verdict = "identical"
            else:
                verdict = "CHANGED" if old else "new"
                changed += 1
        print(f"| {key} | {digests['hybrid'][:16]} | {digests['report'][:16]} | {verdict} |")
    if before is not None:
        print(f"{len(now) - changed} of {len(now)} identical")
    return 1 if changed else 0


if __name__ == "__main__":
    raise SystemExit(main())
