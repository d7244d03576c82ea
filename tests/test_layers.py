"""The layer contract of ``src/labledger``: every import points down, no module imports itself
back, and no package reaches into another package's private modules.

Read from the source with :mod:`ast`, so imports inside functions count as much as those at
the top of a module (they are what used to hide circles). Imports under
``if TYPE_CHECKING:`` count for the direction of imports (a lower layer names no type of a
higher one) but not for circles (they never run).
Allowed upward edges stay in the graph when it is searched for circles: an exception to the
direction rule is not an exception to the no-circle rule.
docs/architecture.md draws the same layers; change both together.
"""

from __future__ import annotations

import ast
import functools
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
    ("public API", ["labledger", "labledger._demo"]),
    ("integrations", ["labledger.integrations"]),
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
            "labledger._lazy",
            "labledger._limits",
            "labledger._media",
            "labledger._mlflow_map",
            "labledger._names",
            "labledger._procinfo",
            "labledger._settings",
            "labledger._values",
        ],
    ),
]


# Upward imports accepted on purpose, each with its reason. Keep this list short: it is empty
# today (the integrations are written over ``labledger.tracking``, below the public API that
# re-exports ``autolog``). An entry here still counts when the graph is searched for circles.
_TABLE = "labledger.store._backends"
_TABLE_REASON = (
    "the back-end table names, by string, the class that opens each URI scheme; it is loaded "
    "when such a URI is opened, so ``import labledger`` stays cheap"
)
ALLOWED_UPWARD: dict[tuple[str, str], str] = {
    (_TABLE, "labledger.artifacts"): _TABLE_REASON,
    (_TABLE, "labledger.remote"): _TABLE_REASON,
}

# Edges that close a circle the graph still has, each with its reason. Without them the graph
# has no circle; each must still close one (else remove it here and in docs/architecture.md).
CYCLE_CLOSING: dict[tuple[str, str], str] = {
    (_TABLE, "labledger.remote"): (
        "open_store() opens remote's HttpStore, which implements the Store protocol of "
        "labledger.store: a circle at run time, through the table, never at import"
    ),
    (_TABLE, "labledger.artifacts"): (
        "open_blob_store() (artifacts) looks the scheme up in store's table, which names "
        "artifacts' blob stores: a circle at run time, through the table, never at import"
    ),
    (_TABLE, "labledger.store.sql"): (
        "SqlStore keeps rich results' bytes in the blob store open_blobs() opens, and the "
        "table names SqlStore: a circle at run time, through the table, never at import"
    ),
}

# Who owns a private module. A module's *package* is its top-level subpackage
# (``labledger.store``, ``labledger.server`` with ``server.mlflow``, ...); the top-level
# ``labledger/_x.py`` modules belong to the root package ``labledger``. A private module is one
# with a ``_`` component below ``labledger``. Another package uses the owner's public names
# (its ``__init__`` and its ``__all__``), never the private module itself, with two
# exceptions, listed here:
#
# - the shared kernel: the base layer's modules are the root's kernel (exceptions, settings,
#   values, limits, ...): every package may import them, as it would a small library;
# - the root's front end: ``labledger.cli`` is the command line of the root package, so it may
#   import the root's own reader modules too (``_ledger``, ``_cite``, ``_attest``, ``_demo``).
SHARED_KERNEL: frozenset[str] = frozenset(
    name for layer, modules in LAYERS if layer == "base" for name in modules
)
ROOT_FRONT_END: dict[str, frozenset[str]] = {
    "labledger.cli": frozenset(
        {"labledger._ledger", "labledger._cite", "labledger._attest", "labledger._demo"}
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


@functools.cache
def _parse(path: Path, text: str) -> ast.Module:
    return ast.parse(text, str(path))


def _tree(path: Path) -> ast.Module:
    return _parse(path, path.read_text())


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
    for node in _nodes(_tree(path), type_checking):
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
    found.extend(imports_by_name(module))
    return [(t, line) for t, line in found if t != module]


def imports_by_name(module: str) -> list[tuple[str, int]]:
    """Modules imported with :mod:`importlib` from a name, in the two places that do it:
    the back-end table's ``"module:Name"`` strings (loaded when a URI is opened) and a
    package's ``_LAZY`` table (``name -> submodule``, loaded by its ``__getattr__``)."""
    path = MODULES[module]
    tree = _tree(path)
    found = []
    if module == _TABLE:
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                target, sep, attr = node.value.partition(":")
                if sep and attr.isidentifier() and target in MODULES:
                    found.append((target, node.lineno))
    if path.name == "__init__.py":
        for node in tree.body:
            value = node.value if isinstance(node, ast.AnnAssign | ast.Assign) else None
            targets = (
                [node.target] if isinstance(node, ast.AnnAssign) else getattr(node, "targets", [])
            )
            if not isinstance(value, ast.Dict) or not any(
                isinstance(t, ast.Name) and t.id == "_LAZY" for t in targets
            ):
                continue
            for v in value.values:
                if isinstance(v, ast.Constant) and isinstance(v.value, str):
                    lazy = _resolve(f"{module}.{v.value}")
                    if lazy:
                        found.append((lazy, v.lineno))
    return found


def import_graph() -> dict[str, set[str]]:
    """What each module imports when it runs: allowed upward edges included."""
    return {m: {t for t, _ in imports_of(m)} for m in MODULES}


def package_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 1 and (PKG / parts[1] / "__init__.py").exists():
        return ".".join(parts[:2])
    return "labledger"


def is_private(module: str) -> bool:
    return any(part.startswith("_") for part in module.split(".")[1:])


def foreign_private_imports() -> list[str]:
    """``module:line imports target``: every import of another package's private module."""
    found = []
    for module in sorted(MODULES):
        mine = package_of(module)
        for target, line in imports_of(module, type_checking=True):
            if not is_private(target) or package_of(target) == mine:
                continue
            if target in SHARED_KERNEL or target in ROOT_FRONT_END.get(mine, frozenset()):
                continue
            found.append(f"{module}:{line} imports {target}")
    return sorted(set(found))


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
    """Allowed upward edges count; only the edges listed in CYCLE_CLOSING are taken out."""
    graph = import_graph()
    for source, target in CYCLE_CLOSING:
        graph[source].discard(target)
    cycles = _cycles(graph)
    assert not cycles, "modules that import each other, directly or through others:\n" + "\n".join(
        " <-> ".join(c) for c in cycles
    )


def test_each_listed_cycle_closing_edge_still_closes_a_circle() -> None:
    """An entry of CYCLE_CLOSING that no longer closes a circle is removed."""
    for edge in CYCLE_CLOSING:
        graph = import_graph()
        for other in CYCLE_CLOSING:
            if other != edge:
                graph[other[0]].discard(other[1])
        assert edge[1] in graph[edge[0]], edge
        assert any(edge[0] in c and edge[1] in c for c in _cycles(graph)), edge


def test_no_package_imports_another_packages_private_module() -> None:
    """``from ..store._locate import x`` from ``artifacts`` is refused: ``from ..store import x``."""
    offenders = foreign_private_imports()
    assert not offenders, (
        "imports of another package's private module (export the name from that package's "
        "__init__ and its __all__, and import it from there):\n" + "\n".join(offenders)
    )


def test_the_checker_sees_every_back_end_the_table_names() -> None:
    """``store/_backends.py`` loads its classes by name; this checker counts each named module
    as an import of the table, so the direction, privacy and circle checks see them."""
    from labledger.store._backends import BLOB_BACKENDS, STORE_BACKENDS

    targets = {t for t, _ in imports_of(_TABLE)}
    for spec in {*STORE_BACKENDS.values(), *BLOB_BACKENDS.values()}:
        module = spec.partition(":")[0]
        assert module in MODULES, spec
        assert module in targets, spec


def test_the_cycle_check_keeps_allowed_upward_edges() -> None:
    """An allowed upward edge that closes a circle is still a circle."""
    key = ("labledger.store._layer_probe_", "labledger.tracking._run")
    ALLOWED_UPWARD[key] = "probe"
    try:
        graph = import_graph()
        graph["labledger.store._layer_probe_"] = {"labledger.tracking._run"}
        graph["labledger.tracking._run"] = graph["labledger.tracking._run"] | {
            "labledger.store._layer_probe_"
        }
        assert any("labledger.store._layer_probe_" in c for c in _cycles(graph))
    finally:
        del ALLOWED_UPWARD[key]


def test_the_checker_sees_a_foreign_private_import(tmp_path: Path) -> None:
    (tmp_path / "probe.py").write_text(
        "from ..store._locate import scheme_family\nfrom .._exceptions import UsageError\n"
    )
    MODULES["labledger.remote._layer_probe_"] = tmp_path / "probe.py"
    try:
        offenders = foreign_private_imports()
    finally:
        del MODULES["labledger.remote._layer_probe_"]
    assert offenders == ["labledger.remote._layer_probe_:1 imports labledger.store._locate"]


# Only the store speaks SQL: these packages are imported nowhere else in src/labledger.
SQL_PACKAGES = ("sqlalchemy", "alembic", "psycopg", "psycopg2")
CONCRETE_STORES = ("SqlStore", "LiteStore", "HttpStore")


def _external_imports(module: str) -> list[tuple[str, int]]:
    found = []
    for node in _nodes(_tree(MODULES[module]), type_checking=True):
        if isinstance(node, ast.Import):
            found += [(alias.name.split(".")[0], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.append((node.module.split(".")[0], node.lineno))
    return found


def test_no_sql_outside_the_store() -> None:
    """Tokens, policies, export rows, MLflow objects and a value the database refuses are
    Store roles and typed errors: no module outside ``store/`` imports SQLAlchemy."""
    offenders = [
        f"{m}:{line} imports {name}"
        for m in sorted(MODULES)
        if not (m == "labledger.store" or m.startswith("labledger.store."))
        for name, line in _external_imports(m)
        if name in SQL_PACKAGES
    ]
    assert not offenders, offenders


def _is_store(node: ast.expr) -> bool:
    return (isinstance(node, ast.Name) and node.id == "store") or (
        isinstance(node, ast.Attribute) and node.attr == "store"
    )


def store_probes(module: str) -> list[str]:
    """``getattr(store, ...)`` and ``isinstance(store, <a concrete store class>)``: a role
    is asked for with ``isinstance`` on its Protocol (``store.ReproVerdicts``, ...)."""
    found = []
    for node in ast.walk(_tree(MODULES[module])):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args):
            continue
        if node.func.id in ("getattr", "hasattr") and _is_store(node.args[0]):
            found.append(f"{module}:{node.lineno} {node.func.id}(store, ...)")
        if node.func.id == "isinstance" and len(node.args) == 2 and _is_store(node.args[0]):
            names = {n.id for n in ast.walk(node.args[1]) if isinstance(n, ast.Name)}
            names |= {n.attr for n in ast.walk(node.args[1]) if isinstance(n, ast.Attribute)}
            if names & set(CONCRETE_STORES):
                found.append(f"{module}:{node.lineno} isinstance(store, {sorted(names)})")
    return found


def test_no_store_probes_outside_the_store() -> None:
    offenders = [
        probe
        for m in sorted(MODULES)
        if not (m == "labledger.store" or m.startswith("labledger.store."))
        for probe in store_probes(m)
    ]
    assert not offenders, offenders


def test_the_probe_check_sees_a_probe(tmp_path: Path) -> None:
    (tmp_path / "probe.py").write_text(
        "def f(store, run):\n"
        "    getattr(store, 'engine', None)\n"
        "    isinstance(run.store, (SqlStore, dict))\n"
        "    isinstance(store, ReproVerdicts)\n"
    )
    MODULES["labledger.server._layer_probe_"] = tmp_path / "probe.py"
    try:
        probes = store_probes("labledger.server._layer_probe_")
    finally:
        del MODULES["labledger.server._layer_probe_"]
    assert [p.split(" ")[0] for p in probes] == [
        "labledger.server._layer_probe_:2",
        "labledger.server._layer_probe_:3",
    ]


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
