"""The model registry through the unchanged ``mlflow`` client (SQLite and PostgreSQL):
register a model, move an alias, load ``models:/digits@champion``; and the same
registry natively (``labledger models``), its rules and its audit trail."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .conftest import Server, backend_server, labledger, mlflow_client_for

mlflow = pytest.importorskip("mlflow")
pytest.importorskip("sklearn")

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

from mlflow import MlflowClient  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    with backend_server(request, tmp_path_factory, "registry-srv") as srv:
        yield srv


@pytest.fixture
def client(server: Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[MlflowClient]:
    with mlflow_client_for(server, monkeypatch, registry=True) as c:
        yield c


def _train_and_log(seed: int) -> tuple[str, list[int]]:
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    x, y = load_digits(return_X_y=True)
    clf = LogisticRegression(max_iter=200, C=0.1 * (seed + 1)).fit(x[:400], y[:400])
    mlflow.set_experiment("digits-registry")
    with mlflow.start_run() as run:
        mlflow.log_metric("accuracy", float(clf.score(x[400:600], y[400:600])))
        mlflow.sklearn.log_model(clf, name="model", pip_requirements=["scikit-learn"])
    return run.info.run_id, [int(p) for p in clf.predict(x[:20])]


def test_register_alias_and_load_champion(client: MlflowClient, server: Server) -> None:
    name = f"digits-{uuid.uuid4().hex[:6]}"
    run1, pred1 = _train_and_log(0)
    run2, pred2 = _train_and_log(5)
    v1 = mlflow.register_model(f"runs:/{run1}/model", name)
    v2 = mlflow.register_model(f"runs:/{run2}/model", name)
    assert (v1.version, v2.version) == ("1", "2")
    assert v1.run_id == run1 and v2.run_id == run2

    client.set_registered_model_alias(name, "champion", "1")
    assert client.get_model_version_by_alias(name, "champion").run_id == run1
    loaded = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    from sklearn.datasets import load_digits

    x, _ = load_digits(return_X_y=True)
    assert [int(p) for p in loaded.predict(x[:20])] == pred1

    # the alias moves: the champion is now version 2, and models:/name/2 resolves too
    client.set_registered_model_alias(name, "champion", "2")
    assert [
        int(p) for p in mlflow.pyfunc.load_model(f"models:/{name}@champion").predict(x[:20])
    ] == pred2
    assert [int(p) for p in mlflow.pyfunc.load_model(f"models:/{name}/1").predict(x[:20])] == pred1
    path = mlflow.artifacts.download_artifacts(f"models:/{name}/2")
    assert (Path(path) / "MLmodel").is_file()

    model = client.get_registered_model(name)
    assert model.aliases == {"champion": "2"}
    assert [m.name for m in client.search_registered_models(f"name = '{name}'")] == [name]
    found = client.search_model_versions(f"name = '{name}'")
    assert sorted(v.version for v in found) == ["1", "2"]
    assert client.get_model_version_download_uri(name, "1").startswith(
        "mlflow-artifacts:/artifact-versions/"
    )

    # tags and descriptions; a missing tag to delete raises
    client.set_registered_model_tag(name, "task", "digits")
    client.set_model_version_tag(name, "2", "validated", "yes")
    client.update_registered_model(name, description="digit classifier")
    client.update_model_version(name, "2", description="bigger C")
    assert client.get_registered_model(name).tags == {"task": "digits"}
    mv = client.get_model_version(name, "2")
    assert mv.tags["validated"] == "yes" and mv.description == "bigger C"
    with pytest.raises(MlflowException, match="RESOURCE_DOES_NOT_EXIST"):
        client.delete_registered_model_tag(name, "nope")
    client.delete_registered_model_tag(name, "task")

    # natively: the same registry, and the alias moves are edit events by their actor
    out = labledger("models", "ls", "--store", server.backend_uri, "--json")
    assert out.returncode == 0, out.stderr
    mine = [m for m in json.loads(out.stdout) if m["name"] == name]
    assert mine and mine[0]["aliases"] == {"champion": 2}
    shown = labledger("show", run2, "--store", server.backend_uri, "--json")
    assert shown.returncode == 0, shown.stderr
    audit = labledger("audit", "verify", "--store", server.backend_uri)
    assert audit.returncode == 0, audit.stdout + audit.stderr

    # an unknown version or alias is MLflow's RESOURCE_DOES_NOT_EXIST
    with pytest.raises(MlflowException, match="RESOURCE_DOES_NOT_EXIST"):
        client.get_model_version(name, "9")
    with pytest.raises(MlflowException, match="RESOURCE_DOES_NOT_EXIST"):
        client.get_model_version_by_alias(name, "nobody")
    client.delete_registered_model_alias(name, "champion")
    client.rename_registered_model(name, name + "-renamed")
    assert client.get_model_version(name + "-renamed", "1").run_id == run1
    client.delete_model_version(name + "-renamed", "1")
    client.delete_registered_model(name + "-renamed")
    with pytest.raises(MlflowException, match="RESOURCE_DOES_NOT_EXIST"):
        client.get_registered_model(name + "-renamed")


def test_running_run_is_refused_and_duplicates_answer_mlflow_codes(
    client: MlflowClient, server: Server
) -> None:
    name = f"live-{uuid.uuid4().hex[:6]}"
    client.create_registered_model(name)
    with pytest.raises(MlflowException, match="RESOURCE_ALREADY_EXISTS"):
        client.create_registered_model(name)
    mlflow.set_experiment("digits-registry")
    with mlflow.start_run() as run:
        mlflow.log_text("hello", "notes/readme.txt")
        with pytest.raises(MlflowException, match="finished run"):
            client.create_model_version(name, f"runs:/{run.info.run_id}/notes", run.info.run_id)
    r = httpx.get(f"{server.url}/api/2.0/mlflow/registered-models/get", params={"name": ""})
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_native_register_and_alias(server: Server, tmp_path: Path) -> None:
    import labledger as ll

    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"\x00\x01" * 64)
    run = ll.init(project="native-registry", store=server.url, capture=False)
    run.log({"acc": 0.5})
    run.log_artifact(str(weights), name="weights")
    run.finish()
    name = f"native-{uuid.uuid4().hex[:6]}"
    out = labledger("models", "register", run.id, "weights", name, "--store", server.backend_uri)
    assert out.returncode == 0, out.stderr
    assert "version 1" in out.stdout
    out = labledger("models", "alias", name, "prod", "1", "--store", server.backend_uri)
    assert out.returncode == 0, out.stderr
    out = labledger("models", "ls", "--store", server.backend_uri, "--json")
    doc = {m["name"]: m for m in json.loads(out.stdout)}
    assert doc[name]["aliases"] == {"prod": 1}
    assert doc[name]["latest_version"]["run_id"] == run.id
    # the same registry over HTTP (HttpStore): the server's core applies the rules
    out = labledger("models", "alias", name, "staging", "1", "--store", server.url)
    assert out.returncode == 0, out.stderr
    out = labledger("models", "ls", "--store", server.url, "--json")
    assert out.returncode == 0, out.stderr
    remote = {m["name"]: m for m in json.loads(out.stdout)}
    assert remote[name]["aliases"] == {"prod": 1, "staging": 1}
    # each alias move is an edit event of the run, by its actor, and the chain verifies
    from labledger.store import open_store

    store = open_store(server.backend_uri)
    try:
        moves = [e for e in store.run_edits(run.id) if e["field"].startswith("registry.")]
        assert [(e["field"], e["author"]) for e in moves][-1] == (
            f"registry.{name}@staging",
            "anonymous",  # the server's caller (no tokens), not the run's author
        )
        assert store.audit_verify("native-registry")["ok"]
    finally:
        store.close()
    # the web UI's registry page lists it with a link to the run
    page = httpx.get(f"{server.url}/models")
    assert page.status_code == 200 and name in page.text and f"/#/run/{run.id}" in page.text
