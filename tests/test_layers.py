"""The layer contract of ``src/labledger``: every import points down, and no module imports itself back.

Read from the source with :mod:`ast`, so imports inside functions count as much as those at
the top of a module (they are what used to hide circles). Imports under
``if TYPE_CHECKING:`` count for the direction of imports (a lower layer names no type of a
higher one) but not for circles (they never run).
docs/architecture.md draws the same layers; change both together.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PKG = SRC / "labledger"

# Top first. A module may import modules of its own layer or of any layer below it.
LAYERS: list[tuple[str, list[str]]] = [
    ("cli", ["labledger.cli"]),
    ("server", ["labledger.server"]),
    ("integrations", ["labledger.integrations"]),
    ("public API", ["labledger", "labledger._demo"]),
    (
        "readers and importers",
        [
            "labledger._attest",
            "labledger._cite",
            "labledger._ledger",
            "labledger.analysis",
            "labledger.importers",
            "labledger.repro",
        ],
    ),
    ("tracking engine", ["labledger.tracking"]),
    ("capture", ["labledger.capture"]),
    ("remote", ["labledger.remote"]),
    ("artifacts", ["labledger.artifacts"]),
    ("store", ["labledger.store"]),
    ("query", ["labledger.query"]),
    (
        "base",
        [
            "labledger._author",
            "labledger._dsse",
            "labledger._exceptions",
            "labledger._html",
            "labledger._limits",
            "labledger._mlflow_map",
            "labledger._names",
            "labledger._procinfo",
            "labledger._settings",
            "labledger._values",
        ],
    ),
]


# Upward imports accepted on purpose, each with its reason. Keep this list short.
ALLOWED_UPWARD: dict[tuple[str, str], str] = {
    ("labledger", "labledger.integrations"): (
        "the public API re-exports autolog, loaded on first use; the integrations are "
        "written over the public API (import labledger), so they sit above it"
    ),
}


def _modules() -> dict[str, Path]:
    mods: dict[str, Path] = {}
    for path in PKG.rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


MODULES = _modules()


def layer_of(module: str) -> int | None:
    best: tuple[int, int] | None = None  # (prefix length, layer index)
    for index, (_name, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            exact_only = prefix == "labledger"
            matches = module == prefix or (not exact_only and module.startswith(prefix + "."))
            if matches and (best is None or len(prefix) > best[0]):
                best = (len(prefix), index)
    return None if best is None else best[1]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _nodes(tree: ast.AST, type_checking: bool) -> Iterator[ast.AST]:
    """Every node; without ``type_checking``, not the bodies of ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if not type_checking and isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str, type_checking: bool = False) -> list[tuple[str, int]]:
    """Internal modules imported by ``module`` (with line numbers), at any depth of the code;
    with ``type_checking``, the imports under ``if TYPE_CHECKING:`` too."""
    path = MODULES[module]
    is_pkg = path.name == "__init__.py"
    package = module if is_pkg else module.rpartition(".")[0]
    found: list[tuple[str, int]] = []
    for node in _nodes(ast.parse(path.read_text(), str(path)), type_checking):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "labledger":
                    target = _resolve(alias.name)
                    if target:
                        found.append((target, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                full = base + ("." + node.module if node.module else "")
            else:
                full = node.module or ""
            if full.split(".")[0] != "labledger":
                continue
            for alias in node.names:
                candidate = f"{full}.{alias.name}"
                target = _resolve(candidate if candidate in MODULES else full)
                if target:
                    found.append((target, node.lineno))
    return [(t, line) for t, line in found if t != module]


def import_graph() -> dict[str, set[str]]:
    return {m: {t for t, _ in imports_of(m) if (m, t) not in ALLOWED_UPWARD} for m in MODULES}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))
    try:
        for v in sorted(graph):
            if v not in index:
                visit(v)
    finally:
        sys.setrecursionlimit(limit)
    return out


def test_every_module_has_a_layer() -> None:
    missing = sorted(m for m in MODULES if layer_of(m) is None)
    assert not missing, f"add these modules to LAYERS (and docs/architecture.md): {missing}"


def test_every_import_points_down() -> None:
    """Type-only imports count here too: a lower layer names a higher one's types through a
    Protocol of its own (capture's and artifacts' ``Run``), never by importing it."""
    upward = []
    for module in sorted(MODULES):
        here = layer_of(module)
        for target, line in imports_of(module, type_checking=True):
            there = layer_of(target)
            if (module, target) in ALLOWED_UPWARD:
                continue
            if here is not None and there is not None and there < here:
                upward.append(
                    f"{module}:{line} ({LAYERS[here][0]}) imports {target} ({LAYERS[there][0]})"
                )
    assert not upward, "imports that point up a layer:\n" + "\n".join(upward)


def test_no_import_cycles() -> None:
    cycles = _cycles(import_graph())
    assert not cycles, "modules that import each other, directly or through others:\n" + "\n".join(
        " <-> ".join(c) for c in cycles
    )


def test_allowed_upward_imports_still_exist() -> None:
    """An exception that is no longer needed is removed from ALLOWED_UPWARD."""
    graph = {m: {t for t, _ in imports_of(m, type_checking=True)} for m in MODULES}
    stale = [edge for edge in ALLOWED_UPWARD if edge[1] not in graph.get(edge[0], set())]
    assert stale == []


def test_library_code_never_imports_the_cli() -> None:
    offenders = [
        f"{m} imports {t}"
        for m in sorted(MODULES)
        if not m.startswith("labledger.cli")
        for t, _ in imports_of(m)
        if t.startswith("labledger.cli")
    ]
    assert not offenders, offenders


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from ..cli._output import fmt_duration\n", "labledger.cli._output"),
        ("def f():\n    from ..remote.http import HttpStore\n", "labledger.remote.http"),
    ],
)
def test_the_checker_sees_imports_inside_functions(
    tmp_path: Path, source: str, expected: str
) -> None:
    """The contract checker itself: a relative import inside a function is found."""
    MODULES["labledger.store._layer_probe_"] = tmp_path / "probe.py"
    (tmp_path / "probe.py").write_text(source)
    try:
        targets = [t for t, _ in imports_of("labledger.store._layer_probe_")]
    finally:
        del MODULES["labledger.store._layer_probe_"]
    assert expected in targets
    assert layer_of(expected) is not None
    assert layer_of(expected) < layer_of("labledger.store._layer_probe_")  # type: ignore[operator]


def test_type_checking_imports_count_for_direction_only(tmp_path: Path) -> None:
    (tmp_path / "probe.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..tracking._run import Run\n"
    )
    MODULES["labledger.store._layer_probe_"] = tmp_path / "probe.py"
    try:
        assert imports_of("labledger.store._layer_probe_") == []
        found = [t for t, _ in imports_of("labledger.store._layer_probe_", type_checking=True)]
        assert found == ["labledger.tracking._run"]
    finally:
        del MODULES["labledger.store._layer_probe_"]
