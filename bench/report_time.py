"""Report-time benchmark: `akidac report` on a generated ~1000-node model, target < 0.5 s.

    python bench/report_time.py [--repeat 5] [--blocks 250]

The model is `akidac.models.chain_net(blocks)` (4 ONNX nodes per block, one more at the end:
1001 nodes for 250 blocks; Akida and CPU regions alternate, so every region has border nodes).
Each stage runs once as a warm-up (excluded: Python start-up, imports, first-call caches), then
`--repeat` times; the table shows medians. "report" is `akidac.analyze` (load, import,
legality and partition passes, `build_report`); "JSON" the `--json` text; "render" the rich
output of `akidac report` into a buffer; the target applies to their sum.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console

from akidac.api import analyze
from akidac.models import chain_net
from akidac.report.render import print_report
from bench.compile_time import median_seconds

TARGET_SECONDS = 0.5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--blocks", type=int, default=250, help="chain_net blocks (4 nodes each)")
    args = parser.parse_args()

    model = chain_net(args.blocks)
    nodes = len(model.graph.node)
    report = analyze(model)

    def render() -> None:
        print_report(Console(file=io.StringIO(), width=160), report)

    stages = {
        "report": median_seconds(lambda: analyze(model), args.repeat),
        "JSON": median_seconds(lambda: json.dumps(report, indent=2, sort_keys=True), args.repeat),
        "render": median_seconds(render, args.repeat),
    }
    total = sum(stages.values())
    print(
        f"akidac report-time bench: chain_net({args.blocks}), median of {args.repeat} runs after "
        f"one warm-up; {report['summary']['regions']} regions, "
        f"{report['summary']['border_nodes_added']} border nodes"
    )
    header = f"{'nodes':>6} " + " ".join(f"{name + ' s':>9}" for name in stages)
    print(f"{header} {'total s':>9} {'target':>8} {'met':>4}")
    figures = " ".join(f"{seconds:>9.3f}" for seconds in stages.values())
    met = "yes" if total < TARGET_SECONDS else "no"
    print(f"{nodes:>6} {figures} {total:>9.3f} {'< ' + str(TARGET_SECONDS) + ' s':>8} {met:>4}")
    return 0 if total < TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
