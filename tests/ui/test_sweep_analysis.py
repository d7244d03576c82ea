"""The analysis page on a sweep (issue #26): the study's parent run carries keys of its own
(direction, metric) and no metric; the trials carry lr on a log scale. The parent's keys
are no axes, every trial's line reaches the lr axis, the scatter's x is a numeric key that
varies, and the importance bars are graded, with their Spearman text in full."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _uihelpers import PageProbe, UiServer, start_ui

import labledger

TRIALS = 24  # 20 runs or more: importance is drawn as bars (fewer show rank correlations)


@pytest.fixture(scope="module")
def sweep_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiServer]:
    where: Path = tmp_path_factory.mktemp("sweep-ui")
    uri = f"sqlite:///{where / 'ledger.db'}"
    opts = {"store": uri, "capture": False, "console": False, "system_metrics": False}
    parent = labledger.init("sweep", name="study", job_type="study", **opts)
    parent.config.update({"study_name": "study", "direction": "maximize", "metric": "value"})
    for i in range(TRIALS):
        lr = 10 ** (-4 + 3 * i / (TRIALS - 1))
        layers = 1 + i % 3
        child = labledger.init(
            "sweep", name=f"trial-{i}", parent_run_id=parent.id, job_type="trial", **opts
        )
        child.config.update({"lr": lr, "layers": layers, "act": ["relu", "tanh"][i % 2]})
        child.summary["value"] = 1 - (math.log10(lr) + 2.5) ** 2 / 4 + 0.03 * layers
        child.finish()
    parent.finish()
    server = start_ui(uri)
    yield server
    server.stop()


def test_sweep_analysis_axes_scatter_and_importance(browser: Any, sweep_ui: UiServer) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = PageProbe(context.new_page(), sweep_ui.url)
    try:
        pg = page.open("#/p/sweep/analysis?metric=value")
        page.wait_js("document.querySelector('canvas.parcoords')?.dataset.axisKeys")
        page.wait_js(
            "+document.querySelector('#importance')?.querySelectorAll('.bar-row').length >= 3"
        )
        axes = json.loads(pg.locator("canvas.parcoords").get_attribute("data-axis-keys") or "[]")
        assert "direction" not in axes and "metric" not in axes and "study_name" not in axes
        assert "lr" in axes and "layers" in axes
        linked = json.loads(pg.locator("canvas.parcoords").get_attribute("data-linked") or "[]")
        assert linked[axes.index("lr")] == TRIALS  # every trial's line reaches the lr axis
        assert pg.locator("canvas.parcoords").get_attribute("data-lines") == str(TRIALS)
        x = pg.locator("#scatter select[aria-label='scatter x']").input_value()
        assert x in ("config.lr", "config.layers")  # numeric and varying, not config.direction
        assert pg.locator("canvas.scatter").get_attribute("data-points") == str(TRIALS)
        values = pg.eval_on_selector_all(
            "#importance .bar-value", "els => els.map(e => parseFloat(e.textContent))"
        )
        assert len([v for v in values if 0 < v < 1]) >= 2, values  # graded, not 1 and 0
        # the Spearman text is shown in full, on a line of its own
        clipped = pg.eval_on_selector_all(
            "#importance .bar-detail",
            "els => els.filter(e => e.scrollWidth > e.clientWidth + 1).length",
        )
        assert clipped == 0
        assert "Spearman" in pg.locator("#importance").inner_text()
        assert pg.locator("#importance .bar-rho").count() >= 2  # the correlation drawn too
        assert page.unexpected_errors() == [], page.errors
    finally:
        context.close()
