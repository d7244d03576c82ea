"""A training script whose tracking server is down ends promptly, loses nothing, and
`labledger sync` later uploads its run, its points and its artifacts (issue: 3-minute exit,
artifacts lost)."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from labledger.artifacts import download_artifact
from labledger.remote.http import HttpStore

from .conftest import Server, cli_env, labledger

SCRIPT = """
import labledger
run = labledger.init(project="offline-art", config={"lr": 0.1}, capture=False)
for i in range(200):
    run.log({"loss": 1.0 / (i + 1)})
run.log_model("model.bin", name="model")
run.log_artifact("ckpt.bin", name="ckpt")
run.log_artifact("notes.txt", name="notes")
run.finish()
print(run.id)
"""


def test_server_down_script_exits_promptly_and_sync_uploads_its_artifacts(
    store_uri: str, tmp_path: Path
) -> None:
    from tests.conftest import run_script

    work = tmp_path / "train"
    work.mkdir()
    model = (b"weights-" * 40_000) + b"end"  # ~320 kB: not copied into the spool
    (work / "model.bin").write_bytes(model)
    (work / "ckpt.bin").write_bytes(b"checkpoint" * 20_000)
    (work / "notes.txt").write_bytes(b"small notes")  # small: embedded in the spool record
    spool = tmp_path / "spool"
    srv = Server(store_uri, tmp_path)  # its port is free: nothing listens yet
    env = cli_env(
        {"LABLEDGER_URI": srv.url, "LABLEDGER_SPOOL_DIR": str(spool), "LABLEDGER_SYNC_TIMEOUT": "3"}
    )
    started = time.monotonic()
    proc = run_script(SCRIPT, cwd=work, env=env, timeout=120)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    assert elapsed < 45, f"the script took {elapsed:.0f}s to exit with the server down"
    run_id = proc.stdout.strip().splitlines()[-1]

    # one warning says what is spooled and how to upload it; no artifact is reported lost
    syncs = [line for line in proc.stderr.splitlines() if "labledger sync" in line]
    assert len(syncs) == 1, proc.stderr
    assert "offline-art/model" in syncs[0] and "3 artifact(s)" in syncs[0], syncs[0]
    assert "NOT stored" not in proc.stderr and "retrying" not in proc.stderr, proc.stderr

    records = [json.loads(p.read_text()) for p in sorted(spool.rglob("*.json"))]
    arts = {r["body"]["name"]: r for r in records if r["kind"] == "artifact"}
    assert set(arts) == {"model", "ckpt", "notes"}
    rec = arts["model"]
    assert rec["uri"] == srv.url and rec["run_id"] == run_id
    assert rec["body"]["project"] == "offline-art" and rec["body"]["kind"] == "model"
    (blob,) = rec["body"]["blobs"]
    assert blob["sha256"] == hashlib.sha256(model).hexdigest() and blob["size"] == len(model)
    assert blob["path"] == str(work / "model.bin") and "data" not in blob
    assert "data" in arts["notes"]["body"]["blobs"][0]

    # the files must still be there, unchanged: a changed one is refused with the reason;
    # a small one was copied into the record, so it survives its file being deleted
    (work / "ckpt.bin").write_bytes(b"overwritten by the next epoch")
    (work / "notes.txt").unlink()

    srv.start()
    try:
        out = labledger("sync", "--spool-dir", str(spool), "--json")
        assert out.returncode == 0, out.stdout + out.stderr
        report = json.loads(out.stdout)
        assert report["artifacts"] == 2 and report["rejected"] == 1 and report["left"] == 0
        assert not list(spool.rglob("*.json")) or all(
            "rejected" in p.parts for p in spool.rglob("*.json")
        )
        reasons = [p.read_text() for p in (spool / "rejected").glob("*.reason")]
        assert len(reasons) == 1 and "ckpt.bin changed since it was logged" in reasons[0]

        store = HttpStore(srv.url, spool_dir=tmp_path / "reader-spool")
        try:
            run = store.get_run(run_id)
            assert run["status"] == "finished" and run["config"] == {"lr": 0.1}
            assert store.history(run_id, "loss").total == 200
            dest = tmp_path / "got"
            version, paths = download_artifact(store, "offline-art", "model:latest", dest)
            assert version["run_id"] == run_id and version["version"] == 0
            assert [p.read_bytes() for p in paths] == [model]
            _, notes = download_artifact(store, "offline-art", "notes", tmp_path / "notes")
            assert notes[0].read_bytes() == b"small notes"
            names = {v["name"] for v in store.list_artifact_versions("offline-art")}
            assert names == {"model", "notes"}
        finally:
            store.close()

        again = labledger("sync", "--spool-dir", str(spool), "--json")
        assert json.loads(again.stdout)["artifacts"] == 0  # nothing registered twice
    finally:
        srv.stop()
