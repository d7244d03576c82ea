"""The dashboard on the demo's runs, in a real chromium: results first, layout that fits
(element sizes and positions), and the screenshots in docs/img/ that the docs show."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from _uihelpers import ROOT, PageProbe, UiServer, start_ui, sub_env

DOCS_IMG = ROOT / "docs" / "img"
WIDE_COLS = ",".join(
    [f"config.{k}" for k in ("lr", "hidden", "activation", "batch_size", "optimizer", "epochs")]
    + [f"config.{k}" for k in ("dataset", "test_size")]
    + ["summary.test_acc", "summary.test_f1_macro"]
)


@pytest.fixture(scope="module")
def demo_ui(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[UiServer, list[dict[str, Any]]]]:
    where = tmp_path_factory.mktemp("demo-ui")
    subprocess.run(["git", "init", "-q", str(where)], check=True)
    uri = f"sqlite:///{where / 'ledger.db'}"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "labledger.cli",
            "demo",
            "--runs",
            "4",
            "--epochs",
            "6",
            "--store",
            uri,
        ],
        cwd=where,
        env=sub_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    runs = json.loads(
        subprocess.run(
            [sys.executable, "-m", "labledger.cli", "ls", "--json", "--store", uri],
            env=sub_env(),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    server = start_ui(uri)
    yield server, runs
    server.stop()


@pytest.fixture
def page(browser: Any, demo_ui: tuple[UiServer, list[dict[str, Any]]]) -> Iterator[PageProbe]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    p = PageProbe(context.new_page(), demo_ui[0].url)
    yield p
    context.close()
    assert p.unexpected_errors() == [], p.errors


def box(page: Any, selector: str) -> dict[str, float]:
    b = page.locator(selector).first.bounding_box()
    assert b is not None, f"{selector} is not laid out"
    return dict(b)


def system_series_totals(base: str, run_id: str) -> dict[str, int]:
    """The number of stored points of each system/* series of a run, from the JSON API."""
    with urllib.request.urlopen(f"{base}/api/v1/runs/{run_id}/metrics", timeout=30) as resp:
        keys = [k for k in json.load(resp)["keys"] if k.startswith("system/")]
    if not keys:
        return {}
    query = urllib.parse.urlencode({"run": run_id, "key": keys, "max_points": 10}, doseq=True)
    with urllib.request.urlopen(f"{base}/api/v1/series?{query}", timeout=30) as resp:
        return {s["key"]: int(s["total"]) for s in json.load(resp)["series"]}


def shot(page: Any, name: str) -> None:
    DOCS_IMG.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS_IMG / name))


def test_run_page_puts_results_first_and_collapses_system_metrics(
    page: PageProbe, demo_ui: tuple[UiServer, list[dict[str, Any]]]
) -> None:
    _, runs = demo_ui
    best = max(runs, key=lambda r: r["summary"]["test_acc"])
    pg = page.open(f"#/run/{best['id']}")
    page.wait_js(
        "document.querySelectorAll('#sec-metrics .chart-grid .u-wrap, #sec-metrics .chart-grid canvas').length >= 4"
    )
    # provenance in the header, not far down under Environment (issue #26)
    header = box(pg, ".run-header")
    commit = box(pg, ".run-header .run-commit")
    assert header["y"] <= commit["y"] < header["y"] + header["height"] < 400
    assert "dirty" in pg.locator(".run-header .run-commit").inner_text()
    data = pg.locator(".run-header .run-data").first.inner_text()
    assert re.fullmatch(r"[0-9a-f]{12}", data), data
    page.wait_js("!document.querySelector('.run-header .run-repro').textContent.includes('…')")
    assert "not reproduced yet" in pg.locator(".run-header .run-repro").inner_text()
    results, config = box(pg, "#sec-metrics"), box(pg, "#sec-overview")
    assert results["y"] < config["y"]  # the run's own results come before its config
    first_row = box(pg, "#sec-metrics .stats tbody tr")
    assert pg.locator("#sec-metrics .stats tbody tr").first.inner_text().startswith("test_acc")
    assert first_row["y"] < 900  # above the fold of a 900 px window
    chart = box(pg, "#sec-metrics .chart-grid > *")
    assert chart["y"] < 900 + 200  # the first chart starts within the first screen and a bit
    stats = pg.locator("#sec-metrics .stats").inner_text()
    assert "system/" not in stats  # the machine's metrics are in their own group
    # system metrics: collapsed, so they take no room until opened
    assert pg.locator("#sec-system").get_attribute("open") is None
    assert box(pg, "#sec-system")["height"] < 80
    # system/* series: a series of one point is a value tile, never a one-dot chart; a
    # longer one is a chart. How many samples a run gets depends on how long it ran (a
    # loaded CI machine runs the demo slower), so the expectation comes from the store.
    server, _ = demo_ui
    totals = system_series_totals(server.url, best["id"])
    assert totals, "the demo's run has no system/* series"
    single = sorted(k for k, n in totals.items() if n <= 1)
    multi = sorted(k for k, n in totals.items() if n > 1)
    pg.locator("#sec-system > summary").click()
    page.wait_js(
        "document.querySelectorAll('#sec-system .value-tile').length"
        f" + document.querySelectorAll('#sec-system .chart-grid > *').length >= {len(totals)}"
    )
    tiles = pg.eval_on_selector_all("#sec-system .value-tile", "els => els.map(e => e.dataset.key)")
    assert sorted(tiles) == single
    assert pg.locator("#sec-system .chart-grid > *").count() == len(multi)
    if single:
        tile = box(pg, "#sec-system .value-tile")
        assert tile["height"] < 120 and tile["width"] < 400
    # absent values are shown as absent, never as "null"
    env = pg.locator("#sec-environment").inner_text()
    assert "null" not in env
    assert pg.locator("#sec-environment td.absent").count() >= 1
    # the artifact's digest says which digest it is
    arts = pg.locator("#sec-artifacts").inner_text()
    assert "version digest" in arts and "file sha256" in arts and "KiB" not in arts
    pg.locator("#sec-system > summary").click()
    pg.evaluate("window.scrollTo(0, 0)")
    shot(pg, "run-page.png")


def test_runs_table_scrolls_sideways_with_a_sticky_name_and_sparklines(page: PageProbe) -> None:
    pg = page.open(f"#/p/digits-demo?cols={WIDE_COLS}&spark=val/acc")
    page.wait_js("document.querySelectorAll('.runs svg.sparkline[data-points]').length === 4")
    # every run has a sparkline of its per-epoch val/acc (6 epochs)
    points = pg.eval_on_selector_all(
        ".runs svg.sparkline", "els => els.map(e => +e.dataset.points)"
    )
    assert points == [6, 6, 6, 6]
    spark = box(pg, ".runs svg.sparkline")
    assert 60 <= spark["width"] <= 120 and spark["height"] <= 30
    wrap = pg.locator(".table-wrap")
    sizes = wrap.evaluate("w => [w.scrollWidth, w.clientWidth]")
    assert sizes[0] > sizes[1]  # wider than the window: it scrolls, nothing is cut off
    card = box(pg, ".table-wrap")
    assert card["x"] + card["width"] <= 1400  # the table stays inside the window
    name_before = box(pg, ".runs tbody .name-col")
    wrap.evaluate("w => { w.scrollLeft = w.scrollWidth; }")
    page.wait_js("document.querySelector('.table-wrap').scrollLeft > 0")
    name_after = box(pg, ".runs tbody .name-col")
    assert abs(name_after["x"] - name_before["x"]) < 1  # the name column stays in place
    last = box(pg, ".runs thead th:last-child")
    assert (
        last["x"] + last["width"] <= card["x"] + card["width"] + 1
    )  # the last column is reachable
    # the name cell covers what scrolls under it (opaque background)
    bg = pg.eval_on_selector(".runs tbody .name-col", "e => getComputedStyle(e).backgroundColor")
    assert bg not in ("rgba(0, 0, 0, 0)", "transparent")


def test_runs_table_leads_with_the_primary_metric_at_1000_px(
    browser: Any, demo_ui: tuple[UiServer, list[dict[str, Any]]]
) -> None:
    """Metrics first (issue #26): at 1000 px the primary metric's column and its trend are
    in view without scrolling, the config keys that vary follow, the constant ones are said
    once above the table; the Trend selector offers every metric; sorting by a metric makes
    it the primary one (remembered); the sticky name never covers a header."""
    server, _ = demo_ui
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    page = PageProbe(context.new_page(), server.url)
    try:
        pg = page.open("#/p/digits-demo")
        page.wait_js("document.querySelectorAll('.runs svg.sparkline[data-points]').length === 4")
        card = box(pg, ".table-wrap")
        head = box(pg, ".runs thead th[data-col=primary]")
        assert pg.locator(".runs thead th[data-col=primary]").inner_text().replace("\n", " ") == (
            "★ val/acc"
        )
        assert head["x"] + head["width"] <= min(1000, card["x"] + card["width"])
        spark = box(pg, ".runs thead th[data-col=spark]")
        assert spark["x"] + spark["width"] <= 1000  # its trend too
        headers = pg.eval_on_selector_all(".runs thead th", "els => els.map(e => e.dataset.col)")
        assert headers.index("primary") < headers.index("status") < headers.index("id")
        assert headers.index("primary") < headers.index("config.lr") < headers.index("status")
        assert "config.epochs" not in headers  # one value for every run: said once instead
        constant = pg.locator(".constant-keys").inner_text()
        assert constant.startswith("Same in every listed run:") and "epochs = 6" in constant
        assert box(pg, ".constant-keys")["y"] < card["y"]
        authors = pg.eval_on_selector_all(".runs td .author", "els => els.map(e => e.textContent)")
        assert authors and all("@" not in a for a in authors)  # short author, full in a title
        # the Trend selector offers every metric (it only ever offered "none")
        options = pg.eval_on_selector_all(".spark-select option", "els => els.map(e => e.value)")
        assert {"", "val/acc", "train/loss"} <= set(options) and len(options) > 3
        assert pg.locator(".spark-select").input_value() == "val/acc"
        pg.locator(".spark-select").select_option("train/loss")
        page.wait_js(
            "document.querySelector('.runs thead th[data-col=spark]').textContent.includes('train/loss')"
            " && document.querySelectorAll('.runs svg.sparkline[data-points]').length === 4"
        )
        # sorting by a metric makes it the primary one, remembered for the project
        pg.locator(".runs thead th[data-col='summary.test_acc']").click()
        page.wait_js(
            "document.querySelector('.runs thead th[data-col=primary]').textContent.includes('test_acc')"
        )
        page.open("#/p/digits-demo?sort=created_at")
        page.wait_js(
            "document.querySelector('.runs thead th[data-col=primary]').textContent.includes('test_acc')"
        )
        # what does not fit is named under the table, and the note goes once scrolled there
        page.wait_js("!document.querySelector('.offscreen-cols').hidden")
        note = pg.locator(".offscreen-cols").inner_text()
        assert "to the right (scroll sideways)" in note and "tags" in note, note
        # scrolled to the end, the last header (Tags) is not under the sticky name column
        wrap = pg.locator(".table-wrap")
        wrap.evaluate("w => { w.scrollLeft = w.scrollWidth; }")
        tags = box(pg, ".runs thead th[data-col=tags]")
        name = box(pg, ".runs thead th.name-col")
        assert tags["x"] >= name["x"] + name["width"] - 1
        hit = pg.evaluate(
            "([x, y]) => document.elementFromPoint(x, y).closest('th')?.dataset.col",
            [tags["x"] + tags["width"] / 2, tags["y"] + tags["height"] / 2],
        )
        assert hit == "tags"
        page.wait_js("document.querySelector('.offscreen-cols').hidden")
        assert page.unexpected_errors() == [], page.errors
    finally:
        context.close()


def test_runs_table_screenshot(page: PageProbe) -> None:
    pg = page.open("#/p/digits-demo?sort=-summary.val/acc")
    page.wait_js("document.querySelectorAll('.runs svg.sparkline[data-points]').length === 4")
    shot(pg, "runs-table.png")


def test_compare_page_shows_every_run_and_keeps_points_inside_the_plot(
    page: PageProbe, demo_ui: tuple[UiServer, list[dict[str, Any]]]
) -> None:
    _, runs = demo_ui
    ids = ",".join(r["id"] for r in runs[:3])
    pg = page.open(f"#/compare?ids={ids}")
    card = box(pg, "#summary-diff")
    heads = pg.locator("#summary-diff thead th")
    assert heads.count() == 4  # the key column and the three runs
    for i in range(heads.count()):
        b = heads.nth(i).bounding_box()
        assert b is not None and b["x"] + b["width"] <= card["x"] + card["width"]
    # the summary lists the user's metrics; the machine's system/* are folded apart, in
    # units, never highlighted
    keys = pg.eval_on_selector_all("#summary-diff tbody th", "els => els.map(e => e.textContent)")
    assert keys and not any(k.startswith("system/") for k in keys)
    assert pg.locator("#summary-diff tbody tr.differs").count() >= 1
    assert pg.locator("#system-diff").get_attribute("open") is None
    assert box(pg, "#system-diff")["height"] < 80
    assert pg.locator("#system-diff tbody tr.differs").count() == 0
    rss = pg.eval_on_selector_all(
        "#system-diff tbody tr[data-key='system/proc_rss_bytes'] td",
        "els => els.map(e => e.textContent)",
    )
    assert rss and all(t.endswith(" MB") or t == "—" for t in rss), rss
    # provenance where runs meet: commit, dirty, patch, seed, data digest, packages, author,
    # reproduction; rows placed above the charts, and differences highlighted
    prov = box(pg, "#provenance")
    assert prov["y"] < box(pg, "#summary-diff")["y"]
    rows = pg.eval_on_selector_all(
        "#provenance tbody tr", "els => els.map(e => [e.dataset.key, e.className])"
    )
    names = [k for k, _ in rows]
    for row in ("commit", "dirty", "patch", "seed", "data digits", "author", "reproduction"):
        assert row in names, (row, names)
    cls = dict(rows)
    assert cls["seed"] == "differs"  # the demo seeds each run differently
    assert cls["commit"] == "" and cls["data digits"] == ""  # one commit, one dataset
    seed = box(pg, "#provenance tbody tr[data-key=seed]")
    commit = box(pg, "#provenance tbody tr[data-key=commit]")
    assert commit["y"] < seed["y"] < 900 + 300  # near the top of the page
    seeds = pg.locator("#provenance tbody tr[data-key=seed] td").all_inner_texts()
    assert seeds == [str(r["seed"]) for r in runs[:3]]
    # scatter points sit inside the frame, clear of its border
    page.wait_js(
        "document.querySelector('canvas.scatter') && document.querySelector('canvas.scatter').dataset.extent"
    )
    frame = json.loads(pg.locator("canvas.scatter").get_attribute("data-frame") or "{}")
    extent = json.loads(pg.locator("canvas.scatter").get_attribute("data-extent") or "{}")
    assert extent["left"] - frame["left"] >= 6 and frame["right"] - extent["right"] >= 6
    assert extent["top"] - frame["top"] >= 6 and frame["bottom"] - extent["bottom"] >= 6
    shot(pg, "compare.png")


def test_analysis_page_keeps_run_names_on_one_line(page: PageProbe) -> None:
    pg = page.open("#/p/digits-demo/analysis")
    page.wait_js("document.querySelectorAll('.leaderboard tbody tr').length >= 4")
    link = box(pg, ".leaderboard tbody .run-name-cell a")
    line = float(
        pg.eval_on_selector(
            ".leaderboard tbody .run-name-cell",
            "e => parseFloat(getComputedStyle(e).lineHeight) || 18",
        )
    )
    assert link["height"] <= line * 1.3  # one line, not two
    lb, imp = box(pg, "#leaderboard"), box(pg, "#importance")
    assert lb["width"] > imp["width"]  # the leaderboard gets the room


def test_docs_show_the_screenshots() -> None:
    for name in ("run-page.png", "runs-table.png", "compare.png"):
        assert f"img/{name}" in (ROOT / "docs" / "ui.md").read_text(), name
    assert os.path.getsize(DOCS_IMG / "runs-table.png") > 10_000
