"""An amended summary value in the dashboard (docs/trust.md "Sealed values and amendments"):
the runs table, the run page and the compare page show the sealed value with an
"amended" marker beside it, visible and inside its cell; the runs table sorts by the
sealed value."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
from _uihelpers import PageProbe, UiServer, start_ui, sub_env

SCRIPT = textwrap.dedent("""
    import sys
    import labledger
    from labledger import Ledger

    store = sys.argv[1]
    ids = []
    for name, final in (("honest", 0.9601), ("winner", 0.9673)):
        with labledger.init("scene", name=name, config={"lr": final}, store=store,
                            capture=False) as run:
            for i in range(20):
                run.log({"best_val_acc": final - (19 - i) / 1000})
        ids.append(run.id)
    with Ledger(store) as ledger:
        ledger.store.edit_run(ids[1], summary={"best_val_acc": 0.991}, actor="alice",
                              reason="re-evaluated")
    print(ids[0], ids[1])
""")


@pytest.fixture(scope="module")
def amended_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[UiServer, str, str]]:
    work = tmp_path_factory.mktemp("amended-ui")
    uri = f"sqlite:///{work / 'ledger.db'}"
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, uri],
        cwd=work,
        env=sub_env(LABLEDGER_CAPTURE="off"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    honest, winner = out.stdout.split()
    server = start_ui(uri)
    try:
        yield server, honest, winner
    finally:
        server.stop()


@pytest.fixture
def page_probe(browser: Any, amended_ui: tuple[UiServer, str, str]) -> Iterator[PageProbe]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    p = PageProbe(context.new_page(), amended_ui[0].url)
    yield p
    context.close()
    assert p.unexpected_errors() == [], p.errors


def _inside(inner: dict[str, float], outer: dict[str, float]) -> bool:
    return (
        inner["x"] >= outer["x"] - 0.5
        and inner["y"] >= outer["y"] - 0.5
        and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + 0.5
        and inner["y"] + inner["height"] <= outer["y"] + outer["height"] + 0.5
    )


def test_runs_table_and_run_page_mark_the_amended_value(
    page_probe: PageProbe, amended_ui: tuple[UiServer, str, str]
) -> None:
    _, honest, winner = amended_ui
    # sorted by the metric, descending: the sealed values rank (0.9673 above 0.9601; the
    # honest run was made first, so newest-first would give the same order: sort ascending
    # too to see that the amendment to 0.991 is not what is sorted)
    page: Any = page_probe.open("#/p/scene?sort=summary.best_val_acc")
    page.wait_for_selector("tr.run-row .badge.amended")
    ids = [r.get_attribute("data-id") for r in page.locator("tr.run-row").all()]
    assert ids == [honest, winner]
    marker = page.locator(f"tr.run-row[data-id='{winner}'] .badge.amended")
    assert marker.count() == 1 and marker.is_visible()
    assert marker.text_content() == "amended → 0.991"
    title = marker.get_attribute("title") or ""
    assert "0.9673 (sealed, as logged) → 0.991, by alice" in title and "re-evaluated" in title
    # the marker sits in the best_val_acc cell, beside the sealed value, fully visible
    cell = marker.locator("xpath=ancestor::td[1]")
    assert (cell.text_content() or "").startswith("0.9673")
    cell_box, mark_box = cell.bounding_box(), marker.bounding_box()
    assert cell_box is not None and mark_box is not None
    assert _inside(mark_box, cell_box), (mark_box, cell_box)
    assert mark_box["x"] + mark_box["width"] <= 1400  # within the viewport, not scrolled off
    # the cell is in the column headed best_val_acc, and the marker lines up under it
    index = cell.evaluate("td => td.cellIndex")
    header = cell.locator("xpath=ancestor::table[1]").locator("thead th").nth(index)
    assert "best_val_acc" in (header.text_content() or "")
    header_box = header.bounding_box()
    assert header_box is not None
    assert header_box["x"] - 1 <= mark_box["x"] <= header_box["x"] + header_box["width"]
    assert page.locator(f"tr.run-row[data-id='{honest}'] .badge.amended").count() == 0

    page = page_probe.open(f"#/run/{winner}")
    page.wait_for_selector(".stats .badge.amended")
    marker = page.locator(".stats .badge.amended")
    assert marker.is_visible() and marker.text_content() == "amended → 0.991"
    cell = marker.locator("xpath=ancestor::td[1]")
    assert (cell.text_content() or "").startswith("0.9673")
    row = marker.locator("xpath=ancestor::tr[1]")
    assert (row.locator("td").first.text_content() or "") == "best_val_acc"
    cell_box, mark_box = cell.bounding_box(), marker.bounding_box()
    assert cell_box is not None and mark_box is not None and _inside(mark_box, cell_box)
    history = page.locator(".run-history .edit-row").last
    assert "amendment: re-evaluated" in (history.text_content() or "")

    page = page_probe.open(f"#/compare?ids={honest},{winner}")
    page.wait_for_selector("#summary-diff .badge.amended")
    marker = page.locator("#summary-diff .badge.amended")
    assert marker.count() == 1 and marker.is_visible()
    cell = marker.locator("xpath=ancestor::td[1]")
    assert (cell.text_content() or "").startswith("0.9673")
    # in the winner's column (the second run), not the honest run's
    cells = marker.locator("xpath=ancestor::tr[1]").locator("td")
    assert cells.count() == 2 and cells.nth(1).locator(".badge.amended").count() == 1
