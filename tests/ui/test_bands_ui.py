"""Replicate sets in the dashboard: mean ± std bands on the compare and group pages (a
toggle draws the single runs), the group page ranked by the study's metric, and the
analysis page's leaderboard by configuration (real server, real chromium)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from _uihelpers import PageProbe, start_ui

import labledger

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, dict[str, Any]]]:
    store = f"sqlite:///{tmp_path_factory.mktemp('bands') / 's.db'}"
    study = labledger.init(
        "bands",
        store=store,
        group="sweep-b",
        job_type="study",
        capture=False,
        config={"metric": "val_acc", "direction": "maximize"},
    )
    ids: dict[str, Any] = {"study": study.id, "lr": {}}
    for lr, base in ((0.1, 0.9), (0.01, 0.8), (0.5, 0.6)):
        for seed in range(3 if lr != 0.5 else 1):
            with labledger.init(
                "bands",
                store=store,
                group="sweep-b",
                capture=False,
                config={"lr": lr, "seed": seed},
                seed=seed,
            ) as run:
                for step in range(20):
                    run.log(
                        {
                            "train/loss": 1 / (step + 1) + seed * 0.01,
                            "val_acc": base * (1 - 1 / (step + 2)) + seed * 0.01,
                        },
                        step=step,
                    )
            ids["lr"].setdefault(lr, []).append(run.id)
    study.finish()
    server = start_ui(store)
    try:
        yield server, ids
    finally:
        server.stop()


@pytest.fixture
def probe(browser: Any, scene: tuple[Any, dict[str, Any]]) -> Iterator[PageProbe]:
    server, _ = scene
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    try:
        p = PageProbe(context.new_page(), server.url)
        yield p
        assert p.dialogs == [] and p.unexpected_errors() == []
    finally:
        context.close()


def test_compare_draws_replicate_sets_as_bands_and_toggles_single_runs(
    probe: PageProbe, scene: tuple[Any, dict[str, Any]]
) -> None:
    ids = scene[1]["lr"]
    runs = ids[0.1] + ids[0.01] + ids[0.5]
    probe.open(f"#/compare?ids={','.join(runs)}&keys=val_acc")
    chart = ".chart-grid .chart[data-key='val_acc']"
    # two sets of three seeds: two bands, three lines (two means and the single run)
    probe.wait_js(f"document.querySelector(\"{chart}\")?.dataset.bands === '2'")
    assert probe.page.get_attribute(chart, "data-series") == "3"
    assert "mean ± std" in probe.page.inner_text(f"{chart} .chart-meta")
    probe.page.check("input.single-runs")
    probe.wait_js(f"document.querySelector(\"{chart}\").dataset.series === '7'")
    assert probe.page.get_attribute(chart, "data-bands") == "0"
    assert "single=1" in probe.page.evaluate("location.hash")
    probe.screenshot("compare-bands")


def test_group_page_ranks_by_the_study_metric_and_draws_bands(
    probe: PageProbe, scene: tuple[Any, dict[str, Any]]
) -> None:
    ids = scene[1]["lr"]
    probe.open("#/group/sweep-b")
    # the study says maximize val_acc: not train/loss, the first key by name
    assert probe.page.input_value("select.rank-metric") == "val_acc"
    top = probe.page.evaluate("document.querySelector('table.ranked-runs tbody tr').dataset.run")
    assert top == ids[0.1][2]  # lr 0.1, seed 2: the highest val_acc
    probe.wait_js("document.querySelector('#sec-bands .chart')?.dataset.bands === '2'", timeout=15)
    assert probe.page.get_attribute("#sec-bands .group-bands", "data-metric") == "val_acc"
    probe.page.check("#sec-bands input.single-runs")
    probe.wait_js("document.querySelector('#sec-bands .chart').dataset.series === '7'")
    probe.screenshot("group-bands")


def test_analysis_leaderboard_by_configuration(probe: PageProbe) -> None:
    page = probe.open("#/p/bands/analysis?metric=val_acc&max=1&by=config")
    probe.wait_js("document.querySelectorAll('table.config-board tbody tr').length === 3")
    rows = page.locator("table.config-board tbody tr")
    assert rows.first.locator("td.tie").inner_text() == "top"
    assert "±" in rows.first.inner_text()
    assert "one seed: noise unknown" in rows.nth(2).inner_text()
    assert page.locator("#importance .warn-box").count() == 1  # 7 runs: a warning
    probe.screenshot("analysis-by-config")
