"""The run page shows reproduction verdicts when present (issue 8's "shown by the dashboard"),
with user-supplied text escaped. Verdicts are written to the shared store the way
`labledger repro` writes them; the other tests accept a run page with or without them."""

from __future__ import annotations

from typing import Any

from _uihelpers import PageProbe, insert_verdict

from labledger.store import open_store

HOSTILE_REASON = "<img src=z onerror=alert(3)> differs"


def _add_verdicts(store_uri: str) -> dict[str, str]:
    store = open_store(store_uri)
    try:
        ids = {r["name"]: r["id"] for r in store.list_runs(project="vision")}
        insert_verdict(
            store,
            {
                "id": "ui-verdict-1",
                "original_run_id": ids["run-3"],
                "repro_run_id": ids["run-4"],
                "verdict": "reproduced-within-tolerance",
                "tolerance": 1e-6,
                "reason": HOSTILE_REASON,
                "details": {"metrics": [{"key": "val_acc", "status": "within-tolerance"}]},
                "created_at": 1_700_000_000.0,
            },
        )
        insert_verdict(
            store,
            {
                "id": "ui-verdict-2",
                "original_run_id": ids["run-3"],
                "repro_run_id": None,
                "verdict": "not-reproducible",
                "reason": "dataset train is changed",
                "details": {},
                "created_at": 1_700_000_100.0,
            },
        )
    finally:
        store.close()
    return ids


def test_run_page_shows_reproduction_verdicts(probe: PageProbe, ui_store: str) -> None:
    ids = _add_verdicts(ui_store)
    asked: list[str] = []
    probe.page.on("request", lambda r: asked.append(r.url) if r.url.endswith("/repro") else None)
    page: Any = probe.open("#/run/run-3")
    page.wait_for_selector("#sec-repro table.repro tbody tr")
    # the header's badge and the section share one answer: one request, not two
    probe.wait_js("document.querySelector('.run-repro .badge') !== null")
    assert len(asked) == 1, asked
    rows = page.locator("#sec-repro table.repro tbody tr")
    assert rows.count() == 2
    # newest first: the blocked attempt, then the within-tolerance reproduction
    assert rows.nth(0).locator(".badge").text_content() == "! not reproducible"
    assert rows.nth(0).text_content().count("nothing was run") == 1
    assert rows.nth(1).locator(".badge").text_content() == "≈ within tolerance"
    assert rows.nth(1).locator("a.mono").text_content() == ids["run-4"][:8]
    assert rows.nth(1).locator("td").nth(3).text_content() == HOSTILE_REASON  # as text
    assert page.locator("img[src='z']").count() == 0
    probe.screenshot("run-repro")

    # the reproduction's own page links back to the original
    rows.nth(1).locator("a.mono").click()
    probe.wait_js(
        "document.querySelector('main[data-loaded=\"1\"] h1.run-name')?.textContent === 'run-4'"
        " && !!document.querySelector('#sec-repro table.repro tbody tr')"
    )
    back = page.locator("#sec-repro table.repro tbody tr")
    assert back.count() == 1
    assert "reproduces" in back.first.text_content()
    assert back.first.locator("a.mono").text_content() == ids["run-3"][:8]
    assert probe.dialogs == []
