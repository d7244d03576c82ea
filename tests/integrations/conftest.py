"""Fixtures for the framework integration tests: a fresh SQLite store per test (through
LABLEDGER_URI, as a training script would pick it up) and the runnable examples of
docs/integrations.md on sys.path, so the tests run exactly what the docs show."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "integrations"

# the frameworks' own deprecation chatter is not what these tests are about
FRAMEWORK_WARNINGS = [
    "ignore::DeprecationWarning",
    "ignore::PendingDeprecationWarning",
    "ignore::FutureWarning",
    "ignore::UserWarning",
    "ignore::ResourceWarning",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).parent == Path(__file__).parent:
            for spec in FRAMEWORK_WARNINGS:
                item.add_marker(pytest.mark.filterwarnings(spec))


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    uri = f"sqlite:///{tmp_path / 'store' / 'ledger.db'}"
    monkeypatch.setenv("LABLEDGER_URI", uri)
    monkeypatch.setenv("LABLEDGER_CAPTURE", "off")
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    yield uri
    import labledger

    run = labledger.active_run()
    while run is not None:  # a failed test must not leave runs for the next one
        run.finish("killed")
        run = labledger.active_run()


@pytest.fixture
def example() -> Iterator[Any]:
    """Import an example module from examples/integrations by name."""
    sys.path.insert(0, str(EXAMPLES))

    def load(name: str) -> ModuleType:
        return importlib.import_module(name)

    yield load
    sys.path.remove(str(EXAMPLES))


@pytest.fixture
def no_autolog() -> Iterator[None]:
    """Autolog patches stay installed; this turns them off after the test."""
    yield
    from labledger.integrations import FRAMEWORKS, autolog

    autolog(list(FRAMEWORKS), disable=True)


def ledger(uri: str) -> Any:
    import labledger

    return labledger.Ledger(uri)


def one_run(uri: str, project: str) -> dict[str, Any]:
    runs = ledger(uri).runs(project=project)
    assert len(runs) == 1, [(r["name"], r["status"]) for r in runs]
    return dict(runs[0])


def artifacts_of(uri: str, run_id: str) -> dict[str, dict[str, Any]]:
    """Artifact name -> record of the latest version the run produced."""
    return {a["name"]: a for a in ledger(uri).get(run_id)["artifacts"]}


def series(uri: str, run_id: str, key: str) -> list[tuple[int, float]]:
    h = ledger(uri).history(run_id, key)
    return list(zip(h.steps.tolist(), h.values.tolist(), strict=False))


def policy_missing(rec: dict[str, Any]) -> list[str]:
    """What a project policy ``--require seed --require dataset`` would find missing: the
    write core's own check (``store/_core.py``), applied to the run as stored."""
    from labledger.store import missing_for

    return missing_for(rec, ["seed", "dataset"])


@pytest.fixture(autouse=True)
def _no_seed_from_an_earlier_test() -> Iterator[None]:
    """Each test starts in a process no earlier test seeded: ``seed_everything`` keeps the
    last seeding process-wide (a new run reports it), so an earlier test's call would show
    up in this test's ``env.seed.seeded``."""
    from labledger.capture import seeds

    saved = dict(seeds._STATE)
    seeds._STATE.clear()
    yield
    seeds._STATE.clear()
    seeds._STATE.update(saved)
