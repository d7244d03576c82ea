"""The dashboard shows the hierarchy: a run page lists its children ranked by the study's
metric, and the group page ranks a sweep's runs (real server, real chromium)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _uihelpers import PageProbe, start_ui

import labledger

XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture
def page(
    tmp_path: Path, browser: Any
) -> Iterator[tuple[PageProbe, labledger.Run, list[labledger.Run]]]:
    store = f"sqlite:///{tmp_path / 's.db'}"
    parent = labledger.init(
        "ui",
        store=store,
        group="sweep-7",
        job_type="study",
        capture=False,
        config={"direction": "minimize", "metric": "value"},
    )
    kids = []
    for i, value in enumerate([0.5, 0.1, 0.9]):
        kid = labledger.init(
            "ui",
            store=store,
            group="sweep-7",
            job_type="trial",
            capture=False,
            parent_run_id=parent.id,
            name=XSS if i == 2 else f"trial-{i}",
        )
        kid.log({"value": value})
        kid.finish("pruned" if i == 2 else "finished")
        kids.append(kid)
    parent.finish()
    server = start_ui(store)
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    try:
        probe = PageProbe(context.new_page(), server.url)
        yield probe, parent, kids
        assert probe.dialogs == [] and probe.unexpected_errors() == []
    finally:
        context.close()
        server.stop()


def _ranked(probe: PageProbe) -> list[str]:
    result: Any = probe.page.evaluate(
        "Array.from(document.querySelectorAll('table.ranked-runs tbody tr')).map(r => r.dataset.run)"
    )
    return list(result)


@pytest.mark.browser
def test_run_page_lists_children_ranked_and_group_page_ranks_the_sweep(page: Any) -> None:
    probe, parent, kids = page
    probe.open(f"#/run/{parent.id}")
    probe.page.wait_for_selector("#sec-children table.ranked-runs")
    # minimize "value" (the study's direction): 0.1, 0.5, 0.9
    assert _ranked(probe) == [kids[1].id, kids[0].id, kids[2].id]
    assert probe.page.locator("#sec-children .badge.status-pruned").count() == 1
    assert probe.page.locator(f"#sec-children a:text-is('{XSS}')").count() == 1  # shown as text
    assert probe.page.evaluate("document.querySelectorAll('#sec-children img').length") == 0
    probe.page.click("#sec-children button.rank-dir")  # flip to highest first
    assert _ranked(probe) == [kids[2].id, kids[0].id, kids[1].id]
    # a child's page links its group; the group page ranks every run of the sweep
    probe.open(f"#/run/{kids[0].id}")
    assert probe.page.locator("a.run-group").inner_text() == "sweep-7"
    assert probe.page.locator("#sec-children").count() == 0  # no children: no section
    probe.page.click("a.run-group")
    probe.page.wait_for_selector("main[data-loaded='1'] table.ranked-runs")
    # "value" is no higher-is-better name: lowest first; the study run (no value) comes last
    assert _ranked(probe) == [kids[1].id, kids[0].id, kids[2].id, parent.id]
