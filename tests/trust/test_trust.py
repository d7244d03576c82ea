"""Authors, edits, frozen finished runs, the audit chain, cite and check (docs/trust.md).

Real processes throughout: training scripts and the ``labledger`` CLI run as
subprocesses; tampering is a direct SQL statement on the SQLite file or PostgreSQL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]

TRAIN = """
import labledger
with labledger.init("vision", name={name!r}, config={{"lr": {lr}}}, capture=False) as run:
    for i in range(200):
        run.log({{"acc": 0.5 + i / 500, "loss": 1.0 - i / 400}})
print(run.id)
"""


def _env(store: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABLEDGER_")}
    env.update(
        PYTHONPATH=str(ROOT / "src"),
        LABLEDGER_URI=store,
        LABLEDGER_CONSOLE="off",
        LABLEDGER_CAPTURE="off",
    )
    env.update(extra or {})
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


def train(store: str, cwd: Path, name: str, lr: float = 0.1, **env: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", TRAIN.format(name=name, lr=lr)],
        env=_env(store, env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def sql(store: str, statement: str, **params: Any) -> None:
    url = store.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(statement), params)
    finally:
        engine.dispose()


def show(store: str, ref: str) -> dict[str, Any]:
    out = cli(store, "show", ref, "--json")
    assert out.returncode == 0, out.stderr
    doc: dict[str, Any] = json.loads(out.stdout)
    return doc


# -- authorship ------------------------------------------------------------------------


def test_embedded_author_is_the_git_email_and_is_filterable(
    any_store_uri: str, isolated_env: Path
) -> None:
    repo = isolated_env / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "config", "user.email", "alice@lab.example"], cwd=repo, check=True)
    a = train(any_store_uri, repo, "by-alice")
    b = train(any_store_uri, isolated_env, "by-os-user", HOME=str(isolated_env))
    assert show(any_store_uri, a)["author"] == "alice@lab.example"
    import getpass

    assert show(any_store_uri, b)["author"] == getpass.getuser()
    listed = cli(any_store_uri, "ls", "--json", "-f", 'author = "alice@lab.example"')
    assert [r["id"] for r in json.loads(listed.stdout)] == [a]
    table = cli(any_store_uri, "ls").stdout
    assert "│ alice " in table and "alice@" not in table  # the short author (issue #26)
    best = json.loads(cli(any_store_uri, "best", "--metric", "acc", "--json").stdout)
    assert {r["author"] for r in best} == {"alice@lab.example", getpass.getuser()}
    diff = json.loads(cli(any_store_uri, "diff", a, b, "--json").stdout)
    assert any(e["key"] == "author" for e in diff["run"])
    exported = isolated_env / "runs.json"
    out = cli(any_store_uri, "export", "--format", "json", "-o", str(exported))
    assert out.returncode == 0, out.stderr
    assert {r["author"] for r in json.loads(exported.read_text())} == {
        "alice@lab.example",
        getpass.getuser(),
    }


def test_python_filter_evaluator_knows_author() -> None:
    from labledger.query import evaluate, parse

    node = parse('author = "alice" and author like "ali*"')
    assert evaluate(node, {"author": "alice"})
    assert not evaluate(node, {"author": "bob"})


# -- notes, edits, history -------------------------------------------------------------


def test_notes_set_after_init_and_after_finish_are_edit_events(
    store_uri: str, isolated_env: Path
) -> None:
    code = f"""
        import labledger
        run = labledger.init("p", store={store_uri!r}, capture=False, notes="first")
        run.log({{"acc": 0.5}})
        run.notes = "while training"
        run.finish()
        run.notes = "after the fact"
        run.add_tags("keeper")
        print(run.id)
    """
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=_env(store_uri),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    run_id = out.stdout.split()[-1]
    doc = show(store_uri, run_id)
    assert doc["notes"] == "after the fact" and doc["tags"] == ["keeper"]
    fields = [(e["field"], e["old"], e["new"]) for e in doc["edits"]]
    assert fields == [
        ("notes", "first", "while training"),
        ("notes", "while training", "after the fact"),
        ("tags", [], ["keeper"]),
    ]
    assert all(e["author"] and e["at"] for e in doc["edits"])
    assert len(doc["record_sha256"]) == 64

    edited = cli(store_uri, "edit", run_id, "--note", "final", "--untag", "keeper", "--tag", "ok")
    assert edited.returncode == 0, edited.stderr
    history = cli(store_uri, "show", run_id, "--history")
    assert "notes: after the fact -> final" in history.stdout
    assert 'tags: ["keeper"] -> ["ok"]' in history.stdout
    assert cli(store_uri, "audit", "verify").returncode == 0


def test_finished_run_is_frozen_but_notes_tags_summary_stay_editable(store_uri: str) -> None:
    import labledger
    from labledger.store import Batch, open_store

    run = labledger.init("p", store=store_uri, capture=False, config={"lr": 0.1})
    run.log({"acc": 0.8})
    run.finish()
    store = open_store(store_uri)
    try:
        with pytest.raises(labledger.RunFinishedError, match="metric points cannot change"):
            store.write_batch(Batch(run_id=run.id, metrics={"acc": ([9], [0.99], [0.0])}))
        with pytest.raises(labledger.RunFinishedError, match="config cannot change"):
            store.write_batch(Batch(run_id=run.id, run_update={"config": {"lr": 9}}))
        with pytest.raises(labledger.RunFinishedError, match="artifacts cannot change"):
            store.create_artifact_version(
                "p", "model", "model", run.id, [{"path": "m", "sha256": "0" * 64, "size": 1}]
            )
        with pytest.raises(labledger.RunFinishedError):
            run.log({"acc": 1.0})
        edits = store.edit_run(run.id, summary={"acc": 0.97}, actor="reviewer")
        assert [(e["field"], e["old"], e["new"], e["author"]) for e in edits] == [
            ("summary.acc", 0.8, 0.97, "reviewer")
        ]
        got = store.get_run(run.id)
        assert got["config"] == {"lr": 0.1} and got["metrics"]["acc"]["max"] == 0.8
        # the logged value stays sealed; the edit is an amendment beside it
        assert got["summary"]["acc"] == 0.8
        assert got["amended"]["acc"]["value"] == 0.97
        assert got["amended"]["acc"]["sealed"] == 0.8
        assert got["amended"]["acc"]["by"] == "reviewer"
        assert store.audit_verify()["ok"]
    finally:
        store.close()


# -- tamper evidence -------------------------------------------------------------------


def test_direct_sql_update_and_delete_are_caught_by_audit_verify(
    any_store_uri: str, isolated_env: Path
) -> None:
    a = train(any_store_uri, isolated_env, "a", lr=0.1)
    b = train(any_store_uri, isolated_env, "b", lr=0.2)
    c = train(any_store_uri, isolated_env, "c", lr=0.3)
    ok = cli(any_store_uri, "audit", "verify")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    head = cli(any_store_uri, "audit", "head", "--json")
    published = json.loads(head.stdout)[0]["head"]
    assert len(published) == 64

    # somebody "improves" run a's result straight in the database
    sql(
        any_store_uri, "UPDATE metric_summary SET max = 0.97 WHERE run_id = :r AND key = 'acc'", r=a
    )
    sql(any_store_uri, "UPDATE runs SET config = :c WHERE id = :r", c='{"lr": 0.01}', r=b)
    sql(any_store_uri, "DELETE FROM metric_chunks WHERE run_id = :r AND key = 'loss'", r=c)
    bad = cli(any_store_uri, "audit", "verify", "--project", "vision")
    assert bad.returncode == 1
    assert f"vision/{a} field metric.acc" in bad.stdout
    assert f"vision/{b} field config" in bad.stdout
    assert f"vision/{c} field series.loss" in bad.stdout

    # deleting the run outright, or its audit entry, is caught too
    sql(any_store_uri, "DELETE FROM runs WHERE id = :r", r=a)
    sql(
        any_store_uri,
        "DELETE FROM audit_log WHERE run_id = :r AND seq = (SELECT MIN(seq) FROM audit_log)",
        r=a,
    )
    worse = cli(any_store_uri, "audit", "verify", "--json")
    assert worse.returncode == 1
    problems = json.loads(worse.stdout)["problems"]
    assert any(p["field"] == "audit_log" and "deleted" in p["message"] for p in problems)

    # rewriting the whole chain so that it verifies again does not match the published head
    _rechain(any_store_uri)
    rewritten = cli(any_store_uri, "audit", "verify", "--head", published)
    assert rewritten.returncode == 1
    assert "field head" in rewritten.stdout and "rewritten" in rewritten.stdout


def _rechain(store: str) -> None:
    """An admin with database access recomputes every hash after a rewrite."""
    from labledger.store import open_store

    st = open_store(store)
    try:
        with st._tx() as conn:  # type: ignore[attr-defined]
            conn.execute(sa.text("DELETE FROM audit_log"))
            for run_id, project in conn.execute(
                sa.text("SELECT id, project FROM runs ORDER BY created_at")
            ).all():
                st._append_entry(conn, project, run_id, "seal")  # type: ignore[attr-defined]
        assert st.audit_verify()["ok"]
    finally:
        st.close()


# -- cite and check --------------------------------------------------------------------


def test_citation_in_markdown_passes_then_fails_after_the_value_is_edited_in_the_db(
    any_store_uri: str, isolated_env: Path
) -> None:
    run_id = train(any_store_uri, isolated_env, "winner")
    cited = cli(any_store_uri, "cite", run_id, "--metric", "acc")
    assert cited.returncode == 0, cited.stderr
    citation = cited.stdout.strip()
    assert citation.startswith("acc = 0.898 (labledger run ") and run_id[:12] in citation
    record = show(any_store_uri, run_id)["record_sha256"]
    assert record[:16] in citation

    report = isolated_env / "report.md"
    report.write_text(f"# Results\n\nOur best model reaches **{citation}**.\n")
    good = cli(any_store_uri, "check", str(report))
    assert good.returncode == 0, good.stdout + good.stderr
    assert good.stdout.startswith("ok") and "line 3" in good.stdout

    # the same check from Python
    import labledger

    assert labledger.check(report.read_text(), store=any_store_uri).ok
    assert labledger.cite(run_id, "acc", store=any_store_uri) == citation

    # a message quoting a value the ledger does not hold fails too
    typo = cli(any_store_uri, "check", citation.replace("0.898", "0.91"))
    assert typo.returncode == 1 and "acc is 0.898 in the ledger, not 0.91" in typo.stdout

    sql(
        any_store_uri,
        "UPDATE metric_summary SET last = 0.95 WHERE run_id = :r AND key = 'acc'",
        r=run_id,
    )
    bad = cli(any_store_uri, "check", str(report))
    assert bad.returncode == 1
    line = bad.stdout.strip()
    assert line.startswith("MISMATCH  line 3") and "acc is 0.95 in the ledger" in line
    assert "record altered: metric.acc was changed" in line


def test_a_run_recorded_as_ended_is_sealed_at_once(store_uri: str) -> None:
    from labledger.store import open_store

    store = open_store(store_uri)
    try:
        store.create_run(
            {"id": "d" * 32, "project": "imported", "name": "old", "status": "finished"}
        )
        assert store.get_run("d" * 32)["record_sha256"]
        assert store.audit_verify(project="imported")["ok"]
    finally:
        store.close()


def test_audit_verify_streams_the_chain_alone(any_store_uri: str, isolated_env: Path) -> None:
    """Only the chain is read through a streaming cursor; the per-page reads that follow
    (each page's newest entries, grouped by run) are ordinary statements. A ``yield_per``
    set on the connection instead of the statement applied to every later statement: on
    PostgreSQL each grouped read then ran as a server-side cursor, planned for its first
    rows, and scanned the whole chain once per page of 500 runs (over 15 minutes at 1M)."""
    from sqlalchemy import event

    from labledger.store import open_store

    train(any_store_uri, isolated_env, "a", lr=0.1)
    train(any_store_uri, isolated_env, "b", lr=0.2)
    st = open_store(any_store_uri)
    seen: list[tuple[str, Any]] = []

    def grab(conn: Any, cursor: Any, statement: str, params: Any, ctx: Any, many: bool) -> None:
        seen.append((statement, ctx.execution_options.get("yield_per")))

    event.listen(st.engine, "before_cursor_execute", grab)  # type: ignore[attr-defined]
    try:
        assert st.audit_verify()["ok"]
    finally:
        event.remove(st.engine, "before_cursor_execute", grab)  # type: ignore[attr-defined]
        st.close()
    streamed = [stmt for stmt, per in seen if per]
    assert len(streamed) == 1, streamed
    assert "FROM audit_log" in streamed[0] and "ORDER BY audit_log.seq" in streamed[0]
    grouped = [stmt for stmt, per in seen if "max(audit_log.seq)" in stmt]
    assert grouped and all(per is None for stmt, per in seen if stmt in grouped), seen


def _tampered_store(pg_uri: str) -> Any:
    """A PostgreSQL store of 40 finished runs (chained as an import), three of them
    changed behind labledger's back: the first, a middle and the last by id."""
    import time as _time

    from labledger.store.sql import SqlStore

    store = SqlStore(pg_uri)
    now = _time.time()
    ids = sorted(f"{i:02d}" + "c" * 30 for i in range(40))
    store.create_runs(
        [
            {
                "id": rid,
                "project": "wide",
                "name": f"r{i}",
                "created_at": now,
                "status": "finished",
                "ended_at": now + 1,
                "config": {"lr": i},
                "metrics": {"acc": ([1, 2], [0.1, 0.2 + i], [now, now])},
            }
            for i, rid in enumerate(ids)
        ]
    )
    with store.engine.begin() as conn:
        for rid in (ids[0], ids[21], ids[-1]):
            conn.execute(
                sa.text("UPDATE runs SET config = :c WHERE id = :i"), {"c": '{"lr": 99}', "i": rid}
            )
    return store, [ids[0], ids[21], ids[-1]]


def test_audit_verify_in_parallel_ranges_gives_the_sequential_answer(
    pg_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL a large project's runs are checked in id ranges at once (this process
    and worker processes); the problems are the ones, in the order, that one range gives."""
    from labledger.store import _audit_sql

    store, changed = _tampered_store(pg_uri)
    try:
        store.audit_workers = 1
        sequential = store.audit_verify()
        monkeypatch.setattr(_audit_sql, "_PARALLEL_RUNS", 10)
        started: list[Any] = []
        real_start = store._start_verify_worker

        def start(name: str, lo: str, hi: str | None) -> Any:
            started.append((lo, hi))
            return real_start(name, lo, hi)

        monkeypatch.setattr(store, "_start_verify_worker", start)
        store.audit_workers = 3
        parallel = store.audit_verify()
    finally:
        store.close()
    assert len(started) == 2 and all(lo for lo, _ in started)  # two worker ranges
    assert not sequential["ok"]
    assert [p["run_id"] for p in sequential["problems"]] == changed
    assert parallel == sequential


def test_audit_verify_checks_a_failed_workers_range_itself(
    pg_uri: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A worker that cannot do its range (here: it cannot reach the database) has that
    range checked by the parent: the answer never depends on the workers."""
    from labledger.store import _audit_sql

    store, changed = _tampered_store(pg_uri)
    try:
        monkeypatch.setattr(_audit_sql, "_PARALLEL_RUNS", 10)
        store.audit_workers = 3
        store.uri = "postgresql+psycopg://nobody@127.0.0.1:1/nothing"  # the workers' only
        with caplog.at_level("WARNING", logger="labledger.store"):
            got = store.audit_verify()
    finally:
        store.close()
    assert [p["run_id"] for p in got["problems"]] == changed
    assert sum("a worker failed" in r.getMessage() for r in caplog.records) == 2


def test_audit_verify_leaves_no_worker_running_when_it_fails(
    pg_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error while this process checks its own range ends the workers it started."""
    from labledger.store import _audit_sql

    store, _ = _tampered_store(pg_uri)
    started: list[Any] = []
    real_start = store._start_verify_worker

    def start(name: str, lo: str, hi: str | None) -> Any:
        started.append(real_start(name, lo, hi))
        return started[-1]

    def broken(conn: Any, name: str, lo: str, hi: str | None) -> Any:
        raise RuntimeError("the parent's range failed")

    try:
        monkeypatch.setattr(_audit_sql, "_PARALLEL_RUNS", 10)
        monkeypatch.setattr(store, "_start_verify_worker", start)
        monkeypatch.setattr(store, "_verify_run_range", broken)
        store.audit_workers = 3
        with pytest.raises(RuntimeError, match="parent's range"):
            store.audit_verify()
    finally:
        store.close()
    assert len(started) == 2
    assert all(p is not None and p.returncode is not None for p in started)
