"""The run page shows the author and record hash, edits notes as the user, and lists the
history of edits (docs/trust.md); the runs table has an Author column."""

from __future__ import annotations

from typing import Any

from _uihelpers import PageProbe

from labledger.store import open_store


def test_run_page_shows_author_record_and_edit_history(probe: PageProbe, ui_store: str) -> None:
    store = open_store(ui_store)
    try:
        run = next(r for r in store.list_runs(project="vision") if r["name"] == "run-2")
        record = store.get_run(run["id"])["record_sha256"]
    finally:
        store.close()
    page: Any = probe.open("#/run/run-2")
    page.wait_for_selector(".run-author")
    assert page.locator(".run-author").text_content() == run["author"] != ""
    assert page.locator(".run-record").text_content() == record[:16]

    page.locator(".run-edit summary").click()
    page.locator(".edit-notes").fill("checked by <b>hand</b>")
    page.locator(".edit-save").click()
    page.wait_for_selector(".run-history .edit-row")
    row = page.locator(".run-history .edit-row").last
    assert "notes" in row.text_content() and "checked by <b>hand</b>" in row.text_content()
    assert "(unset) → checked by" in row.text_content()  # no raw "null →"
    assert "null" not in row.text_content()
    assert page.locator(".notes").text_content() == "checked by <b>hand</b>"  # as text
    assert page.locator("b").count() == 0

    page = probe.open("#/p/vision")
    page.wait_for_selector("th:has-text('Author')")
    # the table shows the short author (before "@"), the full one on hover
    cell = page.locator("td .author").first
    assert cell.text_content() == run["author"].split("<")[0].strip().split("@")[0]
    assert cell.get_attribute("title") == run["author"]
