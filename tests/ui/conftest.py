"""Fixtures for the dashboard tests: a store filled by real runs, ``labledger ui`` serving
it in a subprocess, and Debian's chromium driven by Playwright.

The store and the server are shared by the whole folder (session scope) so that the
browser tests stay within their time budget; tests only read from them, except the
live-update test, which starts its own run.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from _uihelpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PATCH_MARKER,
    POPULATE,
    PageProbe,
    UiServer,
    start_ui,
    sub_env,
)


@pytest.fixture(scope="session")
def ui_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite store with 8 real runs in 2 projects, logged from a dirty git checkout."""
    work = tmp_path_factory.mktemp("ui-repo")
    git = ["git", "-c", "user.email=t@example.org", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=work, check=True)
    (work / "train.py").write_text("print('train')\n")
    subprocess.run([*git, "add", "train.py"], cwd=work, check=True)
    subprocess.run([*git, "commit", "-qm", "init"], cwd=work, check=True)
    (work / "train.py").write_text(f"print('train')\nBANNER = '{PATCH_MARKER}'\n")
    (work / "populate.py").write_text(POPULATE)
    uri = f"sqlite:///{work / 'store' / 'ledger.db'}"
    proc = subprocess.run(
        [sys.executable, "populate.py", uri],
        cwd=work,
        env=sub_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return uri


@pytest.fixture(scope="session")
def ui_server(ui_store: str) -> Iterator[UiServer]:
    server = start_ui(ui_store)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (make browsers)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def probe(browser: Any, ui_server: UiServer) -> Iterator[PageProbe]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    p = PageProbe(page, ui_server.url)
    yield p
    context.close()
    assert p.dialogs == [], f"a dialog fired: {p.dialogs}"
    assert p.unexpected_errors() == [], f"the page logged errors: {p.errors}"
