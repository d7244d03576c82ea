"""Metric comparison, overall verdicts, and verdict storage on SQLite and PostgreSQL."""

from __future__ import annotations

import math

import pytest

import labledger
from labledger import UsageError
from labledger._exceptions import VerdictRefusedError
from labledger.repro import compare_summaries, overall_verdict
from labledger.repro._verdict import judge
from labledger.store import open_store
from labledger.store.sql import code_revisions


def test_compare_summaries_classifies_each_metric() -> None:
    rows = compare_summaries(
        {"acc": 0.9, "loss": 1.0, "nan": math.nan, "gone": 1, "name": "a", "system/cpu": 50.0},
        {"acc": 0.9, "loss": 1.0 + 1e-9, "nan": math.nan, "name": "b", "system/cpu": 90.0},
        tolerance=1e-6,
    )
    assert {r["key"]: r["status"] for r in rows} == {
        "acc": "identical",
        "gone": "missing",
        "loss": "within-tolerance",
        "name": "differs",
        "nan": "identical",
    }
    assert rows[2]["rel_diff"] == pytest.approx(1e-9, rel=1e-3)


def test_zero_tolerance_means_bit_for_bit() -> None:
    rows = compare_summaries({"loss": 1.0}, {"loss": 1.0 + 2**-52})
    assert rows[0]["status"] == "differs"
    assert overall_verdict(rows)[0] == "not-reproduced"


def test_overall_verdict() -> None:
    same = [{"key": "a", "status": "identical"}]
    close = [*same, {"key": "b", "status": "within-tolerance"}]
    assert overall_verdict(same) == ("reproduced", None)
    assert overall_verdict(close) == ("reproduced-within-tolerance", None)
    assert overall_verdict([*close, {"key": "c", "status": "differs"}]) == (
        "not-reproduced",
        "1 of 3 metrics differ: c",
    )
    assert overall_verdict(same, failure="the reproduction failed")[0] == "not-reproduced"
    assert overall_verdict([])[0] == "not-reproducible"


def test_migration_0004_is_known() -> None:
    assert "0004" in code_revisions()


def _run(uri: str, values: dict[str, float], **kw: object) -> str:
    """A finished run with a series per key (steps 0..2, the value at the last step)."""
    run = labledger.init("p", store=uri, capture=False, system_metrics=False, **kw)  # type: ignore[arg-type]
    for step in range(3):
        run.log({k: v + (2 - step) for k, v in values.items()}, step=step)
    run.finish()
    return run.id


def test_verdicts_are_stored_linked_to_both_runs(any_store_uri: str) -> None:
    a = _run(any_store_uri, {"loss": 1.0})
    b = _run(any_store_uri, {"loss": 1.0}, job_type="repro", parent_run_id=a)
    store = open_store(any_store_uri)
    try:
        vid = store.add_repro_verdict(
            {
                "id": "v2",
                "original_run_id": a,
                "repro_run_id": b,
                "verdict": "reproduced",
                "tolerance": 0.0,
                "details": {"x": math.nan, "by": "someone-else", "metrics": []},
                "created_at": 200.0,
            },
            by="alice",
        )
        assert vid == "v2"
        retried = {"id": "v2", "original_run_id": a, "repro_run_id": b, "verdict": "reproduced"}
        assert store.add_repro_verdict(retried) == "v2"
        both = store.repro_verdicts([a])
        assert [v["id"] for v in both] == ["v2"]  # the retried id stored once
        (v,) = both
        assert math.isnan(v["details"]["x"])
        assert v["by"] == v["details"]["by"] == "alice"  # the caller, not the client's field
        # the metric table is the store's own, derived from the two runs
        assert v["details"]["metrics"] == [
            {"key": "loss", "original": 1.0, "repro": 1.0, "status": "identical", "rel_diff": 0.0}
        ]
        assert [v["id"] for v in store.repro_verdicts([b])] == ["v2"]
        assert store.repro_verdicts(["c" * 32]) == []
        with pytest.raises(UsageError, match="verdict must be one of"):
            store.add_repro_verdict({"original_run_id": a, "verdict": "maybe"})
    finally:
        store.close()


def test_a_verdict_without_its_reproduction_run_is_refused(any_store_uri: str) -> None:
    a = _run(any_store_uri, {"acc": 0.9})
    other = _run(any_store_uri, {"acc": 0.5})  # an ordinary run, not a reproduction
    wrong_parent = _run(any_store_uri, {"acc": 0.5}, job_type="repro", parent_run_id=other)
    same = _run(any_store_uri, {"acc": 0.9}, job_type="repro", parent_run_id=a)
    store = open_store(any_store_uri)
    try:
        for repro_id, why in (
            (None, "exists only with its reproduction run"),
            (other, "is not a reproduction of run"),
            (wrong_parent, "is not a reproduction of run"),
            (a, "cannot reproduce itself"),
            ("f" * 32, "no run"),
        ):
            with pytest.raises(VerdictRefusedError, match=why):
                store.add_repro_verdict(
                    {"original_run_id": a, "repro_run_id": repro_id, "verdict": "not-reproduced"}
                )
        # a real reproduction whose numbers match cannot be stored as "not reproduced"
        with pytest.raises(VerdictRefusedError, match="give 'reproduced', not 'not-reproduced'"):
            store.add_repro_verdict(
                {"original_run_id": a, "repro_run_id": same, "verdict": "not-reproduced"}
            )
        assert store.repro_verdicts([a]) == []
    finally:
        store.close()


def test_a_crashed_run_is_compared_at_the_steps_it_recorded() -> None:
    original = {
        "status": "killed",
        "summary": {"loss": 0.5, "note": 3, "system/cpu": 1.0},
        "metrics": {
            "loss": {"last": 0.5, "last_step": 4},
            "system/cpu": {"last": 1.0, "last_step": 4},
        },
    }
    complete = {"status": "finished", "summary": {"loss": 0.1, "note": 9}}
    series = {("loss", 4): 0.5, ("loss", 9): 0.1}
    verdict, reason, rows = judge(original, complete, 0.0, lambda k, st: series.get((k, st)))
    assert verdict == "reproduced", reason
    assert {r["key"]: (r["status"], r.get("step")) for r in rows} == {
        "loss": ("identical", 4),  # the reproduction's value at step 4, not its final 0.1
        "note": ("not-compared", None),  # set by the script, no step to compare at
    }
    verdict, _, rows = judge(original, complete, 0.0, lambda k, st: None)
    assert verdict == "not-reproduced" and rows[0]["status"] == "missing"
