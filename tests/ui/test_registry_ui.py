"""The model registry in the dashboard (docs/ui.md "Model registry"): #/models lists the
registered models, #/models/NAME a model's versions (source run with its headline number
and sealed/amended markers, the content-addressed artifact with its digest and a download
link, who registered it) and its alias history (each move by its true actor, chained in
the audit log); the run page says "Registered as NAME vN (@alias)". Content and geometry
are asserted; the screenshot for docs/img/model-registry.png is taken here."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _uihelpers import XSS_NAME, PageProbe, UiServer, start_ui, sub_env

DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
MODEL = "digits-clf"
WEIGHTS = b"\x00classifier weights\xff" * 500

TRAIN = (
    textwrap.dedent("""
    import sys
    import labledger
    from labledger import Ledger

    store = sys.argv[1]
    ids = []
    for i, (name, acc) in enumerate((("baseline", 0.912), (XSS_NAME, 0.947))):
        with labledger.init("digits", name=name, config={"C": 0.1 * (i + 1)}, store=store,
                            capture=False) as run:
            for step in range(5):
                run.log({"val_acc": acc - (4 - step) / 100, "loss": 1.0 / (step + 1)}, step=step)
            with open(f"model-{i}.bin", "wb") as f:
                f.write(WEIGHTS + bytes([i]))
            run.log_artifact(f"model-{i}.bin", name="model", kind="model").wait(60)
        ids.append(run.id)
    with Ledger(store) as ledger:  # re-evaluated after it ended: an amendment, sealed value kept
        ledger.store.edit_run(ids[1], summary={"val_acc": 0.951}, actor="auditor@example.org",
                              reason="re-evaluated on the full test set")
    print(ids[0], ids[1])
""")
    .replace("XSS_NAME", repr(XSS_NAME))
    .replace("WEIGHTS", repr(WEIGHTS))
)


def _cli(uri: str, who: str, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "labledger.cli", "models", *args, "--store", uri],
        env=sub_env(GIT_AUTHOR_EMAIL=who),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture(scope="module")
def registry_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[UiServer, list[str]]]:
    work = tmp_path_factory.mktemp("registry-ui")
    uri = f"sqlite:///{work / 'ledger.db'}"
    out = subprocess.run(
        [sys.executable, "-c", TRAIN, uri],
        cwd=work,
        env=sub_env(LABLEDGER_CAPTURE="off", GIT_AUTHOR_EMAIL="trainer@example.org"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    runs = out.stdout.split()
    trainer, release = "trainer@example.org", "release-manager@example.org"
    _cli(uri, trainer, "register", runs[0], "model", MODEL)
    _cli(uri, trainer, "register", runs[1], "model", MODEL)
    _cli(uri, release, "alias", MODEL, "champion", "1")
    _cli(uri, release, "alias", MODEL, "staging", "1")
    _cli(uri, release, "alias", MODEL, "champion", "2")  # the move the page must show
    server = start_ui(uri)
    try:
        yield server, runs
    finally:
        server.stop()


@pytest.fixture
def page_probe(browser: Any, registry_ui: tuple[UiServer, list[str]]) -> Iterator[PageProbe]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    p = PageProbe(context.new_page(), registry_ui[0].url)
    yield p
    context.close()
    assert p.dialogs == [], f"a dialog fired: {p.dialogs}"
    assert p.unexpected_errors() == [], p.errors


def _boxes(page: Any, selector: str) -> list[dict[str, float]]:
    loc = page.locator(selector)
    out = []
    for i in range(loc.count()):
        b = loc.nth(i).bounding_box()
        assert b is not None, f"{selector} #{i} is not laid out"
        assert b["width"] > 0 and b["height"] > 0, (selector, i, b)
        out.append(dict(b))
    assert out, f"nothing matches {selector}"
    return out


def _inside(inner: dict[str, float], outer: dict[str, float]) -> bool:
    return (
        inner["x"] >= outer["x"] - 0.5
        and inner["y"] >= outer["y"] - 0.5
        and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + 0.5
        and inner["y"] + inner["height"] <= outer["y"] + outer["height"] + 0.5
    )


def _disjoint(boxes: list[dict[str, float]]) -> bool:
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            if (
                a["x"] < b["x"] + b["width"] - 0.5
                and b["x"] < a["x"] + a["width"] - 0.5
                and a["y"] < b["y"] + b["height"] - 0.5
                and b["y"] < a["y"] + a["height"] - 0.5
            ):
                return False
    return True


def test_models_list_from_the_top_navigation(page_probe: PageProbe) -> None:
    page = page_probe.open("#/")
    nav = page.locator("header.topbar a.nav-models")
    assert nav.is_visible() and nav.get_attribute("href") == "#/models"
    nav.click()
    page.wait_for_selector("main.models-page[data-loaded='1']", timeout=15_000)
    assert page.evaluate("document.body.dataset.page") == "models"
    rows = page.locator("table.models tbody tr.model-row")
    assert rows.count() == 1
    row = rows.first
    assert row.locator("a.model-link").inner_text() == MODEL
    assert row.locator("td.model-latest").inner_text().startswith("v2")
    badges = row.locator(".model-alias")
    assert sorted(badges.all_inner_texts()) == ["@champion v2", "@staging v1"]
    assert "digits" in row.inner_text()
    # geometry: every cell laid out, side by side, inside the table
    table = _boxes(page, "table.models")[0]
    cells = _boxes(page, "table.models tbody tr.model-row > td")
    assert len(cells) == 6 and _disjoint(cells)
    assert all(_inside(c, table) for c in cells)
    alias_boxes = _boxes(page, "table.models .model-alias")
    assert _disjoint(alias_boxes)
    row.locator("a.model-link").click()
    page.wait_for_selector("main.model-page[data-loaded='1']", timeout=15_000)
    assert page.locator("h1.model-name").inner_text() == MODEL


def test_model_page_versions_history_and_click_through(
    page_probe: PageProbe, registry_ui: tuple[UiServer, list[str]]
) -> None:
    _, runs = registry_ui
    page = page_probe.open(f"#/models/{MODEL}")
    assert page.locator("main.model-page").count() == 1
    header = page.locator(".model-header")
    assert sorted(header.locator(".model-alias").all_inner_texts()) == [
        "@champion v2",
        "@staging v1",
    ]
    assert f"models:/{MODEL}@champion" in header.inner_text()
    # versions, newest first: v2 (@champion) then v1 (@staging)
    versions = page.locator("table.model-versions tbody tr.model-version")
    assert versions.count() == 2
    v2, v1 = versions.nth(0), versions.nth(1)
    assert v2.get_attribute("data-version") == "2" and v1.get_attribute("data-version") == "1"
    assert v2.locator(".model-version-cell .model-alias").all_inner_texts() == ["@champion"]
    assert v1.locator(".model-version-cell .model-alias").all_inner_texts() == ["@staging"]
    # the source run: a hostile name stays text; its status, its sealed record
    assert v2.locator("a.model-run-link").inner_text() == XSS_NAME
    assert page.evaluate("document.querySelectorAll('main img').length") == 0
    assert v2.locator(".model-run .status-finished").is_visible()
    sealed = v2.locator(".badge.sealed")
    assert sealed.is_visible() and "sealed record sha256" in (sealed.get_attribute("title") or "")
    # the headline number is the sealed one, the amendment marked beside it
    assert v2.locator(".headline").inner_text().startswith("val_acc")
    assert v2.locator(".headline-value").inner_text() == "0.947"
    assert v2.locator(".badge.amended").inner_text() == "amended → 0.951"
    assert v1.locator(".headline-value").inner_text() == "0.912"
    assert v1.locator(".badge.amended").count() == 0
    # the content-addressed artifact: its file's sha256 and a download of those bytes
    for row, i in ((v2, 1), (v1, 0)):
        file_sha = hashlib.sha256(WEIGHTS + bytes([i])).hexdigest()
        assert row.locator(".model-artifact").inner_text().startswith(f"model:v{i} model")
        assert f"model-{i}.bin" in row.locator(".artifact-path").inner_text()
        titles = row.locator(".sha .mono").evaluate_all("els => els.map(e => e.title)")
        assert f"sha256 {file_sha}" in titles
        link = row.locator("a.model-download")
        href = link.get_attribute("href") or ""
        assert href.startswith(f"/api/v1/runs/{runs[i]}/artifacts/")
        got = page.request.get(f"{page_probe.base}{href}")
        assert got.ok and got.body() == WEIGHTS + bytes([i])
    assert v2.locator(".model-author").inner_text() == "trainer"
    assert v2.locator(".model-author").get_attribute("title") == "trainer@example.org"
    # alias history, newest first, by the one who moved each alias, chained in the audit log
    moves = page.locator("table.alias-history tbody tr.alias-move")
    assert moves.count() == 3
    texts = [moves.nth(i).inner_text() for i in range(3)]
    assert "@champion" in texts[0] and "v1 → v2" in texts[0]
    assert "@staging" in texts[1] and "— → v1" in texts[1]
    assert "@champion" in texts[2] and "— → v1" in texts[2]
    authors = moves.locator(".model-author")
    assert (
        authors.evaluate_all("els => els.map(e => e.title)") == ["release-manager@example.org"] * 3
    )
    chained = moves.locator(".chained").all_inner_texts()
    assert len(chained) == 3 and all(c.startswith("#") for c in chained)
    # geometry: header, versions and history stacked without overlap; rows and cells laid out
    header_box = _boxes(page, ".model-header")[0]
    versions_card = _boxes(page, ".model-versions-card")[0]
    history_card = _boxes(page, ".alias-history-card")[0]
    assert header_box["y"] + header_box["height"] <= versions_card["y"] + 0.5
    assert versions_card["y"] + versions_card["height"] <= history_card["y"] + 0.5
    rows = _boxes(page, "table.model-versions tbody tr.model-version")
    assert _disjoint(rows) and all(_inside(r, versions_card) for r in rows)
    for row_sel in ("tr.model-version:nth-child(1)", "tr.model-version:nth-child(2)"):
        cells = _boxes(page, f"table.model-versions tbody {row_sel} > td")
        assert len(cells) == 8 and _disjoint(cells)
    for sel in (".headline", ".model-download", ".badge.sealed", ".badge.amended"):
        boxes = _boxes(page, f"table.model-versions {sel}")
        assert all(_inside(b, versions_card) for b in boxes), sel
    history_rows = _boxes(page, "table.alias-history tbody tr")
    assert _disjoint(history_rows) and all(_inside(r, history_card) for r in history_rows)
    DOCS_IMG.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS_IMG / "model-registry.png"), full_page=True)
    # one click from the model to the run behind its number
    v1.locator("a.model-run-link").click()
    page.wait_for_selector("main.run-page[data-loaded='1']", timeout=15_000)
    assert page.url.endswith(f"#/run/{runs[0]}")
    page_probe.wait_js("document.querySelector('.run-registered a.registered-link') !== null")
    registered = page.locator(".run-header .run-registered")
    assert registered.is_visible()
    assert registered.inner_text().replace("\n", " ") == f"{MODEL} v1 @staging"
    label = page.locator(".run-header .fact:has(.run-registered) dt")
    assert label.inner_text().lower() == "registered as"
    assert _inside(_boxes(page, ".run-registered")[0], _boxes(page, ".run-header")[0])
    registered.locator("a").click()
    page.wait_for_selector("main.model-page[data-loaded='1']", timeout=15_000)


def test_a_missing_model_answers_not_found(
    page_probe: PageProbe, registry_ui: tuple[UiServer, list[str]]
) -> None:
    # a model's page of a name that does not exist answers Not found
    page = page_probe.open("#/models/no-such-model", loaded=False)
    page.wait_for_selector("main .error-box", timeout=15_000)
    assert "Not found" in page.locator("main .error-box").inner_text()
    page_probe.allow("404")


def test_runs_table_has_a_model_column(
    page_probe: PageProbe, registry_ui: tuple[UiServer, list[str]]
) -> None:
    _, runs = registry_ui
    page = page_probe.open("#/p/digits")
    page_probe.wait_js("document.querySelectorAll('table.runs .model-cell').length === 2")
    heads = page.locator("table.runs thead th").all_inner_texts()
    assert any(h.strip().startswith("Model") for h in heads), heads
    cells = {
        runs[i]: page.locator(f"table.runs tr.run-row[data-id='{runs[i]}'] .model-cell")
        for i in (0, 1)
    }
    assert cells[runs[0]].inner_text().replace("\n", " ") == f"{MODEL} v1 @staging"
    assert cells[runs[1]].inner_text().replace("\n", " ") == f"{MODEL} v2 @champion"
    for cell in cells.values():
        box = cell.bounding_box()
        assert box is not None and box["width"] > 0 and box["height"] > 0
    cells[runs[1]].locator("a").click()
    page.wait_for_selector("main.model-page[data-loaded='1']", timeout=15_000)
    assert page.locator("h1.model-name").inner_text() == MODEL
