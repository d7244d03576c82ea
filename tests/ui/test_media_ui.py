"""The run page's rich results (images with a step slider and captions, a sortable and
filterable table, a confusion-matrix heat map, PR/ROC curves with their AUC, histograms
over steps, a step of more images than one page) and the compare page's side-by-side
view of 12 runs, in a real browser; positions and sizes asserted, screenshots for
docs/img taken here (docs/img/results-run.png, docs/img/results-compare.png)."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _uihelpers import PageProbe, UiServer, start_ui

import labledger

N_RUNS = 12  # more than W&B's 10-run cap
N_PAGED = 30  # images at one step: more than one page (media.js PAGE = 24)


@pytest.fixture(scope="module")
def media_ui(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[UiServer, list[str], str]]:
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
            y3 = rng.integers(0, 3, 90)
            run.log(
                {
                    "cm": labledger.ConfusionMatrix(
                        y_true=y, y_pred=(scores > 0.5).astype(int), labels=[0, 1]
                    ),
                    "cm3": labledger.ConfusionMatrix(
                        y_true=y3, y_pred=(y3 + (rng.random(90) < 0.2)) % 3, labels=[0, 1, 2]
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
    with labledger.init("media", name="paged", store=uri, capture=False) as run:
        for i in range(N_PAGED):
            img = np.full((16, 16), 8 * i, dtype=np.uint8)
            run.log({"batch": labledger.Image(img, caption=f"sample {i}")}, step=0)
    server = start_ui(uri)
    yield server, ids, run.id
    server.stop()


@pytest.fixture
def page_probe(browser: Any, media_ui: tuple[UiServer, list[str], str]) -> Iterator[PageProbe]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    p = PageProbe(context.new_page(), media_ui[0].url)
    yield p
    context.close()
    assert p.unexpected_errors() == [], p.errors


DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"


def _shot(page: Any, selector: str, name: str) -> Path:
    """The section, as docs/results.md shows it: the viewport made tall enough for all of
    it below the sticky top bar, then put back."""
    DOCS_IMG.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    height = page.locator(selector).bounding_box()["height"]
    page.set_viewport_size(
        {"width": size["width"], "height": int(max(size["height"], height + 300))}
    )
    page.locator(selector).evaluate("(e) => e.scrollIntoView({block: 'center'})")
    page.locator(selector).screenshot(path=str(DOCS_IMG / name))
    page.set_viewport_size(size)
    return DOCS_IMG / name


def _box(page: Any, selector: str) -> dict[str, float]:
    box = page.locator(selector).first.bounding_box()
    assert box is not None, selector
    assert box["width"] > 0 and box["height"] > 0, (selector, box)
    return box


def _boxes(locator: Any, *, empty_ok: bool = False) -> list[dict[str, float]]:
    """Every match's box, each non-zero (``empty_ok``: a zero height allowed, as of
    a histogram bar of an empty bin)."""
    out = []
    for i in range(locator.count()):
        box = locator.nth(i).bounding_box()
        assert box is not None and box["width"] > 0, (i, box)
        assert box["height"] > 0 or empty_ok, (i, box)
        out.append(box)
    return out


def _overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return (
        a["x"] < b["x"] + b["width"] - 1
        and b["x"] < a["x"] + a["width"] - 1
        and a["y"] < b["y"] + b["height"] - 1
        and b["y"] < a["y"] + a["height"] - 1
    )


def _panel(page: Any, key: str) -> str:
    """The panel of ``key``, scrolled into view (panels load as they near the viewport)."""
    sel = f'#sec-media .media-panel[data-key="{key}"]'
    page.locator(sel).scroll_into_view_if_needed()
    return sel


def _assert_grid_of_cells(cells: list[dict[str, float]], n: int) -> None:
    """n x n cells of one size, rows sharing a top, columns sharing a left, tiled."""
    assert len(cells) == n * n
    w, h = cells[0]["width"], cells[0]["height"]
    assert w >= 30 and h >= 15
    for c in cells:
        assert abs(c["width"] - w) < 1 and abs(c["height"] - h) < 1, (c, w, h)
    for i in range(n):
        row = cells[i * n : (i + 1) * n]
        assert max(c["y"] for c in row) - min(c["y"] for c in row) < 1
        for j in range(1, n):
            assert row[j]["x"] >= row[j - 1]["x"] + w - 1  # left to right, no overlap
            assert abs(row[j]["x"] - cells[j]["x"]) < 1  # the column of row 0
        if i:
            assert row[0]["y"] >= cells[(i - 1) * n]["y"] + h - 1  # top to bottom


def test_run_page_shows_rich_results(
    page_probe: PageProbe, media_ui: tuple[UiServer, list[str], str]
) -> None:
    run_id = media_ui[1][0]
    page = page_probe.open(f"#/run/{run_id}")
    page.wait_for_selector("#sec-media .media-panel[data-key='samples']")
    page_probe.wait_js("document.querySelectorAll('#sec-media .media-panel').length === 7")
    page.wait_for_selector(f"{_panel(page, 'samples')} img.media-image")
    for key, ready in (
        ("cm", "td.cm-cell"),
        ("cm3", "td.cm-cell"),
        ("preds", "tbody tr"),
        ("roc", "polyline"),
        ("pr", "polyline"),
        ("weights", "rect.hist-bar"),
    ):
        sel = _panel(page, key)
        page_probe.wait_js(f"document.querySelector('{sel} {ready}') !== null")
    page.locator("#sec-media").scroll_into_view_if_needed()
    # the section sits right under the metrics; panels in a grid of >= 2 columns, apart
    metrics, media = _box(page, "#sec-metrics"), _box(page, "#sec-media")
    assert media["y"] >= metrics["y"] + metrics["height"] - 1
    panels = _boxes(page.locator("#sec-media .media-panel"))
    assert len(panels) == 7
    a, b = panels[0], panels[1]
    assert abs(a["y"] - b["y"]) < 2 and b["x"] > a["x"] + a["width"] - 1
    assert not [(i, j) for (i, p), (j, q) in combinations(enumerate(panels), 2) if _overlap(p, q)]
    for p in panels:  # inside the section
        assert media["x"] - 1 <= p["x"] and p["x"] + p["width"] <= media["x"] + media["width"] + 1

    # the image: its logged size at least, its caption under it; the slider moves steps
    samples = _panel(page, "samples")
    img = _box(page, f"{samples} img.media-image")
    assert img["width"] >= 32 and img["height"] >= 32
    cap = _box(page, f"{samples} .media-caption")
    assert cap["y"] >= img["y"] + img["height"] - 1
    assert page.locator(f"{samples} .media-caption").text_content() == "run 0 step 2"
    src_last = page.locator(f"{samples} img.media-image").get_attribute("src")
    page.locator(f"{samples} input.media-slider").fill("0")
    page_probe.wait_js(
        f"document.querySelector('{samples} .media-caption').textContent === 'run 0 step 0'"
    )
    assert page.locator(f"{samples} .media-step").text_content() == "step 0"
    assert page.locator(f"{samples} img.media-image").get_attribute("src") != src_last
    page_probe.wait_js(
        f"(() => {{ const i = document.querySelector('{samples} img.media-image');"
        " return i.complete && i.naturalWidth === 32; })()"
    )

    # the confusion matrices: n x n heat maps of equal cells, counts then normalised rows
    cm = _panel(page, "cm")
    cells = page.locator(f"{cm} td.cm-cell")
    _assert_grid_of_cells(_boxes(cells), 2)
    counts = [int(cells.nth(i).text_content()) for i in range(4)]
    assert sum(counts) == 200
    assert page.locator(f"{cm} button.cm-toggle").get_attribute("aria-pressed") == "false"
    page.locator(f"{cm} button.cm-toggle").click()
    assert page.locator(f"{cm} button.cm-toggle").get_attribute("aria-pressed") == "true"
    row = [float(cells.nth(i).text_content()) for i in range(2)]
    assert sum(row) == pytest.approx(1.0, abs=0.011)
    _assert_grid_of_cells(_boxes(cells), 2)  # the toggle keeps the layout
    cm3 = _panel(page, "cm3")
    cells3 = page.locator(f"{cm3} td.cm-cell")
    _assert_grid_of_cells(_boxes(cells3), 3)
    assert sum(int(cells3.nth(i).text_content()) for i in range(9)) == 90
    # the heat: the diagonal (80% right) is darker than the cells off it
    shades = page.evaluate(
        f"[...document.querySelectorAll('{cm3} td.cm-cell')]"
        ".map((td) => parseFloat(getComputedStyle(td).backgroundColor.split(',')[3]))"
    )
    assert min(shades[0], shades[4], shades[8]) > max(shades[1], shades[2], shades[3])

    # curves with their AUC, drawn inside their box
    for key, label in (("roc", "ROC · AUC 0."), ("pr", "PR · AP 0.")):
        sel = _panel(page, key)
        assert page.locator(f"{sel} .curve-label").text_content().startswith(label)
        curve = _box(page, f"{sel} svg.media-curve")
        assert curve["width"] == 260 and curve["height"] == 220
        line = _box(page, f"{sel} polyline.curve-line")
        assert line["x"] >= curve["x"] and line["x"] + line["width"] <= curve["x"] + 260 + 1
        assert line["y"] >= curve["y"] and line["y"] + line["height"] <= curve["y"] + 220 + 1
        assert line["width"] > 100  # spans the unit square, not a dot
    auc = float(page.locator(f"{_panel(page, 'roc')} .curve-label").text_content().split()[-1])
    assert 0.0 <= auc <= 1.0

    # the table sorts by a header and filters rows: the visible order changes
    table = _panel(page, "preds")

    def column(i: int) -> list[str]:
        return [
            str(t) for t in page.locator(f"{table} tbody tr td:nth-child({i})").all_text_contents()
        ]

    ids_before = column(1)
    assert ids_before == [str(i) for i in range(20)]
    page.locator(f"{table} th", has_text="score").click()
    page.locator(f"{table} th", has_text="score").click()  # descending
    scores = [float(v) for v in column(3)]
    assert scores == sorted(scores, reverse=True)
    assert column(1) != ids_before
    first_row = _box(page, f"{table} tbody tr >> nth=0")
    second_row = _box(page, f"{table} tbody tr >> nth=1")
    assert second_row["y"] >= first_row["y"] + first_row["height"] - 1
    page.locator(f"{table} input.media-filter").fill("c1")
    page_probe.wait_js(f"document.querySelectorAll('{table} tbody tr').length === 7")
    assert set(column(2)) == {"c1"}
    filtered = [float(v) for v in column(3)]
    assert filtered == sorted(filtered, reverse=True)  # still sorted

    # histograms over steps: 20 bars inside their chart; the slider shows another step
    hist = _panel(page, "weights")
    assert page.locator(f"{hist} rect.hist-bar").count() == 20
    chart = _box(page, f"{hist} svg.media-hist")
    bars = _boxes(page.locator(f"{hist} rect.hist-bar"), empty_ok=True)
    assert max(r["height"] for r in bars) > 50  # the fullest bin reaches up
    assert all(
        chart["x"] <= r["x"] and r["x"] + r["width"] <= chart["x"] + chart["width"] + 1
        for r in bars
    )
    assert sorted(r["x"] for r in bars) == [r["x"] for r in bars]  # left to right
    range_last = page.locator(f"{hist} .media-body .muted").text_content()
    page.locator(f"{hist} input.media-slider").fill("0")
    page_probe.wait_js(f"document.querySelector('{hist} .media-step').textContent === 'step 0'")
    assert page.locator(f"{hist} .media-body .muted").text_content() != range_last

    page.locator(f"{samples} input.media-slider").fill("2")
    page_probe.wait_js(
        f"document.querySelector('{samples} .media-caption').textContent === 'run 0 step 2'"
    )
    page.locator("#sec-media").scroll_into_view_if_needed()
    path = _shot(page, "#sec-media", "results-run.png")
    assert path.stat().st_size > 10_000


def test_a_step_of_more_images_than_a_page_loads_the_rest_on_scroll(
    page_probe: PageProbe, media_ui: tuple[UiServer, list[str], str]
) -> None:
    page = page_probe.open(f"#/run/{media_ui[2]}")
    sel = '#sec-media .media-panel[data-key="batch"]'
    page.wait_for_selector(f"{sel} img.media-image")
    # the first page only, then the rest when the "more" button scrolls into view
    assert page.locator(f"{sel} figure.media-figure").count() == 24
    page.locator(f"{sel} button.media-more").scroll_into_view_if_needed()
    page_probe.wait_js(
        f"document.querySelectorAll('{sel} figure.media-figure').length === {N_PAGED}"
    )
    assert page.locator(f"{sel} button.media-more").count() == 0
    caps = page.locator(f"{sel} .media-caption").all_text_contents()
    assert caps == [f"sample {i}" for i in range(N_PAGED)]
    figs = _boxes(page.locator(f"{sel} figure.media-figure"))
    assert not [(i, j) for (i, p), (j, q) in combinations(enumerate(figs), 2) if _overlap(p, q)]


def test_compare_page_shows_one_key_for_every_run_at_one_step(
    page_probe: PageProbe, media_ui: tuple[UiServer, list[str], str]
) -> None:
    ids = media_ui[1]
    page = page_probe.open(f"#/compare?ids={','.join(ids)}")
    sec = "#sec-compare-media"
    page.wait_for_selector(f"{sec} .media-panel")
    page.locator(sec).scroll_into_view_if_needed()
    page_probe.wait_js(
        f"document.querySelectorAll('{sec} .media-panel img.media-image').length === {N_RUNS}"
    )
    page.locator(f"{sec} select.compare-media-key").select_option("samples")
    page.locator(f"{sec} input.compare-media-step").fill("1")
    page.locator(f"{sec} input.compare-media-step").dispatch_event("change")
    page.locator(sec).scroll_into_view_if_needed()
    page_probe.wait_js(
        f"[...document.querySelectorAll('{sec} .media-step')].filter((e) => e.textContent === 'step 1').length === "
        f"{N_RUNS}"
    )
    titles = page.locator(f"{sec} .media-key").all_text_contents()
    assert titles == [f"m{r}" for r in range(N_RUNS)]  # every run, no cap of 10
    caps = page.locator(f"{sec} .media-caption").all_text_contents()
    assert caps == [f"run {r} step 1" for r in range(N_RUNS)]
    page_probe.wait_js(
        f"[...document.querySelectorAll('{sec} img.media-image')].every((i) => i.complete && i.naturalWidth === 32)"
    )
    # 12 panels, all visible, of one width, in a grid: rows share a top, columns a left
    section = _box(page, sec)
    panels = _boxes(page.locator(f"{sec} .media-panel"))
    assert len(panels) == N_RUNS
    width = panels[0]["width"]
    assert all(abs(p["width"] - width) < 2 for p in panels)
    assert not [(i, j) for (i, p), (j, q) in combinations(enumerate(panels), 2) if _overlap(p, q)]
    for p in panels:
        assert (
            section["x"] - 1 <= p["x"]
            and p["x"] + p["width"] <= section["x"] + section["width"] + 1
        )
    rows: list[list[dict[str, float]]] = []
    for p in panels:  # in reading order
        if rows and abs(p["y"] - rows[-1][0]["y"]) < 2:
            rows[-1].append(p)
        else:
            assert not rows or p["y"] >= rows[-1][0]["y"] + 10
            rows.append([p])
    per_row = len(rows[0])
    assert per_row >= 4 and len(rows) == -(-N_RUNS // per_row)  # side by side, wrapped
    for row in rows:
        for j, p in enumerate(row):
            assert abs(p["x"] - rows[0][j]["x"]) < 2  # the columns line up
    images = _boxes(page.locator(f"{sec} img.media-image"))
    assert all(abs(i["width"] - images[0]["width"]) < 1 for i in images)
    for r in rows[1:]:  # the images of a row at one height
        assert max(p["y"] for p in r) - min(p["y"] for p in r) < 2
    _shot(page, sec, "results-compare.png")

    # a step past every run's last: each shows its last step (2), not its first
    page.locator(f"{sec} input.compare-media-step").fill("99")
    page.locator(f"{sec} input.compare-media-step").dispatch_event("change")
    page.locator(sec).scroll_into_view_if_needed()
    page_probe.wait_js(
        f"[...document.querySelectorAll('{sec} .media-step')].filter((e) => e.textContent === 'step 2').length === "
        f"{N_RUNS}"
    )
    # another key: the confusion matrices, 12 heat maps of 2 x 2 equal cells
    page.locator(f"{sec} select.compare-media-key").select_option("cm")
    page.locator(sec).scroll_into_view_if_needed()
    page_probe.wait_js(f"document.querySelectorAll('{sec} td.cm-cell').length === {4 * N_RUNS}")
    for i in range(N_RUNS):
        _assert_grid_of_cells(
            _boxes(page.locator(f"{sec} .media-panel >> nth={i} >> td.cm-cell")), 2
        )
