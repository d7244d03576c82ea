"""The rule matrix (issue 19): the same scenarios through every door, on SQLite and PostgreSQL.

Doors: the write core as a Python API on the embedded store (``core``), the Python client
against a server (``client``: ``HttpStore``), native REST (``rest``), MLflow REST through the
real ``mlflow`` client (``mlflow``), the MLflow importer into a server (``importer``) and the
CLI (``cli``). Every cell gives the same answer:

- a stranger's write is refused, and leaves the run as it was;
- the stored author is the caller, whatever the client claims;
- the project policy refuses a run finished without what it requires;
- a finished run refuses points, and takes notes only as an edit event;
- edit events name the true actor (an admin editing someone's run is named);
- what the caller may not read answers exactly like what does not exist.

A door that has no way to make a request of a scenario (the CLI creates no runs, the
importer writes no points to an existing run) has no cell there: the parameters list
only the cells that exist. One server per back end serves the whole module.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from labledger import AuthError, LabledgerError, RunFinishedError, RunNotFoundError
from labledger.store import Actor, Batch, WriteCore
from labledger.store.sql import SqlStore

from .conftest import ROOT, Server

mlflow = pytest.importorskip("mlflow")

from mlflow import MlflowClient  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::RuntimeWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

# who holds what: alice and bob write the same projects; carol cannot read them; root admins all
ROLES: dict[str, dict[str, str]] = {
    "alice": {"alpha": "write", "strict": "write"},
    "bob": {"alpha": "write", "strict": "write"},
    "carol": {"gamma": "write"},
    "root": {"*": "admin"},
}

# the outcomes every door is normalised to
OK, NOT_OWNER, MISSING, FINISHED, REFUSED = "ok", "not_owner", "missing", "finished", "refused"


class World:
    """One server over one database, the tokens of ``ROLES`` and the database itself."""

    def __init__(self, server: Server, store: SqlStore, tokens: dict[str, str], tmp: Path):
        self.server = server
        self.store = store  # ground truth, and the embedded store of the core door
        self.core = WriteCore(store)
        self.tokens = tokens
        self.tmp = tmp

    def actor(self, user: str) -> Actor:
        return Actor(user, ROLES[user])

    def run_of(self, user: str, project: str = "alpha", *, finished: bool = False) -> str:
        """A run of ``user`` with one point, made through the core (the fixture of a scenario)."""
        rid = uuid.uuid4().hex
        actor = self.actor(user)
        self.core.create_run(actor, {"id": rid, "project": project, "name": f"{user}-run"})
        self.core.write_batch(actor, Batch(rid, metrics={"loss": ([0], [1.0], [time.time()])}))
        if finished:
            done = {"status": "finished", "ended_at": time.time()}
            self.core.write_batch(actor, Batch(rid, run_update=done))
        return rid

    def points(self, rid: str) -> int:
        return len(self.store.history(rid, "loss")) if "loss" in self.store.metric_keys(rid) else 0


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("matrix")
    uri = (
        f"sqlite:///{tmp / 'store.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("module_pg")
    )
    store = SqlStore(uri)
    from labledger.server.tokens import TokenRegistry

    reg = TokenRegistry(store)
    tokens: dict[str, str] = {}
    for user, roles in ROLES.items():
        for project, role in roles.items():
            _, tok = reg.create_token(user, project, role)
            tokens.setdefault(user, tok)  # one token per user; the roles are the user's
    WriteCore(store).set_policy(Actor("root", ROLES["root"]), "strict", ["seed"])
    srv = Server(uri, tmp, artifacts_uri=str(tmp / "blobs"))
    srv.start()
    try:
        yield World(srv, store, tokens, tmp)
    finally:
        srv.stop()
        store.close()


# -- the doors ------------------------------------------------------------------------------


class Door:
    name = ""

    def __init__(self, world: World) -> None:
        self.w = world

    # each returns an outcome (OK, NOT_OWNER, MISSING, FINISHED, REFUSED)
    def log_metric(self, user: str, rid: str) -> str:
        raise NotImplementedError

    def set_notes(self, user: str, rid: str, text: str) -> str:
        raise NotImplementedError

    def create(self, user: str, project: str, *, claim: str) -> str | None:
        """Create a running run as ``user`` claiming ``claim`` as author; its id."""
        raise NotImplementedError

    def finish(self, user: str, rid: str) -> str:
        raise NotImplementedError

    def read(self, user: str, rid: str) -> Any:
        """What reading the run answers, with the run id replaced by ``<ID>``."""
        raise NotImplementedError


class CoreDoor(Door):
    """The write core as a Python API over the embedded store."""

    name = "core"

    def _do(self, fn: Any) -> str:
        try:
            fn()
        except AuthError as exc:
            return NOT_OWNER if exc.code == "not_owner" else REFUSED
        except RunNotFoundError:
            return MISSING
        except RunFinishedError:
            return FINISHED
        return OK

    def log_metric(self, user: str, rid: str) -> str:
        batch = Batch(rid, metrics={"loss": ([5], [0.5], [time.time()])})
        return self._do(lambda: self.w.core.write_batch(self.w.actor(user), batch))

    def set_notes(self, user: str, rid: str, text: str) -> str:
        return self._do(lambda: self.w.core.edit_run(self.w.actor(user), rid, notes=text))

    def create(self, user: str, project: str, *, claim: str) -> str | None:
        rid = uuid.uuid4().hex
        record = {"id": rid, "project": project, "name": "made", "author": claim}
        self.w.core.create_run(self.w.actor(user), record)
        return rid

    def finish(self, user: str, rid: str) -> str:
        batch = Batch(rid, run_update={"status": "finished", "ended_at": time.time()})
        return self._do(lambda: self.w.core.write_batch(self.w.actor(user), batch))

    def read(self, user: str, rid: str) -> Any:
        try:
            self.w.core.readable_run(self.w.actor(user), rid)
        except Exception as exc:
            return type(exc).__name__, str(exc).replace(rid, "<ID>")
        return OK


class RestDoor(Door):
    """Native REST (``/api/v1``) with httpx."""

    name = "rest"

    def _http(self, user: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.w.server.url,
            headers={"Authorization": f"Bearer {self.w.tokens[user]}"},
            timeout=60,
        )

    @staticmethod
    def _outcome(r: httpx.Response) -> str:
        if r.status_code < 300:
            return OK
        code = r.json().get("code")
        if r.status_code == 403:
            return NOT_OWNER if code == "not_owner" else REFUSED
        if r.status_code == 404:
            return MISSING
        if r.status_code == 409 and code == "run_finished":
            return FINISHED
        return f"{r.status_code} {code}"

    def _batch(self, user: str, rid: str, batch: Batch) -> str:
        from labledger.store._wire import batch_to_wire

        with self._http(user) as c:
            return self._outcome(c.post(f"/api/v1/runs/{rid}/batches", json=batch_to_wire(batch)))

    def log_metric(self, user: str, rid: str) -> str:
        return self._batch(user, rid, Batch(rid, metrics={"loss": ([5], [0.5], [time.time()])}))

    def set_notes(self, user: str, rid: str, text: str) -> str:
        with self._http(user) as c:
            return self._outcome(c.post(f"/api/v1/runs/{rid}/edits", json={"notes": text}))

    def create(self, user: str, project: str, *, claim: str) -> str | None:
        rid = uuid.uuid4().hex
        body = {"id": rid, "project": project, "name": "made", "author": claim}
        with self._http(user) as c:
            r = c.post("/api/v1/runs", json=body)
        assert r.status_code == 201, r.text
        return rid

    def finish(self, user: str, rid: str) -> str:
        done = Batch(rid, run_update={"status": "finished", "ended_at": time.time()})
        return self._batch(user, rid, done)

    def read(self, user: str, rid: str) -> Any:
        with self._http(user) as c:
            r = c.get(f"/api/v1/runs/{rid}")
        return r.status_code, r.text.replace(rid, "<ID>")


class ClientDoor(Door):
    """The Python client: ``HttpStore`` with a user's token (what ``init()`` and ``Ledger`` use)."""

    name = "client"

    @contextlib.contextmanager
    def _store(self, user: str) -> Iterator[Any]:
        from labledger.remote.http import HttpStore

        spool = self.w.tmp / "spool" / uuid.uuid4().hex
        store = HttpStore(
            self.w.server.url, token=self.w.tokens[user], spool_dir=spool, sync_timeout=0.5
        )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield store
        finally:
            store.close()

    def _write(self, user: str, rid: str, batch: Batch) -> str:
        """A refused write raises, typed (the tracking writer keeps it in its outbox)."""
        with self._store(user) as store:
            before = self.w.points(rid), self.w.store.get_run(rid)["status"]
            try:
                store.write_batch(batch)
            except LabledgerError:
                return REFUSED
            after = self.w.points(rid), self.w.store.get_run(rid)["status"]
        return OK if after != before or not batch.metrics else REFUSED

    def log_metric(self, user: str, rid: str) -> str:
        return self._write(user, rid, Batch(rid, metrics={"loss": ([5], [0.5], [time.time()])}))

    def set_notes(self, user: str, rid: str, text: str) -> str:
        with self._store(user) as store:
            try:
                store.edit_run(rid, notes=text)
            except AuthError as exc:
                return NOT_OWNER if exc.code == "not_owner" else REFUSED
            except RunNotFoundError:
                return MISSING
        return OK

    def create(self, user: str, project: str, *, claim: str) -> str | None:
        rid = uuid.uuid4().hex
        with self._store(user) as store:
            store.create_run({"id": rid, "project": project, "name": "made", "author": claim})
        return rid

    def finish(self, user: str, rid: str) -> str:
        done = Batch(rid, run_update={"status": "finished", "ended_at": time.time()})
        return self._write(user, rid, done)

    def read(self, user: str, rid: str) -> Any:
        with self._store(user) as store:
            try:
                store.get_run(rid)
            except Exception as exc:
                return type(exc).__name__, str(exc).replace(rid, "<ID>")
        return OK


@contextlib.contextmanager
def _mlflow_token(token: str) -> Iterator[None]:
    old = os.environ.get("MLFLOW_TRACKING_TOKEN")
    os.environ["MLFLOW_TRACKING_TOKEN"] = token
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MLFLOW_TRACKING_TOKEN", None)
        else:
            os.environ["MLFLOW_TRACKING_TOKEN"] = old


class MlflowDoor(Door):
    """MLflow REST through the unchanged ``mlflow`` client."""

    name = "mlflow"

    def _do(self, user: str, fn: Any) -> str:
        with _mlflow_token(self.w.tokens[user]):
            try:
                fn(MlflowClient(self.w.server.url))
            except MlflowException as exc:
                code, msg = exc.error_code, str(exc)
                if code == "PERMISSION_DENIED":
                    return NOT_OWNER if "belongs to" in msg else REFUSED
                if code == "RESOURCE_DOES_NOT_EXIST":
                    return MISSING
                if "is already" in msg:
                    return FINISHED
                return f"{code} {msg[:120]}"
        return OK

    def log_metric(self, user: str, rid: str) -> str:
        return self._do(user, lambda c: c.log_metric(rid, "loss", 0.5, step=5))

    def set_notes(self, user: str, rid: str, text: str) -> str:
        return self._do(user, lambda c: c.set_tag(rid, "mlflow.note.content", text))

    def create(self, user: str, project: str, *, claim: str) -> str | None:
        with _mlflow_token(self.w.tokens[user]):
            c = MlflowClient(self.w.server.url)
            exp = c.get_experiment_by_name(project)
            assert exp is not None
            run = c.create_run(exp.experiment_id, tags={"mlflow.user": claim})
            return str(run.info.run_id)

    def finish(self, user: str, rid: str) -> str:
        return self._do(user, lambda c: c.set_terminated(rid, "FINISHED"))

    def read(self, user: str, rid: str) -> Any:
        r = httpx.get(
            f"{self.w.server.url}/api/2.0/mlflow/runs/get",
            params={"run_id": rid},
            headers={"Authorization": f"Bearer {self.w.tokens[user]}"},
        )
        return r.status_code, r.text.replace(rid, "<ID>")


class CliDoor(Door):
    """``labledger edit`` and ``labledger show`` against the server, as a user."""

    name = "cli"

    def _cli(self, user: str, *args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LABLEDGER_")}
        env.update(
            PYTHONPATH=str(ROOT / "src"),
            LABLEDGER_URI=self.w.server.url,
            LABLEDGER_TOKEN=self.w.tokens[user],
            LABLEDGER_CONSOLE="off",
        )
        return subprocess.run(
            [sys.executable, "-m", "labledger.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def set_notes(self, user: str, rid: str, text: str) -> str:
        out = self._cli(user, "edit", rid, "--note", text)
        if out.returncode == 0:
            return OK
        if "belongs to" in out.stderr:
            return NOT_OWNER
        if "no run" in out.stderr.lower() or "not found" in out.stderr.lower():
            return MISSING
        return f"exit {out.returncode}: {out.stderr[-200:]}"

    def read(self, user: str, rid: str) -> Any:
        out = self._cli(user, "show", rid, "--json")
        return out.returncode, out.stderr.replace(rid, "<ID>").replace(rid[:8], "<ID8>")


class ImporterDoor(Door):
    """``import_mlflow`` from an MLflow store into the server, as a user (``HttpStore``)."""

    name = "importer"

    def _source(self, project: str, claim: str, *, finished: bool) -> str:
        """A fresh MLflow file store with one run of ``project`` claiming ``claim``."""
        root = self.w.tmp / "mlruns" / uuid.uuid4().hex
        os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
        c = MlflowClient(root.as_uri())
        eid = c.create_experiment(project)
        run = c.create_run(eid, tags={"mlflow.user": claim})
        c.log_metric(run.info.run_id, "loss", 0.5)
        if finished:
            c.set_terminated(run.info.run_id, "FINISHED")
        return root.as_uri()

    def _import(self, user: str, source: str) -> list[str]:
        from labledger.importers import import_mlflow
        from labledger.remote.http import HttpStore

        spool = self.w.tmp / "spool" / uuid.uuid4().hex
        target = HttpStore(
            self.w.server.url, token=self.w.tokens[user], spool_dir=spool, sync_timeout=0.5
        )
        before = {r["id"] for r in self.w.store.list_runs(limit=None)}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import_mlflow(source, target, artifacts=False)
        finally:
            target.close()
        return sorted({r["id"] for r in self.w.store.list_runs(limit=None)} - before)

    def create(self, user: str, project: str, *, claim: str) -> str | None:
        made = self._import(user, self._source(project, claim, finished=False))
        assert len(made) == 1, made
        return made[0]

    def import_finished(self, user: str, project: str) -> list[str]:
        return self._import(user, self._source(project, user, finished=True))


DOORS: dict[str, type[Door]] = {
    d.name: d for d in (CoreDoor, ClientDoor, RestDoor, MlflowDoor, ImporterDoor, CliDoor)
}


def _cells(*names: str) -> Any:
    return pytest.mark.parametrize("door_name", list(names))


@pytest.fixture
def door(world: World, door_name: str) -> Door:
    return DOORS[door_name](world)


# -- the scenarios ----------------------------------------------------------------------------


@_cells("core", "client", "rest", "mlflow", "cli")
def test_a_strangers_write_is_refused(world: World, door: Door) -> None:
    rid = world.run_of("alice")
    before = world.store.get_run(rid)
    if door.name != "cli":
        # bob writes the project but the run is alice's; carol cannot even read it
        assert door.log_metric("bob", rid) in (NOT_OWNER, REFUSED)
        assert door.log_metric("carol", rid) in (MISSING, REFUSED)
        if door.name in ("core", "rest", "mlflow"):
            assert door.log_metric("bob", rid) == NOT_OWNER
            assert door.log_metric("carol", rid) == MISSING
        assert door.finish("bob", rid) in (NOT_OWNER, REFUSED)
    assert door.set_notes("bob", rid, "mine now") == NOT_OWNER
    assert door.set_notes("carol", rid, "mine now") == MISSING
    after = world.store.get_run(rid)
    assert world.points(rid) == 1
    assert (after["notes"], after["status"], after["author"]) == (
        before["notes"],
        before["status"],
        "alice",
    )
    assert world.store.run_edits(rid) == []


@_cells("core", "client", "rest", "mlflow", "importer")
def test_the_stored_author_is_the_caller(world: World, door: Door) -> None:
    rid = door.create("bob", "alpha", claim="alice")
    assert rid is not None
    assert world.store.get_run(rid)["author"] == "bob"
    # and bob, its author, may write to it; alice may not
    if door.name != "importer":
        assert door.log_metric("bob", rid) == OK
        assert door.log_metric("alice", rid) in (NOT_OWNER, REFUSED)


@_cells("core", "client", "rest", "mlflow")
def test_the_policy_refuses_at_finish(world: World, door: Door) -> None:
    rid = door.create("bob", "strict", claim="bob")
    assert rid is not None
    door.finish("bob", rid)
    run = world.store.get_run(rid)
    assert run["status"] == "failed"
    assert "refused by the policy of project 'strict'" in (run.get("error") or "")


@_cells("importer")
def test_the_policy_refuses_an_imported_finished_run(world: World, door: Door) -> None:
    assert isinstance(door, ImporterDoor)
    made = door.import_finished("bob", "strict")
    # created already finished without a seed: refused (422), nothing stored
    assert made == []


@_cells("core", "client", "rest", "mlflow", "cli")
def test_a_finished_run_refuses_points_and_takes_notes_as_edit_events(
    world: World, door: Door
) -> None:
    rid = world.run_of("alice", finished=True)
    if door.name != "cli":
        assert door.log_metric("alice", rid) in (FINISHED, REFUSED)
        if door.name in ("core", "rest", "mlflow"):
            assert door.log_metric("alice", rid) == FINISHED
        assert world.points(rid) == 1
    assert door.set_notes("alice", rid, "the winner") == OK
    # (MLflow keeps its tags in env.mlflow: that change is an edit event of its own)
    edits = [e for e in world.store.run_edits(rid) if e["field"] == "notes"]
    assert [(e["new"], e["author"]) for e in edits] == [("the winner", "alice")]
    assert {e["author"] for e in world.store.run_edits(rid)} == {"alice"}
    assert world.store.get_run(rid)["status"] == "finished"


@_cells("core", "client", "rest", "mlflow", "cli")
def test_edit_events_name_the_true_actor(world: World, door: Door) -> None:
    for finished in (False, True):
        rid = world.run_of("alice", finished=finished)
        assert door.set_notes("root", rid, "checked by root") == OK
        edits = world.store.run_edits(rid)
        assert [e["author"] for e in edits if e["field"] == "notes"] == ["root"]
        assert {e["author"] for e in edits} == {"root"}


@_cells("core", "client", "rest", "mlflow", "cli")
def test_what_may_not_be_read_looks_missing(world: World, door: Door) -> None:
    rid = world.run_of("alice")
    # readable to both writers (the same success status; the bodies carry a live runtime)
    seen = [door.read(u, rid) for u in ("alice", "bob")]
    assert [s[0] if isinstance(s, tuple) else s for s in seen] == [
        s[0] if isinstance(s, tuple) else s for s in (door.read("root", rid),) * 2
    ]
    assert seen[0] == OK or seen[0][0] in (0, 200)
    hidden = door.read("carol", rid)
    absent = door.read("carol", uuid.uuid4().hex)
    assert hidden == absent
    assert "alpha" not in json.dumps(hidden)


# -- experiments through MLflow (the rule decided in store/_core.py) ---------------------------


def test_mlflow_experiments_take_the_projects_admin_and_hide_what_is_unreadable(
    world: World,
) -> None:
    base = world.server.url + "/api/2.0/mlflow"

    def call(user: str, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {world.tokens[user]}"}
        return httpx.request(method, base + path, headers=headers, timeout=60, **kw)

    world.run_of("alice")  # the project exists
    got = call("alice", "GET", "/experiments/get-by-name", params={"experiment_name": "alpha"})
    assert got.status_code == 200, got.text
    eid = got.json()["experiment"]["experiment_id"]
    # a writer of the project may not delete, restore, rename or retag its experiment
    for path, body in (
        ("/experiments/delete", {"experiment_id": eid}),
        ("/experiments/restore", {"experiment_id": eid}),
        ("/experiments/set-experiment-tag", {"experiment_id": eid, "key": "k", "value": "v"}),
        ("/experiments/update", {"experiment_id": eid, "new_name": "alpha2"}),
    ):
        r = call("bob", "POST", path, json=body)
        assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED", (
            path,
            r.text,
        )
    assert call("root", "POST", "/experiments/set-experiment-tag", json={
        "experiment_id": eid, "key": "k", "value": "v"}).status_code == 200  # fmt: skip
    # what carol may not read answers exactly like what does not exist
    missing_id = str(10**15 + 7)
    for path, params, absent in (
        ("/experiments/get", {"experiment_id": eid}, {"experiment_id": missing_id}),
        (
            "/experiments/get-by-name",
            {"experiment_name": "alpha"},
            {"experiment_name": "no-such-project"},
        ),
    ):
        hidden = call("carol", "GET", path, params=params)
        gone = call("carol", "GET", path, params=absent)
        assert hidden.status_code == gone.status_code == 404
        assert hidden.json()["error_code"] == gone.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
        if path == "/experiments/get":  # (get-by-name echoes the name the caller gave)
            assert "alpha" not in hidden.text
        key = next(iter(params))
        assert hidden.text.replace(str(params[key]), "X") == gone.text.replace(
            str(absent[key]), "X"
        )
    hidden = call("carol", "POST", "/runs/search", json={"experiment_ids": [eid]})
    gone = call("carol", "POST", "/runs/search", json={"experiment_ids": [missing_id]})
    assert hidden.status_code == gone.status_code == 404
    assert hidden.text.replace(eid, "X") == gone.text.replace(missing_id, "X")
    rid = world.run_of("alice")
    hidden = call(
        "carol", "GET", "/metrics/get-history", params={"run_id": rid, "metric_key": "loss"}
    )
    other = uuid.uuid4().hex
    gone = call(
        "carol", "GET", "/metrics/get-history", params={"run_id": other, "metric_key": "loss"}
    )
    assert hidden.status_code == gone.status_code == 404
    assert hidden.text.replace(rid, "X") == gone.text.replace(other, "X")
