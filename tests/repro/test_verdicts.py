"""Metric comparison, overall verdicts, and verdict storage on SQLite and PostgreSQL."""

from __future__ import annotations

import math

import pytest

from labledger import UsageError
from labledger.repro import compare_summaries, overall_verdict
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


def test_verdicts_are_stored_linked_to_both_runs(any_store_uri: str) -> None:
    store = open_store(any_store_uri)
    try:
        first = store.add_repro_verdict(
            {
                "original_run_id": "a" * 32,
                "repro_run_id": None,
                "verdict": "not-reproducible",
                "reason": "unseeded",
                "details": {"x": math.nan},
                "created_at": 100.0,
            }
        )
        second = store.add_repro_verdict(
            {
                "id": "v2",
                "original_run_id": "a" * 32,
                "repro_run_id": "b" * 32,
                "verdict": "reproduced",
                "tolerance": 0.0,
                "details": {"metrics": [{"key": "loss", "status": "identical"}]},
                "created_at": 200.0,
            }
        )
        assert (
            store.add_repro_verdict(
                {"id": "v2", "original_run_id": "a" * 32, "verdict": "reproduced"}
            )
            == "v2"
        )
        both = store.repro_verdicts(["a" * 32])
        assert [v["id"] for v in both] == [
            second,
            first,
        ]  # newest first, the retried id stored once
        assert math.isnan(both[1]["details"]["x"])
        assert both[1]["reason"] == "unseeded"
        assert [v["id"] for v in store.repro_verdicts(["b" * 32])] == ["v2"]
        assert store.repro_verdicts(["c" * 32]) == []
        with pytest.raises(UsageError, match="verdict must be one of"):
            store.add_repro_verdict({"original_run_id": "a" * 32, "verdict": "maybe"})
    finally:
        store.close()
