"""Complete proofs (docs/trust.md): the sealed record covers each artifact's manifest, `audit
verify` re-derives version digests from the file rows, `artifacts get` refuses files that are
not the sealed manifest, and a chain entry may change only what its kind allows.

Real processes: training scripts and the CLI run as subprocesses; the attacker writes the
database directly (SQLite file or PostgreSQL), with labledger's own code at hand.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from .test_trust import _env, cli, sql

TRAIN_WITH_MODEL = """
import labledger, pathlib
p = pathlib.Path({weights!r})
p.write_bytes({payload!r})
with labledger.init("vision", name={name!r}, config={{"lr": 0.1}}, capture=False) as run:
    for i in range(50):
        run.log({{"acc": 0.5 + i / 100}})
    run.log_model(p)
print(run.id)
"""


def _train_model(store: str, cwd: Path, name: str, payload: bytes) -> str:
    code = TRAIN_WITH_MODEL.format(weights=str(cwd / f"{name}.pt"), payload=payload, name=name)
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=_env(store, {"LABLEDGER_ARTIFACTS_URI": str(cwd / "blobs")}),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    # a healthy store: the run was written as it went, nothing was kept for later
    assert "labledger:" not in out.stderr, out.stderr
    return out.stdout.strip().splitlines()[-1]


def _query(store: str, statement: str, **params: Any) -> list[Any]:
    engine = sa.create_engine(store.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(statement), params).all())
    finally:
        engine.dispose()


def _cli_blobs(store: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "labledger.cli", *args],
        env=_env(store, {"LABLEDGER_ARTIFACTS_URI": str(cwd / "blobs")}),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_file_row_pointed_at_another_runs_blob_is_caught(
    any_store_uri: str, isolated_env: Path
) -> None:
    a = _train_model(any_store_uri, isolated_env, "a", b"weights of run a" * 10)
    b = _train_model(any_store_uri, isolated_env, "b", b"weights of run b, the better ones")
    assert cli(any_store_uri, "audit", "verify").returncode == 0
    got = _cli_blobs(any_store_uri, isolated_env, "artifacts", "get", "vision/model:v0", "-o", "x")
    assert got.returncode == 0 and "verified" in got.stdout, got.stdout + got.stderr

    # run a's model now points at run b's blob (sha256 and size both right for that blob)
    (vid_a,) = _query(any_store_uri, "SELECT id FROM artifact_versions WHERE run_id = :r", r=a)[0]
    (vid_b,) = _query(any_store_uri, "SELECT id FROM artifact_versions WHERE run_id = :r", r=b)[0]
    sha_b, size_b = _query(
        any_store_uri, "SELECT sha256, size FROM artifact_files WHERE version_id = :v", v=vid_b
    )[0]
    sql(
        any_store_uri,
        "UPDATE artifact_files SET sha256 = :s, size = :n WHERE version_id = :v",
        s=sha_b,
        n=size_b,
        v=vid_a,
    )
    bad = cli(any_store_uri, "audit", "verify")
    assert bad.returncode == 1, bad.stdout
    assert f"vision/{a} field artifact.model:v0" in bad.stdout
    assert "file rows hash to" in bad.stdout  # the version digest, re-derived
    swapped = _cli_blobs(
        any_store_uri, isolated_env, "artifacts", "get", "vision/model:v0", "-o", "y"
    )
    assert swapped.returncode == 1 and "damaged" in swapped.stdout + swapped.stderr
    assert not (isolated_env / "y" / "a.pt").exists()

    # the attacker also recomputes the version digest: the sealed record still says otherwise
    from labledger.store._manifest import manifest_digest

    files = [{"path": "a.pt", "sha256": sha_b, "size": size_b}]
    sql(
        any_store_uri,
        "UPDATE artifact_versions SET sha256 = :s WHERE id = :v",
        s=manifest_digest("file", files),
        v=vid_a,
    )
    still = cli(any_store_uri, "audit", "verify", "--json")
    assert still.returncode == 1
    fields = {(p["run_id"], p["field"]) for p in json.loads(still.stdout)["problems"]}
    assert (a, "artifact.model:v0") in fields and (a, "artifacts") in fields
    refused = _cli_blobs(
        any_store_uri, isolated_env, "artifacts", "get", "vision/model:v0", "-o", "z"
    )
    assert refused.returncode == 1
    assert f"not the one run {a[:12]} sealed" in refused.stdout + refused.stderr
    assert not (isolated_env / "z" / "a.pt").exists()


def _forge_late_entry(store: str, run_id: str) -> None:
    """What an attacker with database access and labledger's code does after rewriting rows:
    append a fresh chain entry that matches them (the old head stays in the chain)."""
    from labledger.store import open_store

    st = open_store(store)
    try:
        with st._tx() as conn:  # type: ignore[attr-defined]
            st._append_entry(conn, "vision", run_id, "late")  # type: ignore[attr-defined]
    finally:
        st.close()


def test_a_forged_late_entry_over_a_rewritten_run_fails_verify_with_and_without_head(
    any_store_uri: str, isolated_env: Path
) -> None:
    run = _train_model(any_store_uri, isolated_env, "winner", b"w")
    published = json.loads(cli(any_store_uri, "audit", "head", "--json").stdout)[0]["head"]
    sql(any_store_uri, "UPDATE runs SET config = :c WHERE id = :r", c='{"lr": 0.01}', r=run)
    sql(
        any_store_uri,
        "UPDATE metric_summary SET max = 0.999, last = 0.999 WHERE run_id = :r AND key = 'acc'",
        r=run,
    )
    assert cli(any_store_uri, "audit", "verify").returncode == 1  # before the forged entry
    _forge_late_entry(any_store_uri, run)
    for args in ((), ("--head", published)):
        out = cli(any_store_uri, "audit", "verify", *args)
        assert out.returncode == 1, out.stdout
        assert f"vision/{run} field config" in out.stdout
        assert f"vision/{run} field metric.acc" in out.stdout
        assert "'late' entry changed config, which was sealed" in out.stdout
    # one run's check (cite/check and the run page use it) says the same
    from labledger.store import open_store

    st = open_store(any_store_uri)
    try:
        problems = {p["field"] for p in st.verify_run(run)["problems"]}
    finally:
        st.close()
    assert {"config", "metric.acc"} <= problems


def test_late_points_may_only_add_and_an_honest_late_entry_verifies(store_uri: str) -> None:
    from labledger.store import Batch, open_store

    st: Any = open_store(store_uri)
    try:
        now = time.time()
        st.create_run({"id": "e" * 32, "project": "vision", "name": "r", "status": "running"})
        pts = ([0, 1, 2], [0.1, 0.2, 0.3], [now - 3, now - 2, now - 1])
        st.write_batch(Batch("e" * 32, metrics={"acc": pts}))
        st.write_batch(Batch("e" * 32, run_update={"status": "finished", "ended_at": now + 10}))
        # a point spilled before the end, replayed by `labledger sync`: a late entry
        st.write_batch(Batch("e" * 32, metrics={"acc": ([3], [0.4], [now])}), late=True)
        kinds = [k for (k,) in _query(store_uri, "SELECT kind FROM audit_log ORDER BY seq")]
        assert kinds == ["seal", "late"]
        assert st.audit_verify()["ok"], st.audit_verify()["problems"]

        # rewriting a sealed point, then chaining a late entry that adds one more
        sql(
            store_uri,
            "UPDATE metric_chunks SET vals = :v WHERE run_id = :r AND step_min = 0",
            v=b"".join(x.to_bytes(8, "little") for x in (0, 0, 0)),
            r="e" * 32,
        )
        st.write_batch(Batch("e" * 32, metrics={"acc": ([4], [0.5], [now])}), late=True)
        result = st.audit_verify()
        assert not result["ok"]
        assert any(
            p["field"] == "series.acc" and "not the ones sealed" in p["message"]
            for p in result["problems"]
        ), result["problems"]
    finally:
        st.close()


def test_a_record_sealed_in_format_1_still_verifies_and_edits_upgrade_it(
    store_uri: str, tmp_path: Path
) -> None:
    import labledger
    from labledger.store import open_store
    from labledger.store._audit_core import chain_entry
    from labledger.store._schema import audit_log

    f = tmp_path / "w.bin"
    f.write_bytes(b"weights")
    with labledger.init(
        "vision", store=store_uri, artifacts=str(tmp_path / "blobs"), capture=False
    ) as r:
        r.log({"acc": 0.9})
        r.log_model(f)
    st: Any = open_store(store_uri)
    try:
        with st._tx() as conn:  # type: ignore[attr-defined]
            # the entry a store sealed before format 2 (no manifest, no point counts)
            conn.execute(sa.text("DELETE FROM audit_log"))
            old = st._record_fields(conn, [r.id], {r.id: 1})[r.id]  # type: ignore[attr-defined]
            assert "format" not in old and not any(k.startswith("artifact.") for k in old)
            row = chain_entry(
                None,
                project="vision",
                run_id=r.id,
                kind="seal",
                edit_id=None,
                fields=old,
                now=time.time(),
            )
            conn.execute(sa.insert(audit_log).values(**row))
        assert st.audit_verify()["ok"], st.audit_verify()["problems"]
        assert st.verify_run(r.id)["problems"] == []
        st.edit_run(r.id, notes="still the best", actor="alice")
        raw = _query(store_uri, "SELECT fields FROM audit_log ORDER BY seq DESC")[0][0]
        fields = json.loads(raw) if isinstance(raw, str) else raw
        assert fields["format"] == "2" and "artifact.model:v0" in fields
        assert st.audit_verify()["ok"], st.audit_verify()["problems"]
    finally:
        st.close()


# -- signed heads ------------------------------------------------------------------------


def _independent_dsse_payload(envelope: dict[str, Any], public_pem: bytes) -> Any:
    """Check a DSSE envelope with `cryptography` alone (not labledger's code): the PAE of
    the DSSE v1 spec, an Ed25519 signature by the given key."""
    import base64

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    body = base64.b64decode(envelope["payload"])
    ptype = envelope["payloadType"].encode()
    pae = b"DSSEv1 " + b"%d " % len(ptype) + ptype + b" %d " % len(body) + body
    key = load_pem_public_key(public_pem)
    assert isinstance(key, Ed25519PublicKey)
    key.verify(base64.b64decode(envelope["signatures"][0]["sig"]), pae)
    return json.loads(body)


def test_a_signed_head_verifies_and_a_tampered_or_foreign_one_is_refused(
    store_uri: str, isolated_env: Path
) -> None:
    import base64

    _train_model(store_uri, isolated_env, "a", b"a")
    made = cli(store_uri, "audit", "keygen", "-o", str(isolated_env / "keys" / "head.key"))
    assert made.returncode == 0, made.stderr
    key, pub = isolated_env / "keys" / "head.key", isolated_env / "keys" / "head.key.pub"
    assert key.stat().st_mode & 0o077 == 0  # the private key is the owner's only
    signed = cli(store_uri, "audit", "head", "--sign", str(key))
    assert signed.returncode == 0, signed.stderr
    envelope = json.loads(signed.stdout)
    head = json.loads(cli(store_uri, "audit", "head", "--json").stdout)[0]
    payload = _independent_dsse_payload(envelope, pub.read_bytes())
    assert payload["project"] == "vision" and payload["head"] == head["head"]
    assert payload["entries"] == head["seq"] and payload["time"].endswith("Z")

    published = isolated_env / "HEAD.json"
    published.write_text(signed.stdout)
    _train_model(store_uri, isolated_env, "b", b"b")  # the chain grows past the head: fine
    ok = cli(store_uri, "audit", "verify", "--head", str(published), "--key", str(pub))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "signed head of vision (entry 1" in ok.stdout and "signature ok" in ok.stdout
    no_key = cli(store_uri, "audit", "verify", "--head", str(published))
    assert no_key.returncode != 0 and "--key" in no_key.stderr

    # a head whose payload was changed after signing (another hash) is refused
    forged = dict(envelope)
    body = dict(payload, head="0" * 64)
    forged["payload"] = base64.b64encode(json.dumps(body).encode()).decode()
    (isolated_env / "forged.json").write_text(json.dumps(forged))
    bad = cli(
        store_uri, "audit", "verify", "--head", str(isolated_env / "forged.json"), "--key", str(pub)
    )
    assert bad.returncode == 1 and "no valid signature" in bad.stdout + bad.stderr

    # signed by somebody else's key
    other = isolated_env / "other.key"
    assert cli(store_uri, "audit", "keygen", "-o", str(other)).returncode == 0
    theirs = cli(store_uri, "audit", "head", "--sign", str(other)).stdout
    (isolated_env / "theirs.json").write_text(theirs)
    refused = cli(
        store_uri, "audit", "verify", "--head", str(isolated_env / "theirs.json"), "--key", str(pub)
    )
    assert refused.returncode == 1 and "no valid signature" in refused.stdout + refused.stderr

    # a validly signed head that the store no longer holds: history was rewritten
    from .test_trust import _rechain

    sql(store_uri, "UPDATE runs SET notes = 'rewritten' WHERE name = 'a'")
    _rechain(store_uri)
    rewritten = cli(store_uri, "audit", "verify", "--head", str(published), "--key", str(pub))
    assert rewritten.returncode == 1
    assert "signature ok" in rewritten.stdout and "rewritten" in rewritten.stdout


# -- standard provenance -----------------------------------------------------------------

SCHEMA = Path(__file__).parent / "schemas" / "intoto-statement-v1-slsa-provenance-v1.schema.json"

TRAIN_IN_REPO = """
import labledger, pathlib
pathlib.Path("model.pt").write_bytes(b"trained weights")
with labledger.init("vision", name="attested", config={"lr": 0.05}, seed=7) as run:
    run.log_dataset("digits.csv", name="digits")
    for i in range(20):
        run.log({"acc": 0.8 + i / 100})
    run.log_model("model.pt")
print(run.id)
"""


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=alice@lab.example", "-c", "user.name=Alice", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def test_attestation_is_an_in_toto_slsa_statement_an_independent_reader_accepts(
    store_uri: str, isolated_env: Path
) -> None:
    import base64

    import jsonschema
    from cryptography.exceptions import InvalidSignature

    repo = isolated_env / "repo"
    repo.mkdir()
    (repo / "train.py").write_text(TRAIN_IN_REPO)
    (repo / "digits.csv").write_text("x,y\n1,2\n")
    (repo / ".gitignore").write_text(".labledger/\nmodel.pt\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "train")
    out = subprocess.run(
        [sys.executable, "train.py"],
        env=_env(
            store_uri, {"LABLEDGER_CAPTURE": "on", "LABLEDGER_ARTIFACTS_URI": str(repo / "blobs")}
        ),
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    run_id = out.stdout.strip().splitlines()[-1]
    doc = json.loads(cli(store_uri, "show", run_id, "--json").stdout)

    made = cli(store_uri, "attest", run_id[:10], "-o", str(isolated_env / "prov.json"))
    assert made.returncode == 0, made.stderr
    statement = json.loads((isolated_env / "prov.json").read_text())
    jsonschema.validate(statement, json.loads(SCHEMA.read_text()))

    (model,) = doc["artifacts"]
    assert statement["subject"] == [
        {
            "name": f"{model['uri']}/model.pt",
            "digest": {"sha256": model["files"][0]["sha256"]},
            "annotations": {"artifact": model["uri"], "kind": "model", "manifest": model["sha256"]},
        }
    ]
    build = statement["predicate"]["buildDefinition"]
    assert build["externalParameters"]["config"] == {"lr": 0.05}
    assert build["externalParameters"]["seed"] == 7
    assert build["externalParameters"]["command"]["argv"] == ["train.py"]
    deps = {d["name"]: d for d in build["resolvedDependencies"]}
    assert deps["source"]["digest"] == {"gitCommit": doc["env"]["git"]["commit"]}
    assert deps["dataset:digits"]["digest"] == {"sha256": doc["datasets"][0]["sha256"]}
    assert deps["labledger"]["uri"].startswith("pkg:pypi/labledger@")
    products = {b["name"]: b for b in statement["predicate"]["runDetails"]["byproducts"]}
    assert products["labledger-record"]["digest"] == {"sha256": doc["record_sha256"]}
    assert products["reproduction-verdict"]["annotations"]["verdict"] == "none"
    assert statement["predicate"]["runDetails"]["metadata"]["invocationId"] == run_id

    # signed: a DSSE envelope whose signature cryptography checks on its own
    key = isolated_env / "attest.key"
    assert cli(store_uri, "audit", "keygen", "-o", str(key)).returncode == 0
    signed = cli(
        store_uri, "attest", run_id, "-o", str(isolated_env / "prov.dsse.json"), "--sign", str(key)
    )
    assert signed.returncode == 0, signed.stderr
    envelope = json.loads((isolated_env / "prov.dsse.json").read_text())
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    pub = Path(str(key) + ".pub").read_bytes()
    payload = _independent_dsse_payload(envelope, pub)
    jsonschema.validate(payload, json.loads(SCHEMA.read_text()))
    assert payload["subject"] == statement["subject"]

    # a subject digest changed after signing no longer verifies
    payload["subject"][0]["digest"]["sha256"] = "0" * 64
    envelope["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    try:
        _independent_dsse_payload(envelope, pub)
    except InvalidSignature:
        pass
    else:
        raise AssertionError("a changed attestation verified")

    # a run still going has no sealed record to attest
    from labledger.store import open_store

    st: Any = open_store(store_uri)
    try:
        st.create_run({"id": "f" * 32, "project": "vision", "name": "live", "status": "running"})
    finally:
        st.close()
    live = cli(store_uri, "attest", "f" * 32, "-o", str(isolated_env / "live.json"))
    assert live.returncode == 1 and "no sealed record" in live.stdout + live.stderr


def test_forged_edit_and_second_seal_entries_are_named(store_uri: str) -> None:
    """An entry's kind limits what it may change: an `edit` entry whose edit event names a
    field that is not editable, or a second `seal`, fails verify."""
    from labledger.store import Batch, open_store

    st: Any = open_store(store_uri)
    try:
        rid = "c" * 32
        st.create_run({"id": rid, "project": "vision", "name": "r", "status": "running"})
        st.write_batch(Batch(rid, metrics={"acc": ([0], [0.5], [time.time()])}))
        st.write_batch(Batch(rid, run_update={"status": "finished", "ended_at": time.time()}))
        st.edit_run(rid, notes="honest note", add_tags=["paper"], actor="alice")
        assert st.audit_verify()["ok"], st.audit_verify()["problems"]
        # a forged edit event "explains" a config change; the entry records it
        sql(
            store_uri,
            "INSERT INTO run_edits (id, run_id, field, old, new, author, at) "
            "VALUES (:i, :r, 'config', '{}', '{\"lr\": 1}', 'mallory', :t)",
            i="f" * 32,
            r=rid,
            t=time.time(),
        )
        sql(store_uri, "UPDATE runs SET config = :c WHERE id = :r", c='{"lr": 1}', r=rid)
        with st._tx() as conn:
            st._append_entry(conn, "vision", rid, "edit", "f" * 32)
        problems = st.audit_verify()["problems"]
        assert any(
            p["field"] == "config" and "'edit' entry changed config" in p["message"]
            for p in problems
        ), problems
        with st._tx() as conn:
            st._append_entry(conn, "vision", rid, "seal")
        problems = st.audit_verify()["problems"]
        assert any("a second 'seal' entry" in p["message"] for p in problems), problems
    finally:
        st.close()


def test_a_late_artifact_must_have_been_pending_when_the_run_was_sealed(
    any_store_uri: str,
) -> None:
    """`finish()` lists the uploads still pending (`env.pending_artifacts`) in the batch that
    seals the run; a late version (`labledger sync`) verifies only when it was listed."""
    from labledger.store import Batch, open_store
    from labledger.store._manifest import manifest_digest

    def manifest(tag: str) -> list[dict[str, Any]]:
        return [{"path": f"{tag}.pt", "sha256": tag * 64, "size": 3}]

    st: Any = open_store(any_store_uri)
    try:
        rid = "d" * 32
        st.create_run({"id": rid, "project": "vision", "name": "r", "status": "running"})
        spooled = manifest_digest("file", manifest("a"))
        pending = [{"name": "model", "kind": "model", "sha256": spooled}]
        st.write_batch(
            Batch(
                rid,
                run_update={
                    "status": "finished",
                    "ended_at": time.time(),
                    "env": {"pending_artifacts": pending},
                },
            )
        )
        st.create_artifact_version("vision", "model", "model", rid, manifest("a"), late=True)
        assert st.audit_verify()["ok"], st.audit_verify()["problems"]
        # a version that nobody logged before the end, slipped in as "late"
        st.create_artifact_version("vision", "model", "model", rid, manifest("b"), late=True)
        problems = st.audit_verify()["problems"]
        assert [p["field"] for p in problems] == ["artifact.model:v1"], problems
        assert "not pending when the run was sealed" in problems[0]["message"]
    finally:
        st.close()


def test_finish_lists_uploads_still_in_the_offline_spool() -> None:
    from labledger.artifacts._uploader import ArtifactRef, Uploader

    up = Uploader.__new__(Uploader)
    up._lock = threading.Lock()
    files = [{"path": "m.pt", "sha256": "a" * 64, "size": 1}]
    done = ArtifactRef("p", "done", "model", "file", files, "1" * 64)
    done.version = 0
    waiting = ArtifactRef("p", "model", "model", "file", files, "2" * 64)
    spooled = ArtifactRef("p", "ckpt", "model", "file", files, "3" * 64)
    spooled.spooled = True
    up.pending, up.deferred = [done, waiting], [spooled]
    assert up.unregistered() == [
        {"name": "model", "kind": "model", "sha256": "2" * 64},
        {"name": "ckpt", "kind": "model", "sha256": "3" * 64},
    ]


def test_the_official_in_toto_attestation_package_reads_the_statement(
    store_uri: str, isolated_env: Path
) -> None:
    """in-toto's own Python reader (PyPI `in-toto-attestation`, in the dev extra) parses the
    statement strictly (protobuf: an unknown field fails) and validates it."""
    pytest.importorskip("in_toto_attestation", reason="pip install 'labledger[dev]'")
    from google.protobuf import json_format
    from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
    from in_toto_attestation.v1 import statement, statement_pb2

    run_id = _train_model(store_uri, isolated_env, "a", b"weights")
    assert cli(store_uri, "attest", run_id, "-o", str(isolated_env / "s.json")).returncode == 0
    doc = json.loads((isolated_env / "s.json").read_text())
    pb = json_format.ParseDict(doc, statement_pb2.Statement())
    statement.Statement.copy_from_pb(pb).validate()
    prov = json_format.ParseDict(doc["predicate"], provenance_pb2.Provenance())
    assert pb.predicate_type == "https://slsa.dev/provenance/v1"
    assert prov.run_details.metadata.invocation_id == run_id
    assert [s.digest["sha256"] for s in pb.subject] == [
        s["digest"]["sha256"] for s in doc["subject"]
    ]
