"""Automatic mixed precision on the zoo: `--target-sqnr` at 4 bits, before and after.

For every model of the test zoo (tests/models/zoo.py) it compiles at `--wbits 4 --abits 4`
with the search of `akidac.precision` towards a target SQNR (default 25 dB) and prints one row
per model: the worst output SQNR at 4 bits, after the search, the Akida layers left at 4 bits
of all, the compiles it took, and the time. Calibration and fidelity use akidac's defaults
(random samples), as the zoo test does.

Run: `python bench/mixed_precision.py [--target DB] [--models a b ...]`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from models.zoo import ZOO

from akidac import CompileOptions, compile_to_target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=float, default=25.0)
    parser.add_argument("--models", nargs="*", default=list(ZOO))
    args = parser.parse_args()
    header = ("model", "4-bit SQNR dB", "after dB", "layers at 4 bits", "compiles", "s")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(" --- " for _ in header) + "|")
    for name in args.models:
        model = ZOO[name][0]()
        start = time.perf_counter()
        options = CompileOptions(wbits=4, abits=4)
        _, choice = compile_to_target(model, target_sqnr=args.target, options=options)
        seconds = time.perf_counter() - start
        low = sum(1 for bits in choice.layers.values() if min(bits.values()) < 8)
        cells = (
            name,
            f"{choice.steps[0].sqnr_db:.1f}",
            f"{choice.steps[-1].sqnr_db:.1f}",
            f"{low} of {len(choice.layers)}",
            str(len(choice.steps)),
            f"{seconds:.1f}",
        )
        print("| " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
