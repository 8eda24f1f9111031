"""Fidelity of the compiled zoo models against their float models, 8-bit and 4-bit.

Each model is calibrated on 64 samples and measured on 32 held-out samples of the same
distribution (tests/models/samples.py); the table gives the cosine similarity and max |error| of
every output, and the share of nodes on Akida. Not a speed benchmark: a figure script.

    python bench/zoo_fidelity.py [--bits 8 4]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

from models.samples import smooth_samples
from models.zoo import ZOO

from akidac.api import compile_model
from akidac.passes import CompileOptions

CALIBRATION, HELD_OUT = 64, 32


def measure(name: str, bits: int) -> list[str]:
    build = ZOO[name][0]
    model = build()
    data = smooth_samples(model, CALIBRATION + HELD_OUT, seed=7)
    options = CompileOptions(
        samples=data, num_samples=CALIBRATION, fidelity_samples=HELD_OUT, wbits=bits, abits=bits
    )
    result = compile_model(model, options=options)
    summary = result.report["summary"]
    share = f"{summary['nodes_on_akida']}/{summary['nodes_total']}"
    fidelity = result.report.get("fidelity")
    if not fidelity:
        return [f"| {name} | {bits} | {share} | — (no Akida region) | | | | | | |"]
    return [
        f"| {name} | {bits} | {share} | {out['name']} | {out['sqnr_db']:.1f} "
        f"| {out['constant_sqnr_db']:.1f} | {out['pearson']:.4f} | {_top1(out)} "
        f"| {out['cosine']:.4f} | {out['max_abs_error']:.4g} |"
        for out in fidelity["outputs"]
    ]


def _top1(output: dict) -> str:
    share = output.get("top1_agreement")
    return "-" if share is None else f"{share:.0%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bits", type=int, nargs="+", default=[8, 4])
    args = parser.parse_args()
    print(f"calibration {CALIBRATION} samples, held-out {HELD_OUT} samples, same distribution")
    print(
        "| model | bits | nodes on Akida | output | SQNR dB (min) | constant-output SQNR dB "
        "| Pearson (min) | top-1 | cosine (joined) | max abs error |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for bits in args.bits:
        for name in sorted(ZOO):
            try:
                rows = measure(name, bits)
            except Exception as error:  # a figure script reports and goes on
                rows = [f"| {name} | {bits} | error: {type(error).__name__}: {error} | | | |"]
            print("\n".join(rows), flush=True)
    np.seterr(all="ignore")


if __name__ == "__main__":
    main()
