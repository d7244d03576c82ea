"""Sealed values and amendments (docs/trust.md "Sealed values and amendments").

The lecture's scene: the author of the winning run changes its result after it finished
(``labledger edit RUN --summary best_val_acc=0.991``; it logged 0.9673). Real processes
throughout (training scripts and the CLI as subprocesses), on SQLite and PostgreSQL: the
sealed value stays the run's result in ``ls``, ``best``, ``show``, ``compare``,
``export`` and pandas, with the amendment beside it; rankings use sealed values unless
asked (``--amended``); ``cite`` cites sealed values and ``check`` reports amended ones.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]

TRAIN = """
import labledger
with labledger.init("vision", name={name!r}, config={{"lr": {lr}}}, capture=False) as run:
    for i in range(50):
        run.log({{"best_val_acc": {final} - (49 - i) / 1000, "loss": 1.0 - i / 100}})
print(run.id)
"""


def _env(store: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABLEDGER_")}
    env.update(
        PYTHONPATH=str(ROOT / "src"),
        LABLEDGER_URI=store,
        LABLEDGER_CONSOLE="off",
        LABLEDGER_CAPTURE="off",
        COLUMNS="200",
    )
    return env


def cli(store: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "labledger.cli", *args],
        env=_env(store),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def ok(store: str, *args: str, cwd: Path | None = None) -> str:
    out = cli(store, *args, cwd=cwd)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def train(store: str, cwd: Path, name: str, final: float, lr: float) -> str:
    out = subprocess.run(
        [sys.executable, "-c", TRAIN.format(name=name, lr=lr, final=final)],
        env=_env(store),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def _summary_column(store: str, run_id: str) -> Any:
    engine = sa.create_engine(store.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            value = conn.execute(
                sa.text("SELECT summary FROM runs WHERE id = :id"), {"id": run_id}
            ).scalar()
    finally:
        engine.dispose()
    return json.loads(value) if isinstance(value, str) else value


def test_an_amended_result_stays_sealed_marked_and_out_of_the_ranking(
    any_store_uri: str, isolated_env: Path
) -> None:
    store = any_store_uri
    winner = train(store, isolated_env, "winner", 0.9673, lr=0.1)
    second = train(store, isolated_env, "second", 0.9601, lr=0.2)
    third = train(store, isolated_env, "third", 0.9402, lr=0.3)
    before = ok(store, "cite", winner, "--metric", "best_val_acc").strip()
    assert before.startswith("best_val_acc = 0.9673 (labledger run ")

    # the author "improves" the finished result
    edited = ok(
        store, "edit", winner, "--summary", "best_val_acc=0.991", "--reason", "re-evaluated"
    )
    assert "amended summary.best_val_acc: 0.9673 -> 0.991" in edited

    # the sealed value stays stored (the column is untouched) and the chain verifies
    assert "best_val_acc" not in (_summary_column(store, winner) or {})
    assert cli(store, "audit", "verify").returncode == 0

    # show --json: sealed summary, the amendment beside it, the edit event
    doc = json.loads(ok(store, "show", winner, "--json"))
    assert doc["summary"]["best_val_acc"] == 0.9673
    amended = doc["amended"]["best_val_acc"]
    assert amended["sealed"] == 0.9673 and amended["value"] == 0.991
    assert amended["by"] == doc["author"] and amended["reason"] == "re-evaluated"
    assert isinstance(amended["at"], float)
    [event] = [e for e in doc["edits"] if e["field"] == "summary.best_val_acc"]
    assert event["amendment"] is True and (event["old"], event["new"]) == (0.9673, 0.991)
    shown = ok(store, "show", winner, "--history")
    assert "AMENDED 0.991" in shown and "(re-evaluated)" in shown
    assert "summary.best_val_acc (amendment): 0.9673 -> 0.991  reason: re-evaluated" in shown

    # best ranks by sealed values: the winner is #1 on what it logged, marked
    board = json.loads(ok(store, "best", "--metric", "best_val_acc", "--json"))
    assert [(r["id"], r["value"]) for r in board] == [
        (winner, 0.9673),
        (second, 0.9601),
        (third, 0.9402),
    ]
    assert board[0]["amended"]["value"] == 0.991 and board[1]["amended"] is None
    text = ok(store, "best", "--metric", "best_val_acc")
    assert "(amended: 0.991)" in text and "ranked by the sealed value" in text

    # a run amended past another does not overtake it, unless asked
    ok(store, "edit", third, "--summary", "best_val_acc=0.999")
    board = json.loads(ok(store, "best", "--metric", "best_val_acc", "--json"))
    assert [r["id"] for r in board] == [winner, second, third]
    board = json.loads(ok(store, "best", "--metric", "best_val_acc", "--amended", "--json"))
    assert [(r["id"], r["value"]) for r in board] == [
        (third, 0.999),
        (winner, 0.991),
        (second, 0.9601),
    ]

    # ls: sealed values with the marker; sorting by sealed values unless --amended
    listed = json.loads(ok(store, "ls", "--sort", "-summary.best_val_acc", "--json"))
    assert [r["id"] for r in listed] == [winner, second, third]
    assert listed[0]["summary"]["best_val_acc"] == 0.9673
    assert listed[0]["amended"]["best_val_acc"]["value"] == 0.991
    assert listed[1]["amended"] == {}
    listed = json.loads(ok(store, "ls", "--sort", "-summary.best_val_acc", "--amended", "--json"))
    assert [r["id"] for r in listed] == [third, winner, second]
    assert listed[0]["summary"]["best_val_acc"] == 0.999
    table = ok(store, "ls", "--columns", "best_val_acc")
    assert "0.9673 (amended: 0.991)" in table and "0.9402 (amended: 0.999)" in table
    assert "2 runs with summary values amended" in table
    only = json.loads(ok(store, "ls", "--amended", "-f", "summary.best_val_acc > 0.99", "--json"))
    assert {r["id"] for r in only} == {winner, third}
    assert json.loads(ok(store, "ls", "-f", "summary.best_val_acc > 0.99", "--json")) == []

    # compare and export: the sealed value, the amended one beside it
    table_doc = json.loads(ok(store, "compare", winner, second, "--json"))
    rows = {r["key"]: r["values"] for r in table_doc["rows"]}
    assert rows["summary.best_val_acc"] == [0.9673, 0.9601]
    assert rows["amended.best_val_acc"] == [0.991, None]
    keys = [r["key"] for r in table_doc["rows"]]
    assert keys.index("amended.best_val_acc") == keys.index("summary.best_val_acc") + 1
    d = json.loads(ok(store, "diff", winner, second, "--json"))
    sealed = {e["key"]: (e["a"], e["b"]) for e in d["summary"]}
    assert sealed["best_val_acc"] == (0.9673, 0.9601)
    assert d["amended"] == [
        {"key": "best_val_acc", "a": 0.991, "b": None, "same": False, "only": "a"}
    ]
    out = isolated_env / "runs.csv"
    ok(store, "export", "-o", str(out), "--sort", "-summary.best_val_acc")
    with open(out, newline="") as fh:
        exported = list(csv.DictReader(fh))
    assert [r["id"] for r in exported] == [winner, second, third]
    assert float(exported[0]["summary.best_val_acc"]) == 0.9673
    assert float(exported[0]["amended.best_val_acc"]) == 0.991
    assert exported[1]["amended.best_val_acc"] == ""

    # cite: sealed values by default; the amended one only when asked, and it says so
    fresh = cli(store, "cite", winner, "--metric", "best_val_acc")
    assert fresh.stdout.startswith("best_val_acc = 0.9673 (labledger run ")
    assert "was amended after the run ended" in fresh.stderr
    marked = ok(store, "cite", winner, "--metric", "best_val_acc", "--amended").strip()
    assert marked.startswith("best_val_acc = 0.991 (amended) (labledger run ")
    record = marked.split("record ")[1].rstrip(")")

    # check: a citation made before the amendment still passes (sealed value) ...
    report = cli(store, "check", before)
    assert report.returncode == 0, report.stdout
    assert report.stdout.startswith("ok ") and "amended since to 0.991" in report.stdout
    assert cli(store, "check", fresh.stdout.strip()).returncode == 0
    # ... one of the amended value is reported as such ...
    report = cli(store, "check", marked)
    assert report.returncode == 0, report.stdout
    assert report.stdout.startswith("AMENDED ")
    assert "best_val_acc is an amended value: sealed 0.9673" in report.stdout
    # ... and quoting the amended value as if it were the run's result fails
    forged = f"best_val_acc = 0.991 (labledger run {winner[:12]}, record {record})"
    report = cli(store, "check", forged)
    assert report.returncode == 1
    assert report.stdout.startswith("MISMATCH")
    assert "is an amended value, not the one the run logged (0.9673" in report.stdout
    # an "(amended)" citation of a value that is not the amendment fails too
    wrong = f"best_val_acc = 0.95 (amended) (labledger run {winner[:12]}, record {record})"
    assert cli(store, "check", wrong).returncode == 1

    # amending back to the sealed value leaves no amendment; the chain still verifies
    ok(store, "edit", winner, "--summary", "best_val_acc=0.9673")
    assert json.loads(ok(store, "show", winner, "--json"))["amended"] == {}
    assert cli(store, "audit", "verify").returncode == 0


def test_ledger_api_and_pandas_show_sealed_values_and_amendments(
    any_store_uri: str, isolated_env: Path
) -> None:
    from labledger import Ledger

    store = any_store_uri
    a = train(store, isolated_env, "a", 0.9673, lr=0.1)
    b = train(store, isolated_env, "b", 0.9601, lr=0.2)
    # the Python API: a summary value set on the finished run is an amendment too
    with Ledger(store) as ledger:
        edits = ledger.store.edit_run(
            b, summary={"best_val_acc": 0.98, "note_value": 3}, actor="carol", reason="typo"
        )
        assert {e["field"] for e in edits} == {"summary.best_val_acc", "summary.note_value"}
        assert all(e["amendment"] and e["reason"] == "typo" for e in edits)
        got = ledger.get(b)
        assert got["summary"]["best_val_acc"] == 0.9601
        assert "note_value" not in got["summary"]  # added after the end: only amended
        assert got["amended"]["best_val_acc"] == {
            "sealed": 0.9601,
            "value": 0.98,
            "by": "carol",
            "at": got["amended"]["best_val_acc"]["at"],
            "reason": "typo",
        }
        assert got["amended"]["note_value"]["sealed"] is None
        runs = ledger.runs(order_by="-summary.best_val_acc")
        assert [r["id"] for r in runs] == [a, b]
        assert runs[1]["amended"]["best_val_acc"]["value"] == 0.98
        runs = ledger.runs(order_by="-summary.best_val_acc", amended=True, limit=1)
        assert [r["id"] for r in runs] == [b]
        assert runs[0]["summary"]["best_val_acc"] == 0.98
        assert [r["id"] for r in ledger.best("best_val_acc")] == [a, b]
        assert [r["id"] for r in ledger.best("best_val_acc", amended=True)] == [b, a]
        df = ledger.to_pandas(order_by="-summary.best_val_acc").set_index("id")
        assert df.loc[b, "summary.best_val_acc"] == 0.9601
        assert df.loc[b, "amended.best_val_acc"] == 0.98
        assert df.loc[a, "summary.best_val_acc"] == 0.9673
        df = ledger.to_pandas(amended=True).set_index("id")
        assert df.loc[b, "summary.best_val_acc"] == 0.98
        out = ledger.export(isolated_env / "runs.json")
        rows = {r["id"]: r for r in json.loads(Path(out).read_text())}
        assert rows[b]["summary.best_val_acc"] == 0.9601
        assert rows[b]["amended.best_val_acc"] == 0.98
        assert ledger.store.audit_verify()["ok"]

        # a listing of more than 500 runs reads the amendments in one pass, not by id
        sql_store: Any = ledger.store
        listed = [
            {"id": f"{i:032x}", "status": "finished", "summary": {"best_val_acc": 0.5}}
            for i in range(600)
        ]
        listed.append({"id": b, "status": "finished", "summary": {"best_val_acc": 0.9601}})
        with sql_store.engine.connect() as conn:
            sql_store._amendments(conn, listed)
        assert listed[-1]["amended"]["best_val_acc"]["value"] == 0.98
        assert all(r["amended"] == {} for r in listed[:-1])
