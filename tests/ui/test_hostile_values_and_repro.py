"""The run page and the compare page with hostile user-supplied values (a config value,
artifact file names, a dataset name), the run page's seed / datasets / hardware, and the
runs table's reproduction-verdict column. Uses its own store and ``labledger ui`` server
(the shared one's run counts are asserted elsewhere)."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _uihelpers import PageProbe, UiServer, insert_verdict, start_ui, sub_env

from labledger._exceptions import InvalidArtifactError
from labledger.store import open_store

IMG = "<img src=x onerror=alert(1)>"
SCRIPT = '"><script>alert(1)</script>'
SVG_FILE = '"><svg onload=alert(2)>'  # a file name cannot hold "/": the script tag's closing slash
DATA = b"x,y\n1,2\n3,4\n"

POPULATE = textwrap.dedent(
    """
    import os, sys
    import labledger

    store, IMG, SCRIPT, SVG_FILE = sys.argv[1:5]
    os.makedirs("model", exist_ok=True)
    with open(os.path.join("model", IMG), "wb") as f:
        f.write(b"a" * 10)
    with open(os.path.join("model", SVG_FILE), "wb") as f:
        f.write(b"b" * 20)
    with open("train.csv", "wb") as f:
        f.write(DATA)
    for i in range(3):
        config = {"note": [IMG, SCRIPT, "plain"][i], "lr": 0.1 * (i + 1), "opt": {"name": SCRIPT}}
        with labledger.init("hostile", name=f"h-{i}", config=config, seed=1234 + i, store=store) as run:
            run.log({"loss": 1.0 / (i + 1)}, step=0)
            run.log({"loss": 0.5 / (i + 1)}, step=1)
            run.log_dataset("train.csv", name=SCRIPT if i == 0 else "train")
            run.summary["score"] = i
            if i == 0:
                run.log_artifact("model", name="weights-dir").wait(60)
    with labledger.init("plain", name="p-0", store=store) as run:
        run.log({"loss": 1.0})
    """
).replace("DATA", repr(DATA))


@pytest.fixture(scope="module")
def hostile_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    work = tmp_path_factory.mktemp("hostile")
    uri = f"sqlite:///{work / 'store' / 'ledger.db'}"
    (work / "populate.py").write_text(POPULATE)
    proc = subprocess.run(
        [sys.executable, "populate.py", uri, IMG, SCRIPT, SVG_FILE],
        cwd=work,
        env=sub_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    store = open_store(uri)
    try:
        ids = {r["name"]: r["id"] for r in store.list_runs(project="hostile")}
        insert_verdict(
            store,
            {
                "id": "hv-1",
                "original_run_id": ids["h-1"],
                "repro_run_id": ids["h-2"],
                "verdict": "reproduced",
                "tolerance": 0.0,
                "reason": "",
                "details": {},
                "created_at": 1_700_000_000.0,
            },
        )
        insert_verdict(
            store,
            {
                "id": "hv-2",
                "original_run_id": ids["h-0"],
                "repro_run_id": None,
                "verdict": "not-reproducible",
                "reason": IMG,
                "details": {},
                "created_at": 1_700_000_100.0,
            },
        )
    finally:
        store.close()
    return uri


@pytest.fixture(scope="module")
def hostile_server(hostile_store: str) -> Iterator[UiServer]:
    server = start_ui(hostile_store)
    yield server
    server.stop()


@pytest.fixture
def hprobe(browser: Any, hostile_server: UiServer) -> Iterator[PageProbe]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    p = PageProbe(context.new_page(), hostile_server.url)
    yield p
    context.close()
    assert p.dialogs == [], f"a dialog fired: {p.dialogs}"
    assert p.unexpected_errors() == [], f"the page logged errors: {p.errors}"


def _runs(server: UiServer, project: str) -> dict[str, dict[str, Any]]:
    body = httpx.get(
        f"{server.url}/api/v1/runs", params={"project": project, "repro": "true"}
    ).json()
    return {r["name"]: r for r in body["runs"]}


def _no_injected_markup(page: Any) -> None:
    assert page.locator("img[src='x']").count() == 0
    assert page.locator("svg[onload]").count() == 0
    assert page.locator("main script").count() == 0
    assert page.evaluate("document.querySelectorAll('[onerror],[onload]').length") == 0


def test_hostile_artifact_names_cannot_be_stored(hostile_store: str) -> None:
    """Artifact names are validated by the store, so hostile text reaches the page only
    through file names inside an artifact (tested below)."""
    store = open_store(hostile_store)
    try:
        with pytest.raises(InvalidArtifactError):
            store.create_artifact_version("hostile", IMG, "model", None, [])
    finally:
        store.close()


def test_run_page_shows_hostile_values_as_text(hprobe: PageProbe, hostile_server: UiServer) -> None:
    runs = _runs(hostile_server, "hostile")
    page = hprobe.open(f"#/run/{runs['h-0']['id']}")
    overview = page.locator("#sec-overview")
    assert overview.locator("td", has_text=IMG).count() >= 1  # config.note
    assert overview.locator("td", has_text=SCRIPT).count() >= 1  # config.opt.name
    # the artifact's files, by their hostile names, as text and as download links
    art = page.locator("#sec-artifacts table.artifacts")
    art.locator("details.files summary").click()
    links = art.locator("details.files a")
    assert sorted(links.all_text_contents()) == sorted([IMG, SVG_FILE])
    for a in links.all():
        got = httpx.get(hostile_server.url + a.get_attribute("href"))
        assert got.status_code == 200
        assert got.content in (b"a" * 10, b"b" * 20)
    # the dataset, named with a script tag
    assert page.locator("#sec-artifacts td", has_text=SCRIPT).count() == 1
    # the verdict's reason
    page.wait_for_selector("#sec-repro table.repro")
    assert page.locator("#sec-repro td", has_text=IMG).count() == 1
    _no_injected_markup(page)
    hprobe.screenshot("run-page-hostile")


def test_compare_page_shows_hostile_config_values_as_text(
    hprobe: PageProbe, hostile_server: UiServer
) -> None:
    runs = _runs(hostile_server, "hostile")
    ids = ",".join(runs[n]["id"] for n in ("h-0", "h-1", "h-2"))
    page = hprobe.open(f"#/compare?ids={ids}")
    row = page.locator("#config-diff tr", has=page.locator("th", has_text="note"))
    assert row.locator("td").all_text_contents() == [IMG, SCRIPT, "plain"]
    assert page.locator("#config-diff th.mono", has_text="opt.name").count() == 0  # equal: hidden
    page.locator("#config-diff input[type=checkbox]").uncheck()
    same = page.locator("#config-diff tr", has=page.locator("th", has_text="opt.name"))
    assert same.locator("td").all_text_contents() == [SCRIPT] * 3
    _no_injected_markup(page)
    hprobe.screenshot("compare-hostile")


def test_run_page_shows_seed_datasets_and_hardware(
    hprobe: PageProbe, hostile_server: UiServer
) -> None:
    rid = _runs(hostile_server, "hostile")["h-1"]["id"]
    record = httpx.get(f"{hostile_server.url}/api/v1/runs/{rid}").json()
    cpu = record["env"]["hardware"]["cpu_model"]
    assert isinstance(cpu, str) and cpu
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists() and "model name" in cpuinfo.read_text():
        names = re.findall(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), flags=re.M)
        assert cpu.strip() == names[0].strip()
    page = hprobe.open(f"#/run/{rid}")
    # seed: in the overview facts and in the Seed section
    fact = page.locator(".fact", has=page.locator("dt", has_text="Seed"))
    assert fact.locator("dd").text_content() == "1235"
    seed_sec = page.locator("section.card", has=page.locator("h2", has_text=re.compile(r"^Seed$")))
    seed_row = seed_sec.locator("tr", has=page.locator("th", has_text=re.compile(r"^seed$")))
    assert seed_row.locator("td").text_content() == "1235"
    # datasets: name and sha256 (the full digest in the title, its start as text)
    digest = hashlib.sha256(DATA).hexdigest()
    assert record["datasets"][0]["sha256"] == digest
    ds_sec = page.locator("section.card", has=page.locator("h2", has_text="Datasets"))
    row = ds_sec.locator("tbody tr")
    assert row.count() == 1
    cells = row.locator("td")
    assert cells.nth(0).text_content() == "train"
    sha_cell = cells.nth(3)
    assert sha_cell.get_attribute("title") == digest
    assert digest.startswith(sha_cell.text_content())
    assert len(sha_cell.text_content()) >= 12
    # hardware: the captured CPU model
    hw_sec = page.locator("section.card", has=page.locator("h2", has_text="Hardware"))
    cpu_row = hw_sec.locator("tr", has=page.locator("th", has_text="cpu_model"))
    assert cpu_row.locator("td").text_content() == cpu
    hprobe.screenshot("run-page-environment")


def test_runs_table_shows_reproduction_verdicts(
    hprobe: PageProbe, hostile_server: UiServer
) -> None:
    runs = _runs(hostile_server, "hostile")
    assert runs["h-0"]["repro"] == "not-reproducible" and runs["h-0"]["repro_of"] is None
    assert runs["h-1"]["repro"] == "reproduced" and runs["h-1"]["repro_of"] is None
    assert runs["h-2"]["repro"] == "reproduced" and runs["h-2"]["repro_of"] == runs["h-1"]["id"]
    # without ?repro=true the listing is unchanged (HttpStore's run records stay the same)
    plain = httpx.get(f"{hostile_server.url}/api/v1/runs", params={"project": "hostile"}).json()
    assert all("repro" not in r for r in plain["runs"])

    page = hprobe.open("#/p/hostile")
    hprobe.wait_js("document.querySelectorAll('table.runs tbody tr.run-row').length === 3")
    heads = [t.strip() for t in page.locator("table.runs thead th").all_text_contents()]
    assert "Repro" in heads
    col = heads.index("Repro")  # (the selection checkbox has its own header cell)

    def cell(name: str) -> Any:
        row = page.locator("table.runs tbody tr", has=page.locator(".run-link", has_text=name))
        return row.locator("td").nth(col)

    assert cell("h-0").locator(".badge").text_content() == "! not reproducible"
    assert "verdict-not-reproducible" in cell("h-0").locator(".badge").get_attribute("class")
    assert cell("h-1").locator(".badge").text_content() == "✓ reproduced"
    assert cell("h-2").locator(".badge").text_content() == "✓ reproduced"
    link = cell("h-2").locator("a")
    assert link.text_content() == runs["h-1"]["id"][:8]
    assert link.get_attribute("href") == f"#/run/{runs['h-1']['id']}"
    hprobe.screenshot("runs-table-repro")
    # a project without verdicts has no such column (as in `labledger ls`)
    page = hprobe.open("#/p/plain")
    hprobe.wait_js("document.querySelectorAll('table.runs tbody tr.run-row').length === 1")
    heads = [t.strip() for t in page.locator("table.runs thead th").all_text_contents()]
    assert "Repro" not in heads
