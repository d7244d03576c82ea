"""The run page's rich results (images with a step slider and captions, a sortable and
filterable table, a confusion-matrix heat map, PR/ROC curves with their AUC, histograms
over steps) and the compare page's side-by-side view, in a real browser; positions and
sizes asserted, screenshots for docs/img taken here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _uihelpers import PageProbe, UiServer, start_ui

import labledger

N_RUNS = 12  # more than W&B's 10-run cap


@pytest.fixture(scope="module")
def media_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[UiServer, list[str]]]:
    uri = f"sqlite:///{tmp_path_factory.mktemp('media-ui') / 'ledger.db'}"
    rng = np.random.default_rng(0)
    ids = []
    for r in range(N_RUNS):
        with labledger.init("media", name=f"m{r}", store=uri, capture=False) as run:
            for s in range(3):
                img = np.zeros((32, 32, 3), dtype=np.uint8)
                img[:, : 10 * (s + 1)] = (40 * r % 255, 120, 200)
                run.log(
                    {
                        "samples": labledger.Image(img, caption=f"run {r} step {s}"),
                        "loss": 1.0 / (s + 1),
                    },
                    step=s,
                )
                run.log({"weights": labledger.Histogram(rng.normal(s, 1, 500), bins=20)}, step=s)
            y = rng.integers(0, 2, 200)
            scores = np.clip(y * 0.3 + rng.random(200) * 0.7, 0, 1)
            run.log(
                {
                    "cm": labledger.ConfusionMatrix(
                        y_true=y, y_pred=(scores > 0.5).astype(int), labels=[0, 1]
                    ),
                    "pr": labledger.Curve.pr(y, scores),
                    "roc": labledger.Curve.roc(y, scores),
                    "preds": labledger.Table(
                        rows=[[i, f"c{i % 3}", float(scores[i])] for i in range(20)],
                        columns=["id", "label", "score"],
                    ),
                },
                step=2,
            )
        ids.append(run.id)
    server = start_ui(uri)
    yield server, ids
    server.stop()


@pytest.fixture
def page_probe(browser: Any, media_ui: tuple[UiServer, list[str]]) -> Iterator[PageProbe]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    p = PageProbe(context.new_page(), media_ui[0].url)
    yield p
    context.close()
    assert p.unexpected_errors() == [], p.errors


DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"


def _shot(page: Any, selector: str, name: str) -> Path:
    """The section, as docs/results.md shows it."""
    DOCS_IMG.mkdir(parents=True, exist_ok=True)
    page.locator(selector).screenshot(path=str(DOCS_IMG / name))
    return DOCS_IMG / name


def _box(page: Any, selector: str) -> dict[str, float]:
    box = page.locator(selector).first.bounding_box()
    assert box is not None, selector
    return box


def test_run_page_shows_rich_results(
    page_probe: PageProbe, media_ui: tuple[UiServer, list[str]]
) -> None:
    run_id = media_ui[1][0]
    page = page_probe.open(f"#/run/{run_id}")
    page.wait_for_selector("#sec-media .media-panel[data-key='samples'] img.media-image")
    page_probe.wait_js("document.querySelectorAll('#sec-media .media-panel').length === 6")
    page_probe.wait_js(
        "document.querySelector('.media-panel[data-key=\"cm\"] td.cm-cell') !== null"
    )
    page_probe.wait_js(
        "document.querySelectorAll('.media-panel[data-key=\"preds\"] tbody tr').length === 20"
    )
    page_probe.wait_js("document.querySelector('.media-panel[data-key=\"roc\"] polyline') !== null")
    # the section sits right under the metrics, panels in a grid of at least 2 columns
    metrics, media = _box(page, "#sec-metrics"), _box(page, "#sec-media")
    assert media["y"] >= metrics["y"] + metrics["height"] - 1
    a, b = _box(page, ".media-panel >> nth=0"), _box(page, ".media-panel >> nth=1")
    assert abs(a["y"] - b["y"]) < 2 and b["x"] > a["x"] + a["width"] - 1
    # the image: its logged size at least, its caption under it; the slider moves steps
    img = _box(page, ".media-panel[data-key='samples'] img.media-image")
    assert img["width"] >= 32 and img["height"] >= 32
    cap = _box(page, ".media-panel[data-key='samples'] .media-caption")
    assert cap["y"] >= img["y"] + img["height"] - 1
    assert (
        page.locator(".media-panel[data-key='samples'] .media-caption").text_content()
        == "run 0 step 2"
    )
    page.locator(".media-panel[data-key='samples'] input.media-slider").fill("0")
    page_probe.wait_js(
        "document.querySelector('.media-panel[data-key=\"samples\"] .media-caption').textContent === 'run 0 step 0'"
    )
    assert page.locator(".media-panel[data-key='samples'] .media-step").text_content() == "step 0"
    # the confusion matrix: a 2x2 heat map, counts then normalised rows
    cells = page.locator(".media-panel[data-key='cm'] td.cm-cell")
    assert cells.count() == 4
    counts = [int(cells.nth(i).text_content()) for i in range(4)]
    assert sum(counts) == 200
    cell = cells.nth(0).bounding_box()
    assert cell["width"] >= 30 and cell["height"] >= 15
    page.locator(".media-panel[data-key='cm'] button.cm-toggle").click()
    row = [float(cells.nth(i).text_content()) for i in range(2)]
    assert sum(row) == pytest.approx(1.0, abs=0.011)
    # curves with their AUC
    assert (
        page.locator(".media-panel[data-key='roc'] .curve-label")
        .text_content()
        .startswith("ROC · AUC 0.")
    )
    assert (
        page.locator(".media-panel[data-key='pr'] .curve-label")
        .text_content()
        .startswith("PR · AP 0.")
    )
    curve = _box(page, ".media-panel[data-key='roc'] svg.media-curve")
    assert curve["width"] == 260 and curve["height"] == 220
    # the table sorts by a header and filters rows
    table = '.media-panel[data-key="preds"]'
    page.locator(f"{table} th", has_text="score").click()
    page.locator(f"{table} th", has_text="score").click()  # descending
    scores = [
        float(page.locator(f"{table} tbody tr").nth(i).locator("td").nth(2).text_content())
        for i in range(3)
    ]
    assert scores == sorted(scores, reverse=True)
    page.locator(f"{table} input.media-filter").fill("c1")
    page_probe.wait_js(f"document.querySelectorAll('{table} tbody tr').length === 7")
    # histograms over steps: 20 bars, the slider goes back to step 0
    assert page.locator(".media-panel[data-key='weights'] rect.hist-bar").count() == 20
    page.locator(".media-panel[data-key='samples'] input.media-slider").fill("2")
    page_probe.wait_js(
        "document.querySelector('.media-panel[data-key=\"samples\"] .media-caption').textContent === 'run 0 step 2'"
    )
    path = _shot(page, "#sec-media", "rich-results.png")
    assert path.stat().st_size > 10_000


def test_compare_page_shows_one_key_for_every_run_at_one_step(
    page_probe: PageProbe, media_ui: tuple[UiServer, list[str]]
) -> None:
    ids = media_ui[1]
    page = page_probe.open(f"#/compare?ids={','.join(ids)}")
    page.wait_for_selector("#sec-compare-media .media-panel")
    page_probe.wait_js(
        f"document.querySelectorAll('#sec-compare-media .media-panel img.media-image').length === {N_RUNS}"
    )
    page.locator("#sec-compare-media select.compare-media-key").select_option("samples")
    page.locator("#sec-compare-media input.compare-media-step").fill("1")
    page.locator("#sec-compare-media input.compare-media-step").dispatch_event("change")
    page_probe.wait_js(
        "[...document.querySelectorAll('#sec-compare-media .media-step')].filter((e) => e.textContent === 'step 1').length === "
        f"{N_RUNS}"
    )
    titles = page.locator("#sec-compare-media .media-key").all_text_contents()
    assert titles == [f"m{r}" for r in range(N_RUNS)]  # every run, no cap of 10
    first, second = (
        _box(page, "#sec-compare-media .media-panel >> nth=0"),
        _box(page, "#sec-compare-media .media-panel >> nth=1"),
    )
    assert abs(first["y"] - second["y"]) < 2 and second["x"] > first["x"]  # side by side
    assert abs(first["width"] - second["width"]) < 2
    caps = page.locator("#sec-compare-media .media-caption").all_text_contents()
    assert caps == [f"run {r} step 1" for r in range(N_RUNS)]
    _shot(page, "#sec-compare-media", "compare-rich-results.png")
