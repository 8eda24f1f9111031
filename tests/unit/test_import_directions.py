"""Imports between akidac's parts run the way the package map draws them, and modules import one
another without circles.

Every `import` of the package (module level and inside functions alike) is read with `ast`. A
part is a sub-package (`ir`, `passes`, …; `backends.akida` and `backends.hybrid` apart) or a
top-level module (`api`, `cli`, …). The arrows allowed, importer → imported, are `ALLOWED`:
the table of docs/architecture.md, which a test holds equal to it. Every part may import the
leaves (`LEAVES`), which import nothing of akidac but `errors`.

The code takes no arrow against the map. Should one ever have to stay for a while, it goes in
`KNOWN_EXCEPTIONS` with why; a test fails when a listed one is no longer taken, so the list only
shrinks.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from functools import cache
from pathlib import Path

import akidac

PACKAGE = Path(akidac.__file__).parent

LEAVES = frozenset({"akidac", "errors", "float_session", "limits", "metrics", "output_files"})
_BELOW_API = frozenset(
    {
        "frontend",
        "passes",
        "backends.akida",
        "backends.hybrid",
        "runtime",
        "report",
        "ir",
        "target",
    }
)
ALLOWED: dict[str, frozenset[str]] = {
    "cli": frozenset({"api"}),
    "api": _BELOW_API | {"precision", "bisect", "batch", "output_guard"},
    "output_guard": _BELOW_API,
    "batch": frozenset(),
    "precision": _BELOW_API | {"bisect"},
    "bisect": _BELOW_API,
    "demo": _BELOW_API | {"api", "models"},
    "frontend": frozenset({"ir"}),
    "passes": frozenset({"ir", "target"}),
    "backends.akida": frozenset({"ir", "target"}),
    "backends.hybrid": frozenset({"backends.akida", "ir", "target"}),
    "backends": frozenset(),
    "report": frozenset({"ir", "target"}),
    "runtime": frozenset({"backends.akida"}),
    "ir": frozenset({"target"}),
    "target": frozenset(),
    "models": frozenset(),
    "akidac": frozenset(),
    "errors": frozenset(),
    "limits": frozenset(),
    "metrics": frozenset(),
    "float_session": frozenset(),
    "output_files": frozenset(),
}
_LEAF_IMPORTS = {"limits": {"errors"}, "output_files": {"errors"}}

#: (importer, imported) → why the code still takes this arrow against the map.
KNOWN_EXCEPTIONS: dict[tuple[str, str], str] = {}


def _modules() -> dict[str, Path]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


@cache
def _module_imports() -> dict[str, set[tuple[str, int]]]:
    """Module → the akidac modules it imports (each with the line), a `from package import
    submodule` resolved to the submodule. Read once per test session."""
    modules = _modules()
    found: dict[str, set[tuple[str, int]]] = defaultdict(set)
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [
                    f"{node.module}.{alias.name}"
                    if f"{node.module}.{alias.name}" in modules
                    else node.module
                    for alias in node.names
                ]
            else:
                continue
            for target in targets:
                if target in modules and target != name:
                    found[name].add((target, node.lineno))
    return found


def _part(module: str) -> str:
    """The part a module belongs to: `akidac.passes.fuse` → passes, `akidac.backends.akida.x` →
    backends.akida, `akidac.api` → api, `akidac` → akidac."""
    parts = module.split(".")[1:]
    if not parts:
        return "akidac"
    if parts[0] == "backends" and len(parts) > 1:
        return f"backends.{parts[1]}"
    return parts[0]


def _arrows() -> dict[tuple[str, str], list[str]]:
    modules = _modules()
    arrows: dict[tuple[str, str], list[str]] = defaultdict(list)
    for importer, targets in _module_imports().items():
        for target, line in sorted(targets):
            arrow = (_part(importer), _part(target))
            if arrow[0] != arrow[1]:
                arrows[arrow].append(f"{modules[importer].relative_to(PACKAGE.parent)}:{line}")
    return arrows


def _allowed(importer: str, imported: str) -> bool:
    if importer in LEAVES:
        return imported in _LEAF_IMPORTS.get(importer, set())
    return imported in LEAVES or imported in ALLOWED[importer]


def test_every_part_of_the_package_has_its_arrows_listed() -> None:
    parts = {_part(module) for module in _modules()}
    assert parts <= set(ALLOWED), f"parts missing from ALLOWED: {sorted(parts - set(ALLOWED))}"


def test_imports_between_parts_follow_the_package_map() -> None:
    wrong = [
        f"{importer} → {imported} ({', '.join(where)})"
        for (importer, imported), where in sorted(_arrows().items())
        if not _allowed(importer, imported) and (importer, imported) not in KNOWN_EXCEPTIONS
    ]
    assert not wrong, "imports against the package map:\n" + "\n".join(wrong)


def test_every_known_exception_is_still_taken() -> None:
    arrows = _arrows()
    stale = [f"{a} → {b}" for (a, b) in KNOWN_EXCEPTIONS if (a, b) not in arrows]
    assert not stale, f"no longer imported; remove from KNOWN_EXCEPTIONS: {stale}"
    allowed_anyway = [f"{a} → {b}" for (a, b) in KNOWN_EXCEPTIONS if _allowed(a, b)]
    assert not allowed_anyway, f"allowed by the map, not exceptions: {allowed_anyway}"


def _circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in sorted(edges.get(module, ())):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return circles


def test_modules_import_one_another_without_circles() -> None:
    edges = {name: {t for t, _ in targets} for name, targets in _module_imports().items()}
    assert _circles(edges) == []


def test_the_circle_finder_finds_a_circle_and_the_map_refuses_a_wrong_arrow() -> None:
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _circles({"a": {"b"}, "b": set()}) == []
    assert not _allowed("ir", "passes") and not _allowed("runtime", "passes")
    assert not _allowed("errors", "ir") and _allowed("limits", "errors")
    assert _allowed("passes", "target") and _allowed("runtime", "errors")


def test_docs_architecture_md_draws_the_arrows_this_test_allows() -> None:
    doc = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    drawn: dict[str, frozenset[str]] = {}
    for row in re.findall(r"^\| `([\w.]+)` \|.*\| ([^|]+) \|$", doc, re.M):
        part, imports = row
        drawn[part] = frozenset(re.findall(r"`([\w.]+)`", imports))
    assert drawn == {part: ALLOWED[part] for part in ALLOWED if part not in LEAVES}
    leaves = doc.split("Every part may import the leaves", 1)[1].split("\n\n", 1)[0]
    assert set(re.findall(r"`(\w+)`", leaves)) - {"__version__"} == LEAVES - {"akidac"}
