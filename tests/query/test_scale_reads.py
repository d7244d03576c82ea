"""The streamed reads behind ``importance`` and ``export``: the same answers as the whole
reads they replace (keyset pages, metrics and amendments in bulk per page)."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from labledger import Ledger
from labledger._values import flatten
from labledger.analysis import importance
from labledger.analysis._importance import _noise_floor, noise_floor


def _replicated_runs(n: int, seed: int = 3) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    runs = []
    for i in range(n):
        cfg = {
            "lr": rng.choice([0.1, 0.01, 1e-3, 1, 1.0, True, "1", None]),
            "opt": rng.choice(["adam", "sgd"]),
            "layers": rng.choice([[1, 2], [2, 1], {"b": 1, "a": 2}]),
            "seed": i,  # a seed key: not part of the replicate set
            "model": {"random_state": i, "width": rng.choice([64, 128])},
        }
        runs.append(
            {
                "id": f"r{i}",
                "project": rng.choice(["p", "q"]),
                "config": cfg,
                "summary": {"acc": rng.random() + (0.5 if cfg["opt"] == "adam" else 0.0)},
                "env": {"git": {"commit": rng.choice(["a", "b"]), "diff_sha256": None}},
                "datasets": rng.choice([[], [{"name": "d", "sha256": "x"}], [{"name": "d"}]]),
            }
        )
    return runs


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_fast_noise_floor_groups_as_replicate_sets_do(seed: int) -> None:
    runs = _replicated_runs(400, seed)
    flat = [flatten(r["config"]) for r in runs]
    y = [r["summary"]["acc"] for r in runs]
    expected = noise_floor(runs, "acc")
    assert expected is not None
    assert _noise_floor(runs, flat, y) == expected
    # importance's own (codes per column, group sums in numpy) says the same
    assert {it["noise_floor"] for it in importance(runs, "acc", code=False)} == {expected}


def test_one_run_per_set_has_no_floor() -> None:
    runs = _replicated_runs(3)
    for i, r in enumerate(runs):
        r["config"]["width"] = i
    flat = [flatten(r["config"]) for r in runs]
    assert _noise_floor(runs, flat, [1.0, 2.0, 3.0]) is None


@pytest.fixture
def many_runs(any_store_uri: str) -> Any:
    from labledger.store import open_store

    store: Any = open_store(any_store_uri)  # a SQL store: create_runs (bulk)
    rng = random.Random(5)
    records = [
        {
            "id": f"{i:032x}",
            "project": "p" if i % 7 else "other",
            "name": f"run-{i}",
            "created_at": 1_700_000_000.0 + i // 3,  # equal created_at: the id breaks ties
            "config": {"lr": rng.choice([0.1, 0.01, 0.001]), "opt": rng.choice(["a", "b"])},
            "summary": {"note": "x"} if i % 5 == 0 else {},
            "tags": ["t"] if i % 2 else [],
            "env": {"packages": {"numpy": "2." + str(i % 2)}, "git": {"commit": "c"}},
            "status": "finished",
            "ended_at": 1_700_000_100.0 + i,
            "metrics": {
                "acc": ([1], [rng.random()], [1.0]),
                "loss": ([1], [math.nan if i % 11 == 0 else rng.random()], [1.0]),
            },
        }
        for i in range(157)
    ]
    store.create_runs(records)
    yield store
    store.close()


@pytest.mark.parametrize("page", [1, 10, 2000])
def test_the_streamed_export_is_the_whole_read_in_pages(many_runs: Any, page: int) -> None:
    whole = many_runs.export_records(project="p", order_by=["-created_at"], limit=10_000)
    listed = [r["id"] for r in many_runs.list_runs(project="p")]
    streamed = list(many_runs.iter_export_records(project="p", page=page))
    assert [r["id"] for r in streamed] == listed  # list_runs' order, every run once
    by_id = {r["id"]: r for r in whole}
    for r in streamed:
        w = by_id[r["id"]]
        for k in ("config", "summary", "tags", "datasets", "name", "status", "git_commit"):
            assert r[k] == w[k], k
        assert r["metrics"].keys() == w["metrics"].keys()
        for k, v in r["metrics"].items():
            assert v == w["metrics"][k] or (math.isnan(v) and math.isnan(w["metrics"][k]))
    narrow = list(
        many_runs.iter_export_records(
            project="p", page=page, metrics=["acc"], media=False, packages=True
        )
    )
    assert all(set(r["metrics"]) == {"acc"} for r in narrow)
    assert {r["packages"]["numpy"] for r in narrow} == {"2.0", "2.1"}
    assert many_runs.export_records(project="p") == streamed


def test_importance_reads_the_stream(many_runs: Any) -> None:
    led = Ledger(many_runs.uri)
    items = led.importance("acc", project="p")
    assert {i["key"] for i in items} >= {"lr", "opt"}
    assert {i["n"] for i in items} == {len(many_runs.list_runs(project="p"))}
    led.close()


def test_verdicts_of_many_runs_are_those_of_each(many_runs: Any) -> None:
    """``repro_verdicts`` of an export's many ids (one read of a small verdict table) gives
    what it gives for a few ids (IN lists), whichever side of a verdict a run is on."""
    import sqlalchemy as sa

    from labledger.store import _schema as s

    ids = [r["id"] for r in many_runs.list_runs()]
    rows = [
        {"id": f"v{i}", "original_run_id": o, "repro_run_id": r, "verdict": "reproduced",
         "reason": None, "tolerance": None, "details": {}, "created_at": 1.0 + i}
        for i, (o, r) in enumerate([(ids[0], ids[1]), (ids[2], "x" * 32), ("y" * 32, ids[3]),
                                    ("y" * 32, "z" * 32)])
    ]  # fmt: skip
    with many_runs.engine.begin() as conn:
        conn.execute(sa.insert(s.repro_verdicts), rows)
    few = many_runs.repro_verdicts(ids[:4])
    assert [v["id"] for v in few] == ["v2", "v1", "v0"]
    padded = ids[:4] + [f"{i:032x}" for i in range(10_000, 10_500)]
    assert many_runs.repro_verdicts(padded) == few
    assert [v["id"] for v in many_runs.repro_verdicts(ids)] == ["v2", "v1", "v0"]


def test_columnar_importance_is_the_records_importance(any_store_uri: str) -> None:
    """``Ledger.importance`` reads columns (``iter_run_columns``, one statement) and ranks
    them as :func:`~labledger.analysis.importance` ranks the same runs' full records:
    nested and missing config keys, seeds, datasets, changed packages, a metric set in the
    summary beside one logged as a series, NaN and non-number values left out."""
    from labledger.store import open_store

    store: Any = open_store(any_store_uri)  # a SQL store: create_runs (bulk)
    rng = random.Random(11)
    records = []
    for i in range(240):
        cfg: dict[str, Any] = {
            "lr": 10 ** rng.uniform(-5, -1),
            "opt": rng.choice(["adam", "sgd"]),
            "model": {"width": rng.choice([64, 128]), "seed": i},
            "seed": i % 3,
        }
        if i % 4:
            cfg["drop"] = rng.choice([0.1, 0.2, None])
        if i % 9 == 0:
            cfg["model"] = "tiny"  # a leaf where other runs nest
        acc = (0.5 if cfg["opt"] == "adam" else 0.0) + rng.random() * 0.1
        records.append(
            {
                "id": f"{i:032x}",
                "project": "p",
                "name": f"r{i}",
                "created_at": 1_700_000_000.0 + i // 2,
                "config": cfg,
                # a summary member wins over the series; a string is no number
                "summary": {"acc": acc + 1}
                if i % 13 == 0
                else {"acc": "n/a"}
                if i == 7
                else {"acc": True}  # a boolean is 1
                if i == 8
                else {},
                "datasets": [{"name": "d", "sha256": rng.choice("xy")}] if i % 3 else [],
                "env": {
                    "git": {"commit": rng.choice(["a", "b"]), "diff_sha256": None},
                    "packages": {"numpy": "2." + str(i % 2), "torch": "2.1"} if i % 5 else {},
                },
                "status": "finished",
                "ended_at": 1_700_000_100.0 + i,
                "metrics": {"acc": ([1], [math.nan if i % 17 == 0 else acc], [1.0])},
            }
        )
    store.create_runs(records)
    led = Ledger(any_store_uri)
    full = [dict(led.store.get_run(r["id"])) for r in led.runs(project="p")]
    for keys in (None, ["lr", "opt", "missing"]):
        got = led.importance("acc", project="p", keys=keys)
        want = importance(full, "acc", keys=keys)
        assert got == want
    got = led.importance("acc", project="p")
    assert got[0]["key"] == "opt"
    assert {i["key"] for i in got} >= {"git.commit", "data.d", "packages.numpy", "model"}
    assert "seed" not in {i["key"] for i in got}
    # 15 NaN series of which 2 have a summary value, and the "n/a" run: left out
    assert {i["n"] for i in got} == {240 - 13 - 1}
    led.close()
    store.close()


@pytest.mark.parametrize("fmt", ["parquet", "csv", "json"])
def test_paged_export_writes_what_the_whole_export_writes(tmp_path: Any, fmt: str) -> None:
    """``write_pages`` (a row group a page, spilled parts joined when a page's columns
    differ) writes the rows ``export_rows`` writes of all of them at once: a key first
    seen late, whole numbers then fractions, a column of one page only, booleans."""
    import pandas as pd

    from labledger.analysis import export_rows, write_pages

    rows: list[dict[str, Any]] = []
    for i in range(30):
        r: dict[str, Any] = {"id": f"r{i}", "config.lr": 0.1 * i, "summary.acc": i // 2}
        if i >= 10:
            r["summary.acc"] = i / 3  # floats after whole numbers
            r["config.late"] = "x" if i % 2 else "y"
        if i < 5:
            r["config.early"] = i
        r["dirty"] = None if i < 12 else bool(i % 2)
        rows.append(r)
    pages = [rows[i : i + 7] for i in range(0, 30, 7)]
    whole = export_rows(rows, tmp_path / f"whole.{fmt}", fmt)
    paged, n = write_pages(iter(pages), tmp_path / f"paged.{fmt}", fmt)
    assert n == 30
    if fmt == "json":
        assert paged.read_text() == whole.read_text()
        return
    if fmt == "csv":
        assert paged.read_text() == whole.read_text()
        return
    a, b = pd.read_parquet(whole), pd.read_parquet(paged)
    assert list(a.columns) == list(b.columns)
    pd.testing.assert_frame_equal(a, b, check_dtype=True)
    assert not list(tmp_path.glob(".export-*"))  # the spilled parts are gone


def test_float_codes_group_as_the_reprs_do() -> None:
    """The noise floor groups a float column by bit pattern and counts an encoded column's
    distinct floats without a ``repr`` per value: equal exactly where the reprs are
    (-0.0 apart from 0.0, every NaN one value, 1 and 1.0 as in the token rule)."""
    from labledger.analysis._importance import _codes, _encode, _token

    rng = random.Random(4)
    pool = [0.0, -0.0, math.nan, -math.nan, math.inf, -math.inf, 0.1, 0.1 + 1e-17, 5e-324, 1.0]
    col = [rng.choice(pool) for _ in range(500)]
    codes, count = _codes(col)
    tokens = [_token(v) for v in col]
    assert count == len(set(tokens))
    # the same partition: two runs share a code exactly where they share a token
    pairs = {(int(c), t) for c, t in zip(codes, tokens, strict=True)}
    assert len(pairs) == count == len({c for c, _ in pairs}) == len({t for _, t in pairs})
    numeric = [rng.choice([0.0, -0.0, 0.25, 3.5]) for _ in range(300)]
    for values in (numeric, [*numeric, None, None]):
        assert _encode(values)[3] == len({repr(v) for v in values})


@pytest.mark.parametrize("seed", [1, 2])
def test_the_floor_of_zero_and_negative_zero_floats_is_the_reference(seed: int) -> None:
    runs = _replicated_runs(400, seed)
    rng = random.Random(seed)
    for r in runs:
        r["config"]["wd"] = rng.choice([0.0, -0.0, 0.1])
        r["config"]["lr"] = 0.5  # the mixed-type key out: wd alone decides with opt
    expected = noise_floor(runs, "acc")
    assert expected is not None
    assert {it["noise_floor"] for it in importance(runs, "acc", code=False)} == {expected}


def test_a_continuous_key_leaves_no_replicate_set() -> None:
    """Every run alone in its set (a key drawn at random per run): no floor, as the
    reference says, though the grouping stops at that key."""
    runs = _replicated_runs(200)
    for r in runs:
        r["config"]["lr"] = random.random()
    assert noise_floor(runs, "acc") is None
    assert {it["noise_floor"] for it in importance(runs, "acc", code=False)} == {None}


@pytest.mark.parametrize("page", [1, 10, 5000])
def test_run_columns_are_one_statement_read_in_pages(many_runs: Any, page: int) -> None:
    """``iter_run_columns`` runs one statement for all the runs (no query per page) and
    hands its rows on ``page`` at a time, in ``list_runs``' order."""
    import sqlalchemy as sa

    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        if "FROM runs" in statement:
            statements.append(statement)

    sa.event.listen(many_runs.engine, "before_cursor_execute", seen)
    try:
        pages = list(many_runs.iter_run_columns(project="p", metric="acc", page=page))
    finally:
        sa.event.remove(many_runs.engine, "before_cursor_execute", seen)
    assert len(statements) == 1
    listed = many_runs.list_runs(project="p")
    assert all(len(p["id"]) <= page for p in pages)
    assert [i for p in pages for i in p["id"]] == [r["id"] for r in listed]
    assert len(pages) == -(-len(listed) // page)
    one = next(iter(many_runs.iter_run_columns(project="p", metric="acc", page=10_000)))
    for name in ("value", "config", "commit", "project"):
        got = [v for p in pages for v in p[name]]
        assert [repr(v) for v in got] == [repr(v) for v in one[name]], name


def test_importance_of_30k_runs_ranks_the_strong_factor_first() -> None:
    """Beyond the forest's per-tree cap (each tree a bootstrap of 2,000 runs): a strong
    factor first, a weak one second, an irrelevant one last, every run counted in ``n``
    and ``missing``, the seed's share of the variance near the truth, and the same
    answer twice (deterministic for one ``random_state``)."""
    import numpy as np

    from labledger.analysis import importance_columns

    n = 30_000
    rng = np.random.default_rng(7)
    strong = rng.integers(0, 10, n)
    weak = rng.integers(0, 5, n)
    noise = rng.choice(["a", "b", "c", "d"], n)
    sigma = 0.5
    y = strong * 0.3 + weak * 0.1 + rng.normal(0, sigma, n)
    columns = {
        "value": y.tolist(),
        "project": ["p"] * n,
        "config": [
            {"strong": int(s), "weak": int(w), "noise": str(z), "seed": i % 7}
            | ({"extra": 1} if i % 3 == 0 else {})
            for i, (s, w, z) in enumerate(zip(strong, weak, noise, strict=True))
        ],
        "datasets": [[]] * n,
        "commit": ["c"] * n,
        "patch": [None] * n,
    }
    items = importance_columns(columns, "v")
    assert [it["key"] for it in items][:2] == ["strong", "weak"]
    by_key = {it["key"]: it for it in items}
    assert by_key["strong"]["importance"] > 0.6
    assert by_key["noise"]["importance"] < 0.05
    assert by_key["extra"]["missing"] == n - len(range(0, n, 3))
    assert {it["n"] for it in items} == {n}
    truth = sigma**2 / float(np.var(y, ddof=1))  # the seed moves only the noise term
    assert abs(items[0]["noise_floor"] - truth) < 0.03
    assert importance_columns(columns, "v") == items
