"""``labledger import mlflow`` on stores written by the real ``mlflow`` (SQLite db, mlruns folder)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mlflow")

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]

ROOT = Path(__file__).resolve().parents[2]

# Written by the real mlflow client in a subprocess; prints what it logged as JSON.
MAKE_STORE = r"""
import json, math, os, sys, time
import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
uri, workdir = sys.argv[1], sys.argv[2]
mlflow.set_tracking_uri(uri)
client = MlflowClient(uri)
eid = client.create_experiment("legacy-vision", tags={"team": "cv"})
other = client.create_experiment("legacy-nlp")
t0 = 1_600_000_000_000
expected = []
for i, (lr, status) in enumerate([("0.1", "FINISHED"), ("0.01", "FAILED"), ("1e-3", "KILLED")]):
    run = client.create_run(
        eid if i < 2 else other,
        start_time=t0 + i * 1000,
        run_name=f"run-{i}",
        tags={"mlflow.user": f"user{i}", "mlflow.source.git.commit": f"abc{i}", "stage": "old"},
    )
    rid = run.info.run_id
    values = [1.0 / (s + 1) for s in range(120)]
    if i == 0:
        values[5], values[6], values[7] = math.nan, math.inf, -math.inf
    metrics = [Metric("loss", v, t0 + i * 1000 + s * 7, s * 2) for s, v in enumerate(values)]
    for k in range(0, len(metrics), 50):
        client.log_batch(rid, metrics=metrics[k : k + 50])
    client.log_batch(rid, params=[Param("lr", lr), Param("optimizer", "adam"), Param("layers", "4")])
    path = os.path.join(workdir, f"weights-{i}.bin")
    with open(path, "wb") as fh:
        fh.write(bytes([i]) * (1000 + i))
    client.log_artifact(rid, path)
    client.log_artifact(rid, path, artifact_path="model/sub")
    client.set_terminated(rid, status, end_time=t0 + i * 1000 + 5000)
    expected.append({"id": rid, "lr": lr, "status": status, "start": t0 + i * 1000,
                     "end": t0 + i * 1000 + 5000, "user": f"user{i}",
                     "history": [[m.step, None if math.isnan(m.value) else m.value, m.timestamp] for m in metrics],
                     "sha256": __import__("hashlib").sha256(bytes([i]) * (1000 + i)).hexdigest()})
print(json.dumps(expected))
"""


def make_mlflow_store(uri: str, workdir: Path) -> list[dict[str, Any]]:
    env = {
        **os.environ,
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "MLFLOW_ALLOW_FILE_STORE": "true",
    }
    out = subprocess.run(
        [sys.executable, "-c", MAKE_STORE, uri, str(workdir)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=workdir,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    data: list[dict[str, Any]] = json.loads(out.stdout.strip().splitlines()[-1])
    return data


@pytest.fixture(scope="module")
def mlflow_sqlite(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    d = tmp_path_factory.mktemp("mlflow-sqlite")
    db = d / "mlflow.db"
    return db, make_mlflow_store(f"sqlite:///{db}", d)


@pytest.fixture(scope="module")
def mlruns(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    d = tmp_path_factory.mktemp("mlflow-files")
    folder = d / "mlruns"
    return folder, make_mlflow_store(folder.as_uri(), d)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABLEDGER_")}
    env.update({"PYTHONPATH": str(ROOT / "src"), "LABLEDGER_CONSOLE": "off"})
    return subprocess.run(
        [sys.executable, "-m", "labledger.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def check_imported(store_uri: str, expected: list[dict[str, Any]], tmp_path: Path) -> None:
    from labledger import Ledger

    with Ledger(store_uri) as ledger:
        _check(ledger, expected)


def _check(ledger: Any, expected: list[dict[str, Any]]) -> None:
    for exp in expected:
        run = ledger.get(exp["id"])  # the MLflow run id is the labledger id
        assert run["id"] == exp["id"] and run["name"].startswith("run-")
        assert run["created_at"] == pytest.approx(exp["start"] / 1000)
        assert run["ended_at"] == pytest.approx(exp["end"] / 1000)
        assert (
            run["status"]
            == {"FINISHED": "finished", "FAILED": "failed", "KILLED": "killed"}[exp["status"]]
        )
        assert run["author"] == exp["user"]
        assert run["config"] == {"lr": float(exp["lr"]), "optimizer": "adam", "layers": 4}
        assert run["env"]["mlflow"]["params"]["lr"] == exp["lr"]  # the string as logged
        assert run["env"]["mlflow"]["run_id"] == exp["id"]
        assert run["env"]["mlflow"]["tags"]["stage"] == "old"
        assert "stage=old" in run["tags"]  # a custom MLflow tag is the run's own tag too
        assert not any(t.startswith("mlflow.") for t in run["tags"])
        assert run["env"]["git"]["commit"].startswith("abc")
        hist = ledger.history(exp["id"], "loss")
        got = [[s, None if math.isnan(v) else v, round(t * 1000)] for s, v, t in hist.to_list()]
        assert got == exp["history"]
        arts = {a["name"]: a for a in run["artifacts"]}
        assert set(arts) == {f"weights-{expected.index(exp)}.bin", "model"}
        assert arts["model"]["files"] == [
            {
                "path": f"sub/weights-{expected.index(exp)}.bin",
                "sha256": exp["sha256"],
                "size": 1000 + expected.index(exp),
            }
        ]
    assert {r["project"] for r in ledger.runs()} == {"legacy-vision", "legacy-nlp"}
    assert [r["name"] for r in ledger.runs(filter="config.lr < 0.05", order_by="config.lr")] == [
        "run-2",
        "run-1",
    ]


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'target' / 'ledger.db'}"
    return str(request.getfixturevalue("pg_uri"))


def test_import_from_sqlite_database_is_complete_and_idempotent(
    mlflow_sqlite: tuple[Path, list[dict[str, Any]]], target: str, tmp_path: Path
) -> None:
    db, expected = mlflow_sqlite
    arts = str(tmp_path / "blobs")
    out = cli(
        "import", "mlflow", f"sqlite:///{db}", "--store", target, "--artifacts-uri", arts, "--json"
    )
    assert out.returncode == 0, out.stderr
    first = json.loads(out.stdout)
    assert first["runs"] == 3 and first["skipped"] == 0 and first["points"] == 360
    assert first["params"] == 9 and first["errors"] == []
    check_imported(target, expected, tmp_path)
    from labledger.artifacts import open_blob_store

    assert open_blob_store(arts).has(expected[0]["sha256"])  # content-addressed
    again = json.loads(
        cli(
            "import", "mlflow", str(db), "--store", target, "--artifacts-uri", arts, "--json"
        ).stdout
    )
    assert again["runs"] == 0 and again["skipped"] == 3 and again["points"] == 0
    from labledger import Ledger

    with Ledger(target) as ledger:
        assert len(ledger.runs()) == 3


def test_import_from_mlruns_folder(
    mlruns: tuple[Path, list[dict[str, Any]]], tmp_path: Path
) -> None:
    folder, expected = mlruns
    target = f"sqlite:///{tmp_path / 'target.db'}"
    out = cli(
        "import", "mlflow", str(folder), "--store", target, "--artifacts-uri", str(tmp_path / "b")
    )
    assert out.returncode == 0, out.stderr
    assert "imported 3 run(s)" in out.stdout and "0 already imported" in out.stdout
    check_imported(target, expected, tmp_path)


def test_import_of_a_missing_source_is_one_line(tmp_path: Path) -> None:
    out = cli(
        "import", "mlflow", str(tmp_path / "nope"), "--store", f"sqlite:///{tmp_path / 't.db'}"
    )
    assert out.returncode == 1 and "neither a tracking URI" in out.stderr
    assert "Traceback" not in out.stderr
