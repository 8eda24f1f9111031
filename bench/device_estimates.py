"""`akidac device --sweep --json` on every zoo model and every cached real-world model: a table.

    python bench/device_estimates.py [--cache ~/.cache/akidac-realworld] [--markdown]

Per model: the minimal device, then the estimate on akida2-12n (latency, inferences/s, energy,
shares) and the sweep's latency on the smallest and largest device that fit. Real-world models
come from bench/realworld.py's cache (run that script first); their dynamic input dimensions get
the shapes it uses. Runs the CLI as a subprocess per model, so a model that fails prints its
one-line error and the table goes on.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import onnx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from models.zoo import ZOO  # noqa: E402
from realworld import DEFAULT_CACHE, MODELS, _is_dynamic, input_specs  # noqa: E402

AKIDAC = Path(sys.executable).with_name("akidac")


def device_json(path: Path, shapes: list[str]) -> dict | str:
    command = [str(AKIDAC), "device", str(path), "--sweep", "--json"]
    for shape in shapes:
        command += ["--input-shape", shape]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        return (done.stderr.strip().splitlines() or ["?"])[-1][:90]
    return json.loads(done.stdout)


def row(name: str, data: dict | str) -> list[str]:
    if isinstance(data, str):
        return [name, f"error: {data}"] + [""] * 8
    est = data["estimate"] or {}
    fitting = [s for s in data.get("sweep", []) if s["fits"]]
    minimal = data["minimal_device"]["name"] if data["minimal_device"] else "none"
    if not data["regions"]:
        minimal = "no Akida region"
    if not est or not est.get("fits"):
        return [name, minimal] + [""] * 8
    shares = est["shares"]
    return [
        name,
        minimal,
        str(est["passes"]),
        f"{est['latency_ms']:.3f}",
        f"{est['inferences_per_s'] or 0:,.0f}",
        f"{est['energy_uj']:.1f}",
        f"{shares['akida']:.0%}/{shares['cpu']:.0%}/{shares['transfer']:.0%}",
        f"{fitting[0]['device']['name']} {fitting[0]['latency_ms']:.3f}" if fitting else "",
        f"{fitting[-1]['device']['name']} {fitting[-1]['latency_ms']:.3f}" if fitting else "",
        f"{est['macs_on_akida'] / 1e6:.1f}/{est['macs_on_cpu'] / 1e6:.1f}",
    ]


HEADER = [
    "model",
    "minimal device",
    "passes@12n",
    "ms@12n",
    "inf/s@12n",
    "µJ@12n",
    "akida/cpu/xfer",
    "smallest fitting: ms",
    "largest: ms",
    "MMACs akida/cpu",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--only", nargs="*", help="model names")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (builder, _) in sorted(ZOO.items()):
            if args.only and name not in args.only:
                continue
            path = Path(tmp) / f"{name}.onnx"
            onnx.save(builder(), path)
            rows.append(row(f"zoo/{name}", device_json(path, [])))
            print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
    for model in MODELS:
        path = args.cache.expanduser() / "models" / f"{model['name']}.onnx"
        if not path.exists() or (args.only and model["name"] not in args.only):
            continue
        shapes = [
            f"{name}={'x'.join(map(str, shape))}"
            for name, declared, shape, _ in input_specs(model, path)
            if declared and _is_dynamic(declared)
        ]
        rows.append(row(model["name"], device_json(path, shapes)))
        print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
    if args.markdown:
        print("| " + " | ".join(HEADER) + " |")
        print("|" + "---|" * len(HEADER))
        for r in rows:
            print("| " + " | ".join(r) + " |")
    else:
        widths = [max(len(str(r[i])) for r in [HEADER, *rows]) for i in range(len(HEADER))]
        for r in [HEADER, *rows]:
            print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
