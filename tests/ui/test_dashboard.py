"""The dashboard in a real browser (Debian's chromium through Playwright).

Every test runs with the ``probe`` fixture, which fails the test when the page logs a
console error, throws, or opens a dialog. Each page is saved under
test-artifacts/screenshots/.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
import time
from typing import Any

import httpx
import pytest
from _uihelpers import PATCH_MARKER, XSS_NAME, PageProbe, UiServer, start_ui, sub_env

pytestmark = pytest.mark.browser


def _rows(page: Any) -> list[str]:
    return page.locator("table.runs tbody tr.run-row .run-link").all_text_contents()


def _wait_rows(probe: PageProbe, n: int) -> None:
    probe.wait_js(f"document.querySelectorAll('table.runs tbody tr.run-row').length === {n}")


def test_projects_page_lists_projects_with_counts(probe: PageProbe) -> None:
    page = probe.open("#/")
    names = page.locator("a.project-link").all_text_contents()
    assert names == sorted(names) and {"nlp", "vision"} <= set(names)
    assert page.locator("tr.project-row", has_text="vision").locator("td.num").text_content() == "6"
    probe.screenshot("projects")


def test_runs_table_loads_sorts_and_pages(probe: PageProbe) -> None:
    page = probe.open("#/p/vision")
    _wait_rows(probe, 6)
    assert page.locator(".total").text_content() == "6 runs"
    # default columns come from the config and summary keys
    headers = " ".join(page.locator("table.runs thead th").all_text_contents())
    assert "lr" in headers and "val_acc" in headers
    page.locator("th[data-sort='name']").click()
    probe.wait_js("location.hash.includes('sort=name')")
    # the hash changes at once, the rows when the sorted page has arrived: wait for it
    probe.wait_js(
        "(() => { const n = [...document.querySelectorAll("
        "'table.runs tbody tr.run-row .run-link')].map(e => e.textContent);"
        " return n.length === 6 && n.every((v, i) => i === 0 || n[i - 1] <= v); })()"
    )
    names = _rows(page)
    assert names == sorted(names)
    page.select_option("select[aria-label='runs per page']", "25")
    _wait_rows(probe, 6)
    probe.screenshot("runs-table")


def test_runs_table_filters_with_the_filter_language(probe: PageProbe) -> None:
    page = probe.open("#/p/vision")
    _wait_rows(probe, 6)
    page.fill("input.filter-input", 'config.lr >= 0.03 and config.optimizer = "sgd"')
    page.press("input.filter-input", "Enter")
    _wait_rows(probe, 2)
    assert sorted(_rows(page)) == sorted(["run-3", XSS_NAME])
    assert page.locator(".total").text_content() == "2 runs"
    assert "filter=" in page.evaluate("location.hash")
    probe.screenshot("runs-filtered")


def test_invalid_filter_shows_an_inline_error(probe: PageProbe) -> None:
    page = probe.open("#/p/vision")
    _wait_rows(probe, 6)
    probe.allow("status of 400")
    page.fill("input.filter-input", "config.lr <<< 3")
    page.press("input.filter-input", "Enter")
    err = page.locator("pre.filter-error")
    err.wait_for(state="visible")
    assert "invalid filter" in err.text_content()
    assert page.locator("input.filter-input").get_attribute("aria-invalid") == "true"
    probe.screenshot("runs-filter-error")


def test_default_columns_show_the_config_keys_that_vary_first(probe: PageProbe) -> None:
    page = probe.open("#/p/nlp")
    _wait_rows(probe, 2)
    heads = [h.strip() for h in page.locator("table.runs thead th").all_text_contents()]
    cfg = [h.removeprefix("config") for h in heads if h.startswith("config")]
    # lr and optimizer differ between the runs and get columns; batch, dataset, … have one
    # value for every run and are said once above the table instead (issue #26)
    assert cfg == ["lr", "optimizer"], heads
    same = page.locator(".constant-keys").inner_text()
    assert "batch = 16" in same and "dataset = wiki" in same and "lr" not in same


def test_column_chooser_adds_a_config_column(probe: PageProbe) -> None:
    page = probe.open("#/p/vision?cols=config.lr")
    _wait_rows(probe, 6)
    assert "batch_size" not in " ".join(page.locator("table.runs thead th").all_text_contents())
    page.click("text=Columns")
    page.locator(".chooser input[data-key='config.batch_size']").check()
    probe.wait_js(
        "[...document.querySelectorAll('table.runs thead th')].some(th => th.textContent.includes('batch_size'))"
    )
    assert "config.batch_size" in page.evaluate("decodeURIComponent(location.hash)")


def test_hostile_run_name_renders_as_text(probe: PageProbe) -> None:
    page = probe.open("#/p/vision")
    _wait_rows(probe, 6)
    assert XSS_NAME in _rows(page)
    assert page.locator("img[src='x']").count() == 0
    assert page.locator("b", has_text="t").count() == 0  # the tag "<b>t</b>" stays text
    assert page.locator(".tag", has_text="<b>t</b>").count() == 6
    page.locator(".run-link", has_text=XSS_NAME).click()
    # wait for the clicked run's own page, not any loaded page
    probe.wait_js(
        "document.querySelector('main[data-loaded=\"1\"] h1.run-name')?.textContent === "
        + json.dumps(XSS_NAME)
    )
    assert page.locator("h1.run-name").text_content() == XSS_NAME
    assert page.locator("img[src='x']").count() == 0
    assert probe.dialogs == []


def test_run_page_shows_config_charts_environment_and_patch(
    probe: PageProbe, ui_server: UiServer
) -> None:
    page = probe.open("#/run/run-2")
    assert page.locator(".run-title .badge").text_content() == "finished"
    assert page.locator("#sec-overview table.kv", has_text="model.depth").count() == 1
    # one chart per metric, each with a drawn uPlot canvas
    page.wait_for_selector("#sec-metrics .chart[data-series='1'] canvas")
    keys = [c.get_attribute("data-key") for c in page.locator("#sec-metrics .chart").all()]
    assert keys == ["acc", "loss"]
    assert [c.get_attribute("data-points") for c in page.locator("#sec-metrics .chart").all()] == [
        "200",
        "200",
    ]
    assert page.locator("#sec-system .chart").get_attribute("data-key") == "system/cpu_percent"
    # the captured patch, rendered as a diff with its script tag as text
    page.wait_for_selector("pre.diff .dl.add")
    added = page.locator("pre.diff .dl.add").all_text_contents()
    assert any(PATCH_MARKER in line for line in added)
    assert page.locator("pre.diff script").count() == 0
    assert (
        page.locator("a", has_text="Download .patch")
        .get_attribute("href")
        .endswith("/patch/download")
    )
    assert page.locator("#sec-environment", has_text="Packages").count() == 1
    # the logged artifact with its sha256 and a download link that serves its bytes
    row = page.locator("table.artifacts tbody tr")
    assert row.count() == 1
    assert row.locator("td").first.text_content() == "vision/weights:v0"
    # labelled: the version digest, and the file's own sha256 (its full value as the title)
    assert "version digest" in (row.locator("td.sha").text_content() or "")
    sha = (
        row.locator("td.sha .digest", has_text="file sha256")
        .locator(".mono")
        .get_attribute("title")
    )
    href = row.locator("a", has_text="Download").get_attribute("href")
    got = httpx.get(ui_server.url + href)
    assert hashlib.sha256(got.content).hexdigest() == sha
    page.wait_for_selector("#sec-repro table.repro, #sec-repro p.muted >> text=Not reproduced yet")
    probe.screenshot("run-page")


def test_run_page_shows_artifact_lineage(probe: PageProbe, ui_server: UiServer) -> None:
    page = probe.open("#/run/bert-0")
    lineage = page.locator("#sec-lineage")
    assert "vision/weights:v0" in lineage.text_content()
    producer = lineage.locator("a.mono").first
    producer.click()
    # the page we came from is also a loaded run page: wait until the producer's
    # own page has replaced it, so the check below cannot read the old heading
    probe.wait_js(
        "location.hash !== '#/run/bert-0'"
        " && document.querySelector('main[data-loaded=\"1\"] h1.run-name')?.textContent"
        " === 'run-2'"
    )
    assert page.locator("h1.run-name").text_content() == "run-2"


def _select_and_compare(probe: PageProbe, names: list[str]) -> None:
    page = probe.page
    for n in names:
        page.locator("tr.run-row", has=page.locator(".run-link", has_text=n)).locator(
            "input[type=checkbox]"
        ).check()
    btn = page.locator("a.compare-btn")
    assert btn.text_content() == f"Compare {len(names)}"
    btn.click()
    page.wait_for_selector("main.compare-page[data-loaded='1']", timeout=15_000)


def test_comparing_three_runs_draws_their_series(probe: PageProbe) -> None:
    page = probe.open("#/p/vision")
    _wait_rows(probe, 6)
    _select_and_compare(probe, ["run-0", "run-2", "run-4"])
    charts = page.locator(".chart-grid .chart")
    assert charts.count() == 2  # acc and loss (system metrics are left out by default)
    for i in range(2):
        assert charts.nth(i).get_attribute("data-series") == "3"
        assert charts.nth(i).locator("canvas").count() >= 1
    legend = page.locator(".chart .u-legend").first.text_content()
    assert all(n in legend for n in ("run-0", "run-2", "run-4"))
    assert charts.nth(0).get_attribute("data-points") == "600"  # 3 runs x 200 steps
    # config diff: lr, optimizer... differ; highlighted
    assert page.locator("#config-diff tr.differs").count() >= 3
    # parallel coordinates: one line per run over the differing config keys and a metric
    pc = page.locator("canvas.parcoords")
    assert pc.get_attribute("data-lines") == "3"
    assert int(pc.get_attribute("data-axes")) >= 4
    assert page.locator("canvas.scatter").get_attribute("data-points") == "3"
    probe.screenshot("compare")
    # x axis by time and smoothing keep the three series
    page.select_option("select[aria-label='x axis']", "time")
    probe.wait_js("document.querySelectorAll('.chart-grid .chart[data-series=\"3\"]').length === 2")
    page.locator("input[aria-label='smoothing']").fill("0.9")
    assert "smooth=0.9" in page.evaluate("location.hash")
    probe.screenshot("compare-time-smoothed")


def test_analysis_page_renders_importance_leaderboard_and_parcoords(probe: PageProbe) -> None:
    page = probe.open("#/p/vision/analysis?metric=val_acc&max=1")
    assert page.locator("canvas.parcoords").get_attribute("data-lines") == "6"
    # six runs: the warning and the rank correlations, not 1/0 importance bars
    page.wait_for_selector("#importance table.rank-correlations")
    labels = page.locator("#importance table.rank-correlations td.mono").all_text_contents()
    assert "lr" in labels
    assert page.locator("#importance .bar-row").count() == 0
    assert "only 6 runs" in page.locator("#importance .warn-box").inner_text()
    board = page.locator("#leaderboard table.leaderboard tbody tr")
    assert board.count() == 6
    assert board.first.locator("a").text_content() == XSS_NAME  # lr 0.3 has the best val_acc
    probe.screenshot("analysis")


LIVE_RUN = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import labledger

    go = Path(sys.argv[2])
    with labledger.init("live", name="live-run", config={"lr": 0.1}, store=sys.argv[1]) as run:
        step = 0
        while not go.exists() and step < 600:
            run.log({"loss": 1.0 / (step + 1)}, step=step)
            step += 1
            time.sleep(0.05)
""")


def test_running_run_updates_without_reload(
    probe: PageProbe, ui_server: UiServer, ui_store: str, tmp_path: Any
) -> None:
    stop = tmp_path / "stop"
    proc = subprocess.Popen(
        [sys.executable, "-c", LIVE_RUN, ui_store, str(stop)],
        env=sub_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 30
        run_id = None
        while time.time() < deadline and run_id is None:
            body = httpx.get(f"{ui_server.url}/api/v1/runs", params={"project": "live"}).json()
            if body["runs"] and body["runs"][0]["metrics"].get("loss"):
                run_id = body["runs"][0]["id"]
            else:
                time.sleep(0.2)
        assert run_id, "the live run never appeared"
        page = probe.open(f"#/run/{run_id}")
        assert page.locator("#live").is_visible()
        assert page.locator(".run-title .badge").text_content() == "running"
        first = int(page.locator("#sec-metrics .chart").get_attribute("data-points"))
        page.evaluate("window.__marker = 1")  # survives only if the page is not reloaded
        probe.wait_js(
            f"+document.querySelector('#sec-metrics .chart').dataset.points > {first}", timeout=15
        )
        stop.write_text("go")
        proc.wait(timeout=30)
        probe.wait_js(
            "document.querySelector('.run-title .badge').textContent === 'finished'", timeout=15
        )
        assert page.evaluate("window.__marker") == 1
        assert not page.locator("#live").is_visible()
        probe.screenshot("run-live")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_login_page_renders_without_errors(probe: PageProbe) -> None:
    page = probe.open("login", loaded=False)
    assert page.locator("form.login input[name=token][type=password]").count() == 1
    probe.screenshot("login")


def test_login_page_signs_in_with_a_token_when_the_server_requires_one(
    browser: Any, tmp_path: Any
) -> None:
    import json

    uri = f"sqlite:///{tmp_path / 'auth' / 'ledger.db'}"
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "labledger.cli",
            "server",
            "token",
            "create",
            "--backend-uri",
            uri,
            "--user",
            "alice",
            "--project",
            "*",
            "--role",
            "read",
            "--json",
        ],
        env=sub_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    token = json.loads(made.stdout)["token"]
    server = start_ui(uri)
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        assert httpx.get(f"{server.url}/api/v1/projects").status_code == 401
        probe = PageProbe(context.new_page(), server.url)
        probe.allow("status of 401")  # the dashboard's first API call, before signing in
        page = probe.open("", loaded=False)
        page.wait_for_url("**/login")
        page.fill("input[name=token]", "llt_wrong")
        page.click("button[type=submit]")
        assert "not valid" in page.locator(".error-box").text_content()
        page.fill("input[name=token]", token)
        page.click("button[type=submit]")
        page.wait_for_selector("main[data-loaded='1']")
        assert page.locator("h1").first.text_content() == "Projects"
        [cookie] = [c for c in context.cookies() if c["name"] == "labledger_token"]
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert page.evaluate("document.cookie") == ""  # not readable from scripts
        assert probe.dialogs == [] and probe.unexpected_errors() == []
    finally:
        context.close()
        server.stop()
