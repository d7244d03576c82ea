"""The write core (``labledger.store.WriteCore``) on an embedded SQLite store, without a server.

The rule matrix (tests/server/test_rule_matrix.py) runs the same rules through every door;
this pins the core's own answers: visibility, author, ownership, policy, the local user.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from labledger import (
    AuthError,
    LimitExceededError,
    PolicyViolationError,
    RunFinishedError,
    RunNotFoundError,
    UsageError,
)
from labledger.store import Actor, Batch, WriteCore
from labledger.store.sql import SqlStore

ALICE = Actor("alice", {"alpha": "write"})
BOB = Actor("bob", {"alpha": "write"})
CAROL = Actor("carol", {"gamma": "write"})
ADMIN = Actor("root", {"alpha": "admin"})


@pytest.fixture
def core(tmp_path: Path) -> Iterator[WriteCore]:
    store = SqlStore(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        yield WriteCore(store)
    finally:
        store.close()


def _run(core: WriteCore, actor: Actor, project: str = "alpha", **fields: object) -> str:
    rid = uuid.uuid4().hex
    core.create_run(actor, {"id": rid, "project": project, "name": "r", **fields})
    return rid


def _point(rid: str) -> Batch:
    return Batch(rid, metrics={"loss": ([0], [1.0], [time.time()])})


def test_the_author_is_the_actor_and_only_they_or_an_admin_write(core: WriteCore) -> None:
    rid = _run(core, ALICE, author="mallory")
    assert core.store.get_run(rid)["author"] == "alice"
    assert core.write_batch(ALICE, _point(rid))[0] is True
    with pytest.raises(AuthError) as err:
        core.write_batch(BOB, _point(rid))
    assert err.value.code == "not_owner" and "belongs to 'alice'" in str(err.value)
    with pytest.raises(AuthError):
        core.edit_run(BOB, rid, notes="mine")
    _, edits = core.edit_run(ADMIN, rid, notes="checked")
    assert [(e["field"], e["author"]) for e in edits] == [("notes", "root")]


def test_what_an_actor_may_not_read_looks_missing(core: WriteCore) -> None:
    rid = _run(core, ALICE)
    absent = uuid.uuid4().hex
    for ref in (rid, rid[:10]):
        with pytest.raises(RunNotFoundError) as hidden:
            core.resolve(CAROL, ref)
        assert "alpha" not in str(hidden.value)
        with pytest.raises(RunNotFoundError):
            core.write_batch(CAROL, _point(ref))
    with pytest.raises(RunNotFoundError) as gone:
        core.resolve(CAROL, absent)
    assert str(gone.value).replace(absent, "X") == str(hidden.value).replace(rid[:10], "X")
    # a reader of the project reads it, and a reader is not a writer (403, not 404)
    reader = Actor("dora", {"alpha": "read"})
    assert core.readable_run(reader, rid)["id"] == rid
    with pytest.raises(AuthError) as err:
        core.write_batch(reader, _point(rid))
    assert err.value.status_code == 403 and err.value.code is None


def test_the_policy_at_finish_and_on_a_run_created_finished(core: WriteCore) -> None:
    with pytest.raises(AuthError):
        core.set_policy(ALICE, "alpha", ["seed"])  # the project's admin sets it
    assert core.set_policy(ADMIN, "alpha", ["seed", "git"]) == ["git", "seed"]
    rid = _run(core, ALICE)
    applied, policy = core.write_batch(ALICE, Batch(rid, run_update={"status": "finished"}))
    assert applied and policy is not None and policy["missing"] == ["git", "seed"]
    run = core.store.get_run(rid)
    assert run["status"] == "failed" and "refused by the policy" in run["error"]
    seeded = _run(core, ALICE, seed=1, env={"git": {"commit": "abc"}})
    core.write_batch(ALICE, Batch(seeded, run_update={"status": "finished"}))
    assert core.store.get_run(seeded)["status"] == "finished"
    with pytest.raises(PolicyViolationError) as err:
        _run(core, ALICE, status="finished")
    assert err.value.missing == ["git", "seed"]


def test_a_finished_run_takes_edits_by_its_author_only(core: WriteCore) -> None:
    rid = _run(core, ALICE)
    core.write_batch(ALICE, Batch(rid, run_update={"status": "finished", "ended_at": time.time()}))
    with pytest.raises(RunFinishedError):
        core.write_batch(ALICE, _point(rid))
    _, edits = core.edit_run(ALICE, rid, notes="the winner")
    assert [(e["field"], e["author"]) for e in edits] == [("notes", "alice")]


def test_a_retried_create_and_an_id_taken_elsewhere(core: WriteCore) -> None:
    rid = _run(core, ALICE)
    again = core.create_run(ALICE, {"id": rid, "project": "alpha", "name": "r"})
    assert again["created"] is False
    other = Actor("eve", {"beta": "write"})
    with pytest.raises(UsageError) as err:
        core.create_run(other, {"id": rid, "project": "beta", "name": "r"})
    assert "alpha" not in str(err.value) and "already taken" in str(err.value)
    with pytest.raises(AuthError):
        core.create_run(CAROL, {"id": uuid.uuid4().hex, "project": "alpha", "name": "r"})


def test_the_local_user_keeps_the_engines_author_and_holds_every_role(core: WriteCore) -> None:
    local = Actor.local_user("ada@example.org")
    rid = _run(core, local, author="ada@example.org")
    assert core.store.get_run(rid)["author"] == "ada@example.org"
    other = _run(core, ALICE)
    _, edits = core.edit_run(local, other, notes="fixed a typo")
    assert edits[0]["author"] == "ada@example.org"


def test_an_experiment_change_takes_the_projects_admin(core: WriteCore) -> None:
    with pytest.raises(AuthError):
        core.require_project_admin(ALICE, "alpha")
    core.require_project_admin(ADMIN, "alpha")


def test_create_runs_in_bulk_applies_create_runs_rules(core: WriteCore) -> None:
    """create_runs: the author is the actor, the write role, the limits and the policy of a
    run created finished hold for every record, and a broken rule writes nothing."""

    def rec(**fields: object) -> dict[str, object]:
        return {"id": uuid.uuid4().hex, "project": "alpha", "name": "r", **fields}

    ok = [rec(author="mallory"), rec(status="finished", seed=1, ended_at=time.time())]
    assert core.create_runs(ALICE, ok) == 2
    assert {core.store.get_run(str(r["id"]))["author"] for r in ok} == {"alice"}
    assert core.store.record_sha256(str(ok[1]["id"])) is not None  # an import is chained
    before = len(core.store.list_runs(project="alpha"))
    with pytest.raises(AuthError):
        core.create_runs(CAROL, [rec()])
    with pytest.raises(LimitExceededError):
        core.create_runs(ALICE, [rec(), rec(name="x" * 100_000)])
    core.set_policy(ADMIN, "alpha", ["seed"])
    with pytest.raises(PolicyViolationError) as err:
        core.create_runs(ALICE, [rec(), rec(status="finished")])
    assert err.value.missing == ["seed"]
    assert len(core.store.list_runs(project="alpha")) == before
    local = Actor.local_user("ada@example.org")
    kept = rec(author="grace")
    assert core.create_runs(local, [kept]) == 1
    assert core.store.get_run(str(kept["id"]))["author"] == "grace"
