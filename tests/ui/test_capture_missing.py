"""The run page says what capture did not record, and never "not a git checkout" for a
run whose git capture is merely missing (issue #12 item 2), in a real chromium."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from _uihelpers import PageProbe, start_ui

from labledger.store import open_store


def _run(env: dict[str, Any], name: str) -> dict[str, Any]:
    now = time.time()
    return {
        "id": uuid.uuid4().hex,
        "project": "p",
        "name": name,
        "status": "finished",
        "created_at": now,
        "ended_at": now + 1,
        "env": env,
    }


@pytest.fixture(scope="module")
def runs_and_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], str]]:
    uri = f"sqlite:///{tmp_path_factory.mktemp('ui-missing') / 'ledger.db'}"
    cmd = {"argv": ["train.py"], "cwd": "/tmp"}
    records = {
        "missing": _run({"command": cmd, "missing": ["git", "packages"]}, "missing-git"),
        "nogit": _run({"command": cmd, "python": {"version": "3.11"}}, "outside-git"),
    }
    store = open_store(uri)
    try:
        for r in records.values():
            store.create_run(r)
    finally:
        store.close()
    server = start_ui(uri)
    try:
        yield {k: r["id"] for k, r in records.items()}, server.url
    finally:
        server.stop()


@pytest.fixture
def page_probe(browser: Any, runs_and_url: tuple[dict[str, str], str]) -> Iterator[PageProbe]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    p = PageProbe(context.new_page(), runs_and_url[1])
    yield p
    context.close()
    assert p.unexpected_errors() == [], p.errors


def test_missing_git_capture_is_not_called_not_a_git_checkout(
    page_probe: PageProbe, runs_and_url: tuple[dict[str, str], str]
) -> None:
    ids = runs_and_url[0]
    page = page_probe.open(f"#/run/{ids['missing']}")
    text = page.inner_text("main")
    assert "not a git checkout" not in text
    assert "git state not recorded (capture did not finish before the run ended)" in text
    assert "git, packages (capture did not finish before the run ended)" in text

    page = page_probe.open(f"#/run/{ids['nogit']}")
    assert "not a git checkout" in page.inner_text("main")
