"""The JSON report's schema: one source of truth for the validator and docs/report-schema.md.

`REPORT_SCHEMA` is a JSON Schema (draft 2020-12) with a description on every field. `validate`
checks a report against it (the subset of JSON Schema used here: type, properties, required,
additionalProperties, items, enum, minimum), and `python -m akidac.report.schema` writes
`docs/report-schema.md` from it; `--check` (used by the tests) fails when the doc is stale.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from akidac.report.compat import REPORT_SCHEMA_VERSION

#: the repository's docs folder (akidac/report/schema.py → repository root / docs).
DOCS_DIR = Path(__file__).resolve().parents[2] / "docs"
DOC_NAME = "report-schema.md"


def _field(type_: str | list[str], description: str, **extra: Any) -> dict[str, Any]:
    return {"type": type_, "description": description, **extra}


def _object(
    description: str,
    properties: dict[str, dict[str, Any]],
    optional: Sequence[str] = (),
    nullable: bool = False,
) -> dict[str, Any]:
    """An object whose every property is required unless named in `optional`."""
    return {
        "type": ["object", "null"] if nullable else "object",
        "description": description,
        "properties": properties,
        "required": [name for name in properties if name not in optional],
        "additionalProperties": False,
    }


def _array(description: str, items: dict[str, Any], nullable: bool = False) -> dict[str, Any]:
    return {
        "type": ["array", "null"] if nullable else "array",
        "description": description,
        "items": items,
    }


def _count(description: str) -> dict[str, Any]:
    return _field("integer", description, minimum=0)


def _share(description: str) -> dict[str, Any]:
    return _field("number", description, minimum=0, maximum=1)


_REASON = _object(
    "One reason why the node does not run on Akida.",
    {
        "code": _field("string", "Stable reason code (docs/reason-codes.md), e.g. `AK-STRIDE`."),
        "message": _field("string", "The sentence: the node, its actual values and the limit."),
        "hint": _field("string", "What the user can do about it (may be empty)."),
    },
)

_TRANSFER = _object(
    "A value crossing CPU↔Akida once per inference.",
    {
        "value": _field(["string", "null"], "Name of the IR value at the region border."),
        "shape": _array("Its shape (NHWC inside a region).", _field("integer", "A dimension.")),
        "layout": _field(["string", "null"], "`NHWC`, `NCHW` or null (2-D values)."),
        "dtype": _field(
            ["string", "null"],
            "Element type on the link: `int8`, `uint8` or `int32` (raw sums of a last layer "
            "without activation).",
        ),
        "bytes": _count("Elements × element size of `dtype`."),
        "predicted": _field(
            "boolean",
            "True when `quantize` has not run yet (stage `analyze`): `dtype` and `bytes` are "
            "what it will choose.",
        ),
    },
)

_LAYER = _object(
    "One Akida layer (an `akida.*` op) of the region, in program order.",
    {
        "name": _field("string", "The layer's name: the ONNX name of its anchor node."),
        "kind": _field("string", "The `akida.*` op: `conv2d`, `dense`, `add` …"),
        "nodes": _array(
            "The ONNX nodes fused into the layer, anchor first.", _field("string", "A node name.")
        ),
        "macs": _count("Multiply-accumulates of one inference of the layer."),
        "nps": _array(
            "Indices of the neural processors the layer takes; null before allocation.",
            _field("integer", "An NP index.", minimum=0),
            nullable=True,
        ),
    },
)


def _ms(description: str, nullable: bool = True) -> dict[str, Any]:
    return _field(["number", "null"] if nullable else "number", description, minimum=0)


#: the `estimate` object (also printed by `akidac device --json`, one per device of `sweep`).
ESTIMATE_SCHEMA: dict[str, Any] = _object(
    "Estimated cost of one inference on the report's device (akidac.target.estimate): "
    "null when no allocation ran. Every figure rests on the constants in `assumptions` (sources "
    "in docs/devices.md).",
    {
        "schema_version": _field("integer", "Version of the estimate object.", enum=[2]),
        "device": _object(
            "The device estimated on.",
            {"name": _field("string", "Device name."), "nps": _count("Its NPs.")},
        ),
        "fits": _field(
            "boolean", "False when a layer needs more NPs than the device has (figures null)."
        ),
        "reason": _field("string", "Why it does not fit (only when `fits` is false)."),
        "latency_ms": _ms("Whole-model latency: Akida + CPU + transfers, in ms."),
        "inferences_per_s": _ms("1 / latency."),
        "energy_uj": _ms("Energy per inference in µJ (Akida MACs, link bytes, host MACs)."),
        "akida_ms": _ms("Time of the Akida layers (cycles at the clock)."),
        "cpu_ms": _ms(
            "Time of the CPU parts: their MACs at the host rate, their other elements at "
            "`host_elements_per_s`, and `host_seconds_per_node` per node."
        ),
        "cpu_elements": _count("Elements the CPU nodes write, other than by MACs."),
        "cpu_nodes": _count("The model's own nodes on the CPU (border nodes not counted)."),
        "transfer_ms": _ms(
            "Time of region inputs/outputs and reloaded weights over the host link, plus one "
            "region switch per region."
        ),
        "shares": _object(
            "Share of the latency on Akida, CPU and transfers.",
            {
                "akida": _share("Akida share."),
                "cpu": _share("CPU share."),
                "transfer": _share("Transfer share."),
            },
            nullable=True,
        ),
        "passes": _field(["integer", "null"], "Hardware passes of all regions.", minimum=0),
        "nps_used": _field(["integer", "null"], "Most NPs of any pass.", minimum=0),
        "macs_on_akida": _field(["integer", "null"], "MACs of the Akida layers.", minimum=0),
        "macs_on_cpu": _count("MACs of the CPU parts."),
        "layers": _array(
            "Akida layers in network order.",
            _object(
                "One Akida layer.",
                {
                    "name": _field("string", "Layer name."),
                    "region": _count("Its region."),
                    "pass": _count("Its hardware pass within the region."),
                    "np_type": _field("string", "CNP, FNP2, FNP3, HRC or none (a merge)."),
                    "nps": _count("NPs it takes."),
                    "macs": _count("MACs of one inference."),
                    "cycles": _count("Estimated cycles."),
                    "time_ms": _ms("Cycles at the clock, in ms.", nullable=False),
                    "weight_bytes": _count("Weight memory in bytes."),
                    "input_sram_bytes": _count("Input SRAM of its largest part per NP."),
                },
            ),
        ),
        "regions": _array(
            "Per region: passes, reloaded weights, DMA bytes, time.",
            _object(
                "One region.",
                {
                    "region": _count("Region index."),
                    "passes": _count("Hardware passes."),
                    "nps_per_pass": _array("NPs of each pass.", _count("NPs.")),
                    "weight_bytes_reloaded": _count(
                        "Weight bytes loaded every inference (all of them with several passes)."
                    ),
                    "dma_bytes_in": _count("Bytes sent to the region."),
                    "dma_bytes_out": _count("Bytes read back from it."),
                    "cycles": _count("Cycles of its layers."),
                    "time_ms": _ms("Its layers, transfers and switch, in ms.", nullable=False),
                },
            ),
        ),
        "assumptions": _object(
            "The constants the figures rest on (sources in docs/devices.md).",
            {
                "clock_hz": _count("Core clock, Hz."),
                "macs_per_np_per_cycle": _count("MACs per NP per cycle."),
                "np_dma_bytes_per_cycle": _count("NP DMA bytes per cycle (FNP2 weight stream)."),
                "host_link_bytes_per_s": _count("Host link bytes per second."),
                "region_switch_s": _ms("Fixed cost of one region switch, s.", nullable=False),
                "akida_pj_per_mac": _ms("Energy of one Akida MAC, pJ.", nullable=False),
                "link_pj_per_byte": _ms("Energy of one link byte, pJ.", nullable=False),
                "host": _field("string", "The host class the CPU parts are estimated on."),
                "host_macs_per_s": _ms("Host MACs per second.", nullable=False),
                "host_measured": _field(
                    "boolean", "True when the host rate was measured (--measure-cpu)."
                ),
                "host_pj_per_mac": _ms("Energy of one host MAC, pJ.", nullable=False),
                "host_elements_per_s": _count("Host element-wise elements per second."),
                "host_seconds_per_node": _ms("Host cost of one CPU node, s.", nullable=False),
                "layers_overlap": _field(
                    "boolean", "Whether layers of one frame are assumed to overlap (false)."
                ),
            },
        ),
    },
    optional=("reason",),
    nullable=True,
)

REPORT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "akidac compatibility report",
    **_object(
        "What runs where and why, for one model on one device configuration.",
        {
            "schema_version": _field(
                "integer",
                f"Version of this schema ({REPORT_SCHEMA_VERSION}); see the versioning policy.",
                enum=[REPORT_SCHEMA_VERSION],
            ),
            "provenance": _object(
                "What the report was made from, so that two reports can be compared safely "
                "(`akidac compile` and `akidac report` write it; a report built by "
                "`build_report` alone has none).",
                {
                    "akidac_version": _field("string", "The akidac version that wrote it."),
                    "model_sha256": _field(
                        "string", "sha256 of the model's deterministic ONNX serialization."
                    ),
                    "input_shapes": _field(
                        "array",
                        "The static shape of every graph input the model was compiled for.",
                        items=_object(
                            "One input.",
                            {
                                "name": _field("string", "Input name."),
                                "shape": _field(
                                    "array", "Dims.", items=_field("integer", "A dim.")
                                ),
                            },
                        ),
                    ),
                    "options": _field(
                        "array",
                        "The compile options that shape the result, sorted by name (samples: "
                        "only whether they were given).",
                        items=_object(
                            "One option.",
                            {
                                "name": _field("string", "Option name (CompileOptions field)."),
                                "value": _field("string", "Its value, JSON-encoded."),
                            },
                        ),
                    ),
                },
            ),
            "stage": _field(
                "string",
                "`analyze` (`akidac report`: legality and partition, no quantization; border "
                "Q/DQ nodes and dtypes predicted) or `compile` (the hybrid model as built).",
                enum=["analyze", "compile"],
            ),
            "device": _object(
                "The Akida device configuration the report assumed.",
                {
                    "name": _field("string", "Preset or `custom:NODES`, e.g. `akida2-12n`."),
                    "description": _field(
                        "string", "One line: nodes, NPs, input SRAM and weight memory per NP."
                    ),
                },
            ),
            "summary": _object(
                "Counts over the whole model.",
                {
                    "nodes_total": _count(
                        "ONNX nodes of the input model (Constant nodes excluded)."
                    ),
                    "nodes_on_akida": _count(
                        "Nodes that run on Akida (fused into a region's layer)."
                    ),
                    "nodes_on_cpu": _count("Nodes that run on the CPU, all or in part."),
                    "nodes_removed": _count(
                        "Nodes removed by rewrites (identity, dropout, folding)."
                    ),
                    "border_nodes_added": _count(
                        "Nodes the compiler adds at region borders (Transpose, QuantizeLinear, "
                        "DequantizeLinear, Mul): CPU work, listed in `border_nodes`."
                    ),
                    "macs_total": _count("Multiply-accumulates of one inference, all nodes."),
                    "macs_on_akida": _count("The MACs of layers inside Akida regions."),
                    "macs_on_cpu": _count("`macs_total` − `macs_on_akida`."),
                    "regions": _count("Akida regions, each one program (one `AkidaOp` node)."),
                    "hardware_passes": _count(
                        "Hardware passes of all programs together (equal to `regions` when "
                        "every program fits the device at once)."
                    ),
                    "transfer_bytes": _count(
                        "Bytes crossing CPU↔Akida per inference: every region's input and output."
                    ),
                },
            ),
            "shares": _object(
                "Fractions of the work on each side; `akida` + `cpu` = 1 (both 0 when there "
                "is no work), rounded to 4 decimals.",
                {
                    "nodes": _object(
                        "By executed nodes: Akida nodes over Akida + CPU nodes + border nodes "
                        "(the border nodes count as CPU work; removed nodes do not count).",
                        {
                            "akida": _share("Share of executed nodes on Akida."),
                            "cpu": _share("Share on the CPU, border nodes included."),
                        },
                    ),
                    "macs": _object(
                        "By multiply-accumulates.",
                        {
                            "akida": _share("`macs_on_akida` / `macs_total`."),
                            "cpu": _share("`macs_on_cpu` / `macs_total`."),
                        },
                    ),
                },
            ),
            "op_types": _array(
                "One row per ONNX op type of the model or of the border nodes, sorted by name.",
                _object(
                    "Where the nodes of one op type run.",
                    {
                        "op_type": _field("string", "The ONNX op type."),
                        "akida": _count("Its nodes on Akida."),
                        "cpu": _count("Its nodes on the CPU."),
                        "removed": _count("Its nodes removed by rewrites."),
                        "border_added": _count("Border nodes of this type the compiler adds."),
                    },
                ),
            ),
            "regions": _array(
                "The Akida regions in program order.",
                _object(
                    "One Akida region: one program, one input, one output.",
                    {
                        "index": _count("The region's index (the `region` of its nodes)."),
                        "layers": _array("Its layers in program order.", _LAYER),
                        "starts_because": _field("string", "Why the region starts where it does."),
                        "ends_because": _field("string", "Why it ends where it does."),
                        "notes": _array(
                            "What the partitioner changed to keep it (e.g. a pooling moved to "
                            "the CPU).",
                            _field("string", "A sentence."),
                        ),
                        "input": {**_TRANSFER, "description": "The value read from the CPU."},
                        "output": {**_TRANSFER, "description": "The value returned to the CPU."},
                        "macs": _count("Sum of its layers' MACs."),
                        "nps": _field(
                            ["integer", "null"],
                            "NPs the program takes (sum over layers); null before allocation.",
                            minimum=0,
                        ),
                        "passes": _field(
                            ["integer", "null"],
                            "Hardware passes the program runs in (1 when it fits the device "
                            "at once); null before allocation.",
                            minimum=0,
                        ),
                        "weight_bytes_reloaded": _field(
                            ["integer", "null"],
                            "Weight bytes loaded every inference: all of the program's when "
                            "it runs in several passes, 0 for one pass; null before allocation.",
                            minimum=0,
                        ),
                    },
                ),
            ),
            "border_nodes": _array(
                "Nodes the compiler adds at region borders, in graph order (predicted ones last).",
                _object(
                    "One compiler-added node (CPU work).",
                    {
                        "name": _field("string", "Name of its output value in the hybrid model."),
                        "op_type": _field(
                            "string", "`Transpose`, `QuantizeLinear`, `DequantizeLinear` or `Mul`."
                        ),
                        "region": _field(
                            ["integer", "null"],
                            "The region whose border it converts (null if it borders none).",
                            minimum=0,
                        ),
                        "side": _field(
                            ["string", "null"],
                            "`input` or `output` side of that region.",
                            enum=["input", "output", None],
                        ),
                        "predicted": _field(
                            "boolean",
                            "True for the QuantizeLinear/DequantizeLinear nodes `quantize` will "
                            "add (stage `analyze`).",
                        ),
                    },
                ),
            ),
            "nodes": _array(
                "Every ONNX node of the input model (Constant nodes excluded), in model order.",
                _object(
                    "Where one ONNX node runs and why.",
                    {
                        "name": _field(
                            "string", "The node's name (`OpType_index` when it has none)."
                        ),
                        "op_type": _field("string", "Its ONNX op type."),
                        "target": _field(
                            "string",
                            "`akida`, `cpu` (any part of it runs on the CPU) or `removed`.",
                            enum=["akida", "cpu", "removed"],
                        ),
                        "region": _field(
                            ["integer", "null"], "Its region when on Akida, else null.", minimum=0
                        ),
                        "macs": _count(
                            "MACs attributed to it: a layer's MACs go to its anchor (Conv, Gemm, "
                            "MatMul); fused activations and pooling have 0."
                        ),
                        "reasons": _array(
                            "Every reason it is not on Akida, all of them: empty on Akida, at "
                            "least one on the CPU, `AK-FOLDED` when removed.",
                            _REASON,
                        ),
                    },
                ),
            ),
            "diagnostics": _array(
                "Notes and warnings of the run, in the order they were reported.",
                _object(
                    "One diagnostic.",
                    {
                        "severity": _field(
                            "string",
                            "`note`, `warning` or `error`.",
                            enum=["note", "warning", "error"],
                        ),
                        "code": _field("string", "Stable reason code."),
                        "message": _field("string", "The sentence."),
                        "node": _field(["string", "null"], "The ONNX node it is about, if any."),
                        "hint": _field(["string", "null"], "What the user can do, if anything."),
                    },
                ),
            ),
            "fidelity": _object(
                "Stage `compile` only, when measured: how closely the hybrid model's outputs "
                "follow the float model's on held-out inputs.",
                {
                    "samples": _count("Inputs the figures were measured on."),
                    "note": _field("string", "Where those inputs came from."),
                    "outputs": _array(
                        "One entry per model output.",
                        _object(
                            "The figures of one output.",
                            {
                                "name": _field("string", "The model output."),
                                "sqnr_db": _field(
                                    "number",
                                    "Signal-to-quantization-noise ratio in dB, the minimum over "
                                    "the inputs (each input measured on its own; 200 = equal).",
                                ),
                                "pearson": _field(
                                    "number",
                                    "Pearson correlation with the float output, the minimum over "
                                    "the inputs.",
                                ),
                                "top1_agreement": _field(
                                    ["number", "null"],
                                    "Share of inputs whose arg-max agrees, for 2-D outputs with "
                                    "more than one class; null for other outputs.",
                                ),
                                "max_abs_error": _field(
                                    "number", "Largest absolute difference over the inputs."
                                ),
                                "cosine": _field(
                                    "number",
                                    "Cosine similarity, all inputs joined (secondary: a constant "
                                    "output can score above 0.99 on it).",
                                ),
                                "constant_sqnr_db": _field(
                                    "number",
                                    "The SQNR an output equal to the mean float output would "
                                    "score: the baseline the figure must clear.",
                                ),
                            },
                        ),
                    ),
                },
            ),
            "estimate": ESTIMATE_SCHEMA,
        },
        optional=("fidelity", "provenance"),
    ),
}

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def _is(value: Any, type_name: str) -> bool:
    if type_name in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES[type_name])


def validate(data: Any, schema: dict[str, Any] = REPORT_SCHEMA, path: str = "$") -> list[str]:
    """Every way `data` breaks `schema`, one sentence each naming the JSON path (empty: valid)."""
    types = schema.get("type")
    if types is not None:
        allowed = [types] if isinstance(types, str) else list(types)
        if not any(_is(data, t) for t in allowed):
            return [f"{path}: expected {' or '.join(allowed)}, got {type(data).__name__}"]
    errors = []
    if "enum" in schema and data not in schema["enum"]:
        errors.append(f"{path}: {data!r} is not one of {schema['enum']}")
    if isinstance(data, int | float) and not isinstance(data, bool):
        if "minimum" in schema and data < schema["minimum"]:
            errors.append(f"{path}: {data} is below the minimum {schema['minimum']}")
        if "maximum" in schema and data > schema["maximum"]:
            errors.append(f"{path}: {data} is above the maximum {schema['maximum']}")
    if isinstance(data, dict) and "properties" in schema:
        properties = schema["properties"]
        errors += [f"{path}: missing field '{k}'" for k in schema["required"] if k not in data]
        if schema.get("additionalProperties") is False:
            errors += [f"{path}: undocumented field '{k}'" for k in data if k not in properties]
        for key, value in data.items():
            if key in properties:
                errors += validate(value, properties[key], f"{path}.{key}")
    if isinstance(data, list) and "items" in schema:
        for index, item in enumerate(data):
            errors += validate(item, schema["items"], f"{path}[{index}]")
    return errors


def field_rows(
    schema: dict[str, Any] = REPORT_SCHEMA, prefix: str = ""
) -> list[tuple[str, str, str]]:
    """(path, type, meaning) of every documented field, depth first: `regions[].layers[].nps`."""
    rows = []
    required = set(schema.get("required", ()))
    for name, sub in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        meaning = sub["description"] + ("" if name in required else " *Optional.*")
        rows.append((path, _type_text(sub), meaning))
        rows += field_rows(sub, f"{path}.")
        if "items" in sub:
            rows += field_rows(sub["items"], f"{path}[].")
    return rows


def _type_text(schema: dict[str, Any]) -> str:
    types = schema["type"]
    names = [types] if isinstance(types, str) else list(types)
    text = " or ".join(
        f"array of {_type_text(schema['items'])}" if name == "array" else name for name in names
    )
    if len(schema.get("enum", ())) > 1:
        text += ": " + ", ".join(json.dumps(v) for v in schema["enum"])
    return text


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_schema_md() -> str:
    """The text of `docs/report-schema.md`."""
    lines = [
        "# The JSON report",
        "",
        "<!-- Generated by `python -m akidac.report.schema` from `akidac/report/schema.py`. "
        "Do not edit: a test fails when this file and the schema differ. -->",
        "",
        "`akidac report MODEL --json` prints it, `akidac compile … --report-json FILE` writes it, "
        "and `akidac.analyze()` / `CompileResult.report` return it as a dict. Keys are sorted "
        "and lists follow the model's order, so the same model gives byte-identical JSON: CI "
        "jobs can diff it between commits.",
        "",
        f"Current `schema_version`: **{REPORT_SCHEMA_VERSION}**.",
        "",
        "## Versioning policy",
        "",
        "- `schema_version` is one integer. It changes whenever a field is added, removed or "
        "renamed, or changes type or meaning; the fields listed here are exactly the fields a "
        "report of that version holds (the test suite validates real reports against this "
        "schema, undocumented fields included).",
        "- Values may change between akidac versions without a version change when the compiler "
        "decides better (more nodes on Akida, new reason codes); the meaning of every field "
        "stays.",
        "- Reason codes are stable: a code never changes meaning (docs/reason-codes.md).",
        "",
        "## Counting rules",
        "",
        "- A node runs on Akida when it is fused into a layer of an Akida region; a node with any "
        "CPU work (including a max pooling moved off the end of a region) is a CPU node.",
        "- The Transpose, QuantizeLinear and DequantizeLinear nodes the compiler adds at region "
        "borders are CPU work: they count in `summary.border_nodes_added` and in the CPU share "
        "by nodes, and are listed in `border_nodes`; they are never hidden.",
        "- MACs: Conv `N·Ho·Wo·Cout·(Cin/group)·kh·kw`, ConvTranspose "
        "`N·Hi·Wi·Cin·(Cout/group)·kh·kw`, Gemm/MatMul output elements × K; an Akida layer's "
        "MACs go to its anchor node; other ops count 0.",
        "- Transfer bytes: each region's input and output value, elements × the size of its "
        "integer type, once per inference.",
        "",
        "## Fields",
        "",
        "| field | type | meaning |",
        "| --- | --- | --- |",
    ]
    lines += [f"| `{path}` | {_cell(t)} | {_cell(m)} |" for path, t, m in field_rows()]
    lines += [
        "",
        "## JSON Schema",
        "",
        "The same schema, machine-readable (draft 2020-12):",
        "",
        "```json",
        json.dumps(REPORT_SCHEMA, indent=2, ensure_ascii=False),
        "```",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Rewrite docs/report-schema.md, or with `--check` fail (exit 1) when it is stale."""
    parser = argparse.ArgumentParser(prog="python -m akidac.report.schema", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the doc is out of date")
    parser.add_argument("--docs-dir", type=Path, default=DOCS_DIR, help="the docs folder")
    args = parser.parse_args(argv)
    path = args.docs_dir / DOC_NAME
    text = render_schema_md()
    if args.check:
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current != text:
            print(f"{path} is stale: run python -m akidac.report.schema", file=sys.stderr)
            return 1
        return 0
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
