"""The unchanged ``mlflow`` client against a real ``labledger server`` (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import Server, backend_server, labledger, mlflow_client_for

mlflow = pytest.importorskip("mlflow")

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import Metric, Param, RunTag  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    with backend_server(request, tmp_path_factory, "mlflow-srv") as srv:
        yield srv


@pytest.fixture
def client(server: Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[MlflowClient]:
    with mlflow_client_for(server, monkeypatch) as c:
        yield c


def ledger_run(server: Server, run_id: str) -> dict[str, Any]:
    out = labledger("show", run_id, "--store", server.backend_uri, "--json")
    assert out.returncode == 0, out.stderr
    doc: dict[str, Any] = json.loads(out.stdout)
    return doc


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_experiment_lifecycle(client: MlflowClient) -> None:
    name = unique("exp")
    eid = client.create_experiment(name, tags={"team": "vision"})
    exp = client.get_experiment(eid)
    assert exp.name == name and exp.lifecycle_stage == "active" and exp.tags == {"team": "vision"}
    assert client.get_experiment_by_name(name).experiment_id == eid
    assert client.get_experiment_by_name(unique("missing")) is None
    with pytest.raises(MlflowException) as err:
        client.create_experiment(name)
    assert err.value.error_code == "RESOURCE_ALREADY_EXISTS"
    with pytest.raises(MlflowException) as err:
        client.get_experiment("123456789")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    found = client.search_experiments(filter_string=f"name LIKE '{name[:8]}%'")
    assert eid in [e.experiment_id for e in found]
    renamed = name + "-renamed"
    client.rename_experiment(eid, renamed)
    assert client.get_experiment(eid).name == renamed
    client.delete_experiment(eid)
    assert client.get_experiment(eid).lifecycle_stage == "deleted"
    assert eid not in [e.experiment_id for e in client.search_experiments()]
    assert eid in [
        e.experiment_id for e in client.search_experiments(view_type=mlflow.entities.ViewType.ALL)
    ]
    client.restore_experiment(eid)
    assert client.get_experiment(eid).lifecycle_stage == "active"
    assert client.get_experiment("0").name == "Default"


def test_run_lifecycle_params_tags_and_times(client: MlflowClient, server: Server) -> None:
    eid = client.create_experiment(unique("runs"))
    start = int(time.time() * 1000) - 60_000
    run = client.create_run(
        eid,
        start_time=start,
        run_name="first",
        tags={"mlflow.user": "ada", "mlflow.source.git.commit": "a41e9c0", "stage": "dev"},
    )
    rid = run.info.run_id
    client.log_param(rid, "lr", "0.001")
    client.log_param(rid, "layers", "3")
    client.log_param(rid, "optimizer", "adam")
    client.set_tag(rid, "note", "x")
    client.delete_tag(rid, "note")
    with pytest.raises(MlflowException) as err:
        client.log_param(rid, "lr", "0.1")  # params are immutable, as in MLflow
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    client.set_terminated(rid, "FAILED", end_time=start + 5000)
    got = client.get_run(rid)
    assert got.info.run_name == "first" and got.info.status == "FAILED"
    assert got.info.start_time == start and got.info.end_time == start + 5000
    # the author is the caller's identity (anonymous on an open server), never a tag:
    # the client's mlflow.user stays what it is, a claim
    assert got.info.user_id == "anonymous" and got.data.tags["mlflow.user"] == "ada"
    assert got.data.params == {"lr": "0.001", "layers": "3", "optimizer": "adam"}
    assert got.data.tags["stage"] == "dev" and "note" not in got.data.tags
    # the same run, as labledger sees it: typed config, author, git, times
    doc = ledger_run(server, rid)
    assert doc["config"] == {"lr": 0.001, "layers": 3, "optimizer": "adam"}
    assert doc["author"] == "anonymous" and doc["status"] == "failed"
    assert doc["env"]["mlflow"]["tags"]["mlflow.user"] == "ada"
    assert doc["env"]["git"]["commit"] == "a41e9c0"
    assert doc["created_at"] == pytest.approx(start / 1000) and doc["runtime_s"] == pytest.approx(5)
    client.delete_run(rid)
    assert client.get_run(rid).info.lifecycle_stage == "deleted"
    assert rid not in [r.info.run_id for r in client.search_runs([eid])]
    client.restore_run(rid)
    assert rid in [r.info.run_id for r in client.search_runs([eid])]
    with pytest.raises(MlflowException) as err:
        client.get_run(uuid.uuid4().hex)
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_metrics_nan_inf_batch_and_history(client: MlflowClient) -> None:
    eid = client.create_experiment(unique("metrics"))
    rid = client.create_run(eid).info.run_id
    t0 = int(time.time() * 1000)
    values = [0.5, math.nan, math.inf, -math.inf, 1e-300, -2.0]
    client.log_batch(
        rid,
        metrics=[Metric("loss", v, t0 + i, i) for i, v in enumerate(values)],
        params=[Param("batch", "64")],
        tags=[RunTag("kind", "batch")],
    )
    client.log_metric(rid, "acc", 0.9, timestamp=t0, step=7)
    hist = client.get_metric_history(rid, "loss")
    assert [m.step for m in hist] == list(range(len(values)))
    assert [m.timestamp for m in hist] == [t0 + i for i in range(len(values))]
    for m, v in zip(hist, values, strict=True):
        assert (math.isnan(m.value) and math.isnan(v)) or m.value == v
    got = client.get_run(rid).data
    assert got.metrics == {"loss": -2.0, "acc": 0.9} and got.params == {"batch": "64"}
    assert client.get_metric_history(rid, "never-logged") == []
    # MLflow's own per-request limit, answered in MLflow's error shape
    too_many = [{"key": "m", "value": 1.0, "timestamp": t0, "step": i} for i in range(1001)]
    r = httpx.post(
        f"{client.tracking_uri}/api/2.0/mlflow/runs/log-batch",
        json={"run_id": rid, "metrics": too_many},
    )
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    # many points through the unchanged client (it splits them into requests of 1000)
    many = [Metric("curve", float(i), t0 + i, i) for i in range(3000)]
    client.log_batch(rid, metrics=many)
    assert len(client.get_metric_history(rid, "curve")) == 3000


def test_search_runs_filters_and_order_with_numeric_params(client: MlflowClient) -> None:
    eid = client.create_experiment(unique("search"))
    for lr, acc, opt in [("0.1", 0.7, "sgd"), ("0.01", 0.9, "adam"), ("0.001", 0.8, "adam")]:
        rid = client.create_run(eid, run_name=f"lr{lr}").info.run_id
        client.log_batch(
            rid,
            metrics=[Metric("acc", acc, 0, 0)],
            params=[Param("lr", lr), Param("opt", opt)],
        )
        if lr == "0.1":
            client.set_terminated(rid, "FINISHED")

    def names(**kw: Any) -> list[str]:
        return [r.info.run_name for r in client.search_runs([eid], **kw)]

    # numeric semantics: as strings, "0.1" < "0.02" would hold
    assert sorted(names(filter_string="params.lr < 0.02")) == ["lr0.001", "lr0.01"]
    assert names(filter_string="params.lr = '0.01'") == ["lr0.01"]
    assert names(
        filter_string="metrics.acc >= 0.8 and params.opt = 'adam'", order_by=["metrics.acc DESC"]
    ) == ["lr0.01", "lr0.001"]
    assert names(order_by=["params.lr ASC"]) == ["lr0.001", "lr0.01", "lr0.1"]
    assert names(filter_string="attributes.status = 'FINISHED'") == ["lr0.1"]
    assert names(filter_string="attributes.run_name LIKE 'lr0.0%'", order_by=["metrics.acc"]) == [
        "lr0.001",
        "lr0.01",
    ]
    assert sorted(names(filter_string="params.opt IN ('sgd')")) == ["lr0.1"]
    assert names(filter_string="tags.`mlflow.runName` = 'lr0.1'") == ["lr0.1"]
    page = client.search_runs([eid], max_results=2, order_by=["metrics.acc DESC"])
    assert len(page) == 2 and page.token
    rest = client.search_runs(
        [eid], max_results=2, order_by=["metrics.acc DESC"], page_token=page.token
    )
    assert [r.info.run_name for r in rest] == ["lr0.1"]
    with pytest.raises(MlflowException) as err:
        client.search_runs([eid], filter_string="bogus.lr = 1")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"


def test_artifacts_upload_list_download(
    client: MlflowClient, tmp_path: Path, server: Server
) -> None:
    eid = client.create_experiment(unique("arts"))
    rid = client.create_run(eid).info.run_id
    src = tmp_path / "src"
    (src / "nested").mkdir(parents=True)
    (src / "weights.bin").write_bytes(bytes(range(256)) * 100)
    (src / "nested" / "notes.txt").write_text("hello")
    client.log_artifact(rid, str(src / "weights.bin"))
    client.log_artifacts(rid, str(src), artifact_path="bundle")
    top = {f.path: f for f in client.list_artifacts(rid)}
    assert set(top) == {"weights.bin", "bundle"} and top["weights.bin"].file_size == 25600
    assert top["bundle"].is_dir
    assert {f.path for f in client.list_artifacts(rid, "bundle")} == {
        "bundle/weights.bin",
        "bundle/nested",
    }
    out = Path(client.download_artifacts(rid, "bundle", str(tmp_path / "dl")))
    assert (out / "weights.bin").read_bytes() == (src / "weights.bin").read_bytes()
    assert (out / "nested" / "notes.txt").read_text() == "hello"
    # content-addressed in labledger's artifact store, visible to `labledger show`
    arts = {a["name"]: a for a in ledger_run(server, rid)["artifacts"]}
    assert {"weights.bin", "bundle"} <= set(arts)
    assert arts["weights.bin"]["files"][0]["sha256"] == arts["bundle"]["files"][-1]["sha256"]


def test_sklearn_autolog_run(client: MlflowClient, server: Server) -> None:
    sklearn = pytest.importorskip("sklearn")
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    assert sklearn
    mlflow.set_experiment(unique("autolog"))
    mlflow.sklearn.autolog()
    try:
        X, y = load_iris(return_X_y=True)
        with mlflow.start_run() as run:
            LogisticRegression(max_iter=300, C=0.5).fit(X, y)
    finally:
        mlflow.sklearn.autolog(disable=True)
    got = client.get_run(run.info.run_id)
    assert got.info.status == "FINISHED"
    assert got.data.params["C"] == "0.5" and got.data.metrics["training_accuracy_score"] > 0.9
    model = mlflow.last_logged_model()
    assert model is not None
    loaded = mlflow.sklearn.load_model(f"models:/{model.model_id}")
    assert list(loaded.predict(X[:2])) == [0, 0]
    doc = ledger_run(server, run.info.run_id)
    assert doc["config"]["C"] == 0.5 and doc["config"]["max_iter"] == 300
    assert doc["summary"]["training_accuracy_score"] > 0.9
    assert "model" in {a["name"] for a in doc["artifacts"]}
    out = labledger("ls", "--store", server.backend_uri, "--filter", "config.C < 1", "--json")
    assert run.info.run_id in out.stdout


def test_labledger_run_reads_back_through_mlflow(client: MlflowClient, server: Server) -> None:
    import labledger

    project = unique("native")
    with labledger.init(
        project, config={"lr": 0.01, "model": {"hidden": 64}}, store=server.url
    ) as run:
        for i in range(5):
            run.log({"loss": 1.0 / (i + 1)})
    exp = client.get_experiment_by_name(project)
    assert exp is not None
    got = client.get_run(run.id)
    assert got.info.experiment_id == exp.experiment_id and got.info.status == "FINISHED"
    assert got.data.params == {"lr": "0.01", "model.hidden": "64"}
    assert got.data.metrics["loss"] == pytest.approx(0.2)
    assert [m.step for m in client.get_metric_history(run.id, "loss")] == [0, 1, 2, 3, 4]


def test_unknown_endpoint_answers_in_mlflow_shape(server: Server) -> None:
    r = httpx.get(f"{server.url}/api/2.0/mlflow/no-such-thing/get?name=x")
    assert r.status_code == 404 and r.json()["error_code"] == "ENDPOINT_NOT_FOUND"


def test_tokens_are_labledger_tokens_with_their_roles(
    tmp_path: Path, make_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    srv = make_server(f"sqlite:///{tmp_path / 'auth.db'}", artifacts_uri=str(tmp_path / "b"))

    def token(user: str, project: str, role: str) -> str:
        out = labledger(
            "server", "token", "create", "--backend-uri", srv.backend_uri,
            "--user", user, "--project", project, "--role", role, "--json",
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        return str(json.loads(out.stdout)["token"])

    alice, bob = token("alice", "alpha", "write"), token("bob", "alpha", "read")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    anon = MlflowClient(srv.url)
    with pytest.raises(MlflowException) as err:
        anon.get_experiment_by_name("alpha")
    assert err.value.error_code == "UNAUTHENTICATED"
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", alice)
    c = MlflowClient(srv.url)
    eid = c.create_experiment("alpha")
    run = c.create_run(eid, tags={"mlflow.user": "mallory"})  # the token decides the author
    c.log_metric(run.info.run_id, "loss", 0.5)
    assert c.get_run(run.info.run_id).info.user_id == "alice"
    with pytest.raises(MlflowException) as err:
        c.create_experiment("beta")
    assert err.value.error_code == "PERMISSION_DENIED"
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", bob)
    reader = MlflowClient(srv.url)
    assert reader.get_run(run.info.run_id).data.metrics == {"loss": 0.5}
    with pytest.raises(MlflowException) as err:
        reader.log_metric(run.info.run_id, "loss", 0.1)
    assert err.value.error_code == "PERMISSION_DENIED"
    r = httpx.get(f"{srv.url}/api/2.0/mlflow/runs/get", params={"run_id": run.info.run_id})
    assert r.status_code == 401 and r.json()["error_code"] == "UNAUTHENTICATED"
    # every MLflow route authenticates before it looks anything up
    from labledger.server import create_app

    app = create_app("sqlite:////nonexistent/never-opened.db")
    flat = [c for r in app.routes for c in getattr(r, "effective_candidates", lambda r=r: [r])()]
    routes = sorted(
        {
            (m, str(r.path))
            for r in flat
            for m in getattr(r, "methods", None) or ()
            if str(getattr(r, "path", "")).startswith("/api/2.0/") and m != "HEAD"
        }
    )
    assert len(routes) >= 30
    with httpx.Client(base_url=srv.url) as anon_http:
        for method, path in routes:
            url = re.sub(r"\{[^}]+\}", "x", path)
            r = anon_http.request(method, url, json={} if method != "GET" else None)
            assert r.status_code == 401, (method, path, r.status_code, r.text[:200])
            assert r.json()["error_code"] == "UNAUTHENTICATED"


def test_import_from_an_mlflow_server_url(
    client: MlflowClient, server: Server, tmp_path: Path
) -> None:
    """The importer reads any tracking URI; here labledger's own MLflow API is the source."""
    from labledger import Ledger
    from labledger.importers import import_mlflow

    eid = client.create_experiment(unique("over-http"))
    rid = client.create_run(eid, run_name="remote", tags={"mlflow.user": "ada"}).info.run_id
    client.log_batch(
        rid, metrics=[Metric("loss", 1.0 / (i + 1), 1000 + i, i) for i in range(20)],
        params=[Param("lr", "0.02")],
    )  # fmt: skip
    (tmp_path / "f.txt").write_text("over http")
    client.log_artifact(rid, str(tmp_path / "f.txt"))
    client.set_terminated(rid)
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    summary = import_mlflow(server.url, target, artifacts_uri=str(tmp_path / "blobs"))
    assert summary.errors == [] and summary.runs >= 1
    with Ledger(target) as ledger:
        run = ledger.get(rid)
        # the source's user_id (the identity that wrote it there), not its mlflow.user claim
        assert run["author"] == "anonymous" and run["config"] == {"lr": 0.02}
        assert [p[0] for p in ledger.history(rid, "loss").to_list()] == list(range(20))
        assert [a["name"] for a in run["artifacts"]] == ["f.txt"]
    again = import_mlflow(server.url, target, artifacts_uri=str(tmp_path / "blobs"))
    assert again.runs == 0 and again.skipped == summary.runs


def test_log_image_table_figure_dict_become_rich_results(
    client: MlflowClient, server: Server, tmp_path: Path
) -> None:
    np = pytest.importorskip("numpy")
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    eid = client.create_experiment(unique("media"))
    rid = client.create_run(eid).info.run_id
    img = np.zeros((6, 4, 3), dtype=np.uint8)
    img[0, 0] = (255, 0, 0)
    client.log_image(rid, img, key="val/samples", step=2)
    client.log_image(rid, img, key="val/samples", step=3)
    client.log_image(rid, img, artifact_file="single.png")
    client.log_table(rid, {"id": [1, 2], "label": ["cat", "dog"]}, artifact_file="preds.json")
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [0, 1])
    client.log_figure(rid, fig, "plots/line.png")
    plt.close(fig)
    client.log_dict(rid, {"lr": 0.1}, "cfg.yaml")
    client.set_terminated(rid)
    keys = {m["key"]: (m["kind"], m["count"]) for m in ledger_run(server, rid)["media"]}
    assert keys == {
        "val/samples": ("image", 2),
        "single": ("image", 1),
        "preds": ("table", 1),
        "plots/line": ("image", 1),
        "cfg": ("text", 1),
    }
    out = labledger(
        "media",
        "get",
        rid,
        "val/samples",
        "--step",
        "3",
        "-o",
        str(tmp_path / "o"),
        "--store",
        server.backend_uri,
    )
    assert out.returncode == 0, out.stderr
    from PIL import Image

    with Image.open(tmp_path / "o" / "val" / "samples" / "step-3.png") as im:
        assert im.size == (4, 6) and im.getpixel((0, 0))[:3] == (255, 0, 0)
    table = labledger(
        "media", "get", rid, "preds", "-o", str(tmp_path / "t"), "--store", server.backend_uri
    )
    assert table.returncode == 0, table.stderr
    doc = json.loads((tmp_path / "t" / "preds" / "step-0.json").read_text())
    assert doc == {"columns": ["id", "label"], "rows": [[1, "cat"], [2, "dog"]]}
    # the files stay MLflow artifacts: listed and downloaded as before
    assert {"images", "single.png", "preds.json", "plots", "cfg.yaml"} <= {
        f.path for f in client.list_artifacts(rid)
    }
    assert client.load_table(eid, artifact_file="preds.json", run_ids=[rid]).shape == (2, 2)
