"""MLflow's smaller contracts on ``labledger server``: ``/version``, unknown routes on every
MLflow prefix, validation wording, the Default experiment, a relative artifact location,
and the ``/ajax-api/2.0/mlflow`` routes MLflow's web UI calls."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .conftest import Server, mlflow_client_for

mlflow = pytest.importorskip("mlflow")

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]

from mlflow import MlflowClient  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("mlflow-details")
    srv = Server(f"sqlite:///{tmp / 'store.db'}", tmp, artifacts_uri=str(tmp / "blobs"))
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def client(server: Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[MlflowClient]:
    with mlflow_client_for(server, monkeypatch, registry=True) as c:
        yield c


def test_version_matches_the_pinned_client(server: Server) -> None:
    assert httpx.get(f"{server.url}/version").text == mlflow.__version__


@pytest.mark.parametrize(
    "path",
    [
        "/api/2.0/mlflow/nope",
        "/api/3.0/mlflow/nope/x",
        "/ajax-api/2.0/mlflow/nope",
        "/ajax-api/3.0/mlflow/traces/nope",
    ],
)
def test_unknown_routes_answer_mlflow_shape(server: Server, path: str) -> None:
    r = httpx.post(f"{server.url}{path}", json={})
    assert r.status_code == 404
    assert r.json()["error_code"] == "ENDPOINT_NOT_FOUND"


def test_validation_wording_and_default_experiment(server: Server, client: MlflowClient) -> None:
    r = httpx.post(f"{server.url}/api/2.0/mlflow/experiments/create", json={"name": 123})
    assert r.status_code == 400
    assert "Invalid value 123 for parameter 'name' supplied" in r.json()["message"]
    names = {e.experiment_id: e.name for e in client.search_experiments()}
    assert names.get("0") == "Default"


def test_relative_artifact_location_is_resolved(client: MlflowClient) -> None:
    # as MLflow's server stores it: an absolute path against the server's working dir
    eid = client.create_experiment("rel-loc", artifact_location="some/dir")
    loc = client.get_experiment(eid).artifact_location
    assert loc.startswith("/") and loc.endswith("/some/dir")


def _bad(server: Server, path: str, payload: dict[str, object]) -> str:
    r = httpx.post(f"{server.url}/api/2.0/mlflow/{path}", json=payload)
    assert r.status_code == 400, r.text
    assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    return str(r.json()["message"])


def test_validation_messages_use_mlflows_wording(server: Server, client: MlflowClient) -> None:
    """MLflow's REST tests match these words (test_*_validation in test_rest_tracking.py)."""
    bad = "for parameter '{}' supplied"
    msg = _bad(server, "experiments/create", {"name": "v", "artifact_location": 9.0})
    assert "Invalid value 9.0 " + bad.format("artifact_location") in msg
    msg = _bad(server, "experiments/create", {"name": "v", "tags": "5"})
    assert 'Invalid value "5" ' + bad.format("tags") in msg
    assert client.get_experiment_by_name("v") is None  # nothing was created
    run_id = client.create_run(client.create_experiment("validation")).info.run_id
    base = {"run_id": run_id, "value": 1, "timestamp": 5, "step": 1}
    msg = _bad(server, "runs/log-metric", {**base, "key": 31})
    assert "Invalid value 31 " + bad.format("key") in msg
    msg = _bad(server, "runs/log-metric", {**base, "key": "m", "step": "foo"})
    assert 'Invalid value "foo" ' + bad.format("step") in msg
    msg = _bad(server, "runs/set-tag", {"run_id": run_id, "key": "k", "value": 41})
    assert "Invalid value 41 " + bad.format("value") in msg
    for field in ("metrics", "params", "tags"):
        msg = _bad(server, "runs/log-batch", {"run_id": run_id, field: "foo"})
        assert 'Invalid value "foo" ' + bad.format(field) in msg
    msg = _bad(server, "runs/log-batch", {"run_id": run_id, "metrics": [{"key": "m", "value": 1}]})
    assert "Missing value for required parameter 'metrics[0].timestamp'" in msg
    assert client.get_run(run_id).data.metrics == {}  # a refused batch wrote nothing
    with pytest.raises(mlflow.exceptions.MlflowException, match="for parameter 'max_results'"):
        client.search_runs(["0"], max_results=123456789)
    r = httpx.get(
        f"{server.url}/api/2.0/mlflow/artifacts/list", params={"run_id": run_id, "path": "../x"}
    )
    assert r.status_code == 400 and r.json()["message"] == "Invalid path"


def test_search_experiments_default_order_is_newest_first(client: MlflowClient) -> None:
    made = [client.create_experiment(f"order-{k}") for k in range(3)]
    client.delete_experiment(made[1])  # a later update does not move it: creation time counts
    found = [
        e.experiment_id
        for e in client.search_experiments(view_type=mlflow.entities.ViewType.ALL)
        if e.experiment_id in made
    ]
    assert found == made[::-1]


def test_finished_run_is_sealed_with_invalid_state(client: MlflowClient) -> None:
    """A deliberate difference (docs/migrating.md): a finished run keeps its name."""
    run_id = client.create_run(client.create_experiment("sealed")).info.run_id
    client.set_terminated(run_id, "FINISHED")
    with pytest.raises(mlflow.exceptions.RestException) as err:
        client.update_run(run_id, name="renamed")
    assert err.value.error_code == "INVALID_STATE"
    assert "seals a finished run" in str(err.value)


def test_ajax_routes(server: Server, client: MlflowClient, tmp_path: Path) -> None:
    mlflow.set_experiment("ajax")
    ids = []
    for k in range(2):
        with mlflow.start_run() as run:
            for step in range(50):
                mlflow.log_metric("loss", 1.0 / (step + 1 + k), step=step)
            if k == 0:
                import numpy as np

                mlflow.log_input(
                    mlflow.data.from_numpy(np.arange(4.0), name="toy"), context="training"
                )
            ids.append(run.info.run_id)
    base = f"{server.url}/ajax-api/2.0/mlflow"
    # the mirror: an /api route answers under /ajax-api, page tokens included
    page = httpx.get(
        f"{base}/metrics/get-history",
        params={"run_id": ids[0], "metric_key": "loss", "max_results": 20},
    ).json()
    assert len(page["metrics"]) == 20 and page["next_page_token"]
    bulk = httpx.get(
        f"{base}/metrics/get-history-bulk", params={"run_id": ids, "metric_key": "loss"}
    ).json()["metrics"]
    assert len(bulk) == 100 and {m["run_id"] for m in bulk} == set(ids)
    window = httpx.get(
        f"{base}/metrics/get-history-bulk-interval",
        params={
            "run_ids": ids,
            "metric_key": "loss",
            "start_step": 10,
            "end_step": 30,
            "max_results": 5,
        },
    ).json()["metrics"]
    steps = sorted({m["step"] for m in window if m["run_id"] == ids[0]})
    assert steps[0] == 10 and steps[-1] == 30 and len(steps) == 5
    exp = client.get_experiment_by_name("ajax")
    assert exp is not None
    eid = exp.experiment_id
    live = client.create_run(eid).info.run_id
    r = httpx.post(
        f"{base}/upload-artifact",
        params={"run_uuid": live, "path": "notes/hello.txt"},
        content=b"hello",
    )
    assert r.status_code == 200, r.text
    client.set_terminated(live)
    assert [f.path for f in client.list_artifacts(live, "notes")] == ["notes/hello.txt"]
    ds = httpx.post(f"{base}/experiments/search-datasets", json={"experiment_ids": [eid]})
    assert ds.status_code == 200
    summaries = ds.json()["dataset_summaries"]
    assert [(d["name"], d.get("context")) for d in summaries] == [("toy", "training")]


def test_resume_running_run_and_refuse_ended_one(client: MlflowClient) -> None:
    from mlflow.exceptions import MlflowException

    mlflow.set_experiment("resume")
    exp = client.get_experiment_by_name("resume")
    assert exp is not None
    eid = exp.experiment_id
    live = client.create_run(eid).info.run_id
    with mlflow.start_run(run_id=live):
        mlflow.log_metric("x", 1.0, step=0)
    with (
        pytest.raises(MlflowException, match="cannot be resumed") as info,
        mlflow.start_run(run_id=live),
    ):
        pass
    assert info.value.error_code == "INVALID_STATE"
    got = client.get_run(live)
    assert got.info.status == "FINISHED" and got.data.metrics == {"x": 1.0}


def test_logged_models_behave_as_mlflows(client: MlflowClient, server: Server) -> None:
    import json

    import numpy as np
    from mlflow.exceptions import MlflowException

    from .conftest import labledger

    mlflow.set_experiment("logged-models")
    exp = client.get_experiment_by_name("logged-models")
    assert exp is not None
    eid = exp.experiment_id
    with mlflow.start_run() as run:
        model = mlflow.initialize_logged_model(name="clf", tags={"team": "vision"})
        toy = mlflow.data.from_numpy(np.arange(4.0), name="toy")
        mlflow.log_metric("acc", 0.9, model_id=model.model_id, dataset=toy)
        mlflow.log_metric("loss", 0.1)  # not linked to the model
        mlflow.set_tag("owner", "ada")
    got = client.get_logged_model(model.model_id)
    assert [(m.key, m.value) for m in got.metrics or []] == [("acc", 0.9)]
    assert got.tags["team"] == "vision"
    # MLflow-client tags are the run's own tags too
    shown = labledger("show", run.info.run_id, "--store", server.backend_uri, "--json")
    assert shown.returncode == 0, shown.stderr
    assert "owner=ada" in json.loads(shown.stdout)["tags"]
    by_data = client.search_logged_models(experiment_ids=[eid], datasets=[{"dataset_name": "toy"}])
    assert [m.model_id for m in by_data] == [model.model_id]
    assert client.search_logged_models(experiment_ids=[eid], datasets=[{"dataset_name": "x"}]) == []
    client.delete_logged_model_tag(model.model_id, "team")
    with pytest.raises(MlflowException, match="RESOURCE_DOES_NOT_EXIST"):
        client.delete_logged_model_tag(model.model_id, "team")
    found = client.search_logged_models(experiment_ids=[eid], filter_string="name = 'clf'")
    assert [m.model_id for m in found] == [model.model_id]
    assert client.search_logged_models(experiment_ids=[eid], filter_string="name = 'x'") == []
    client.delete_logged_model(model.model_id)
    with pytest.raises(MlflowException, match="RESOURCE_DOES_NOT_EXIST"):
        client.get_logged_model(model.model_id)
    with pytest.raises(MlflowException, match="RESOURCE_DOES_NOT_EXIST"):
        client.create_logged_model(eid, source_run_id="0" * 32)


def test_ui_routes_answer_in_mlflows_words(server: Server, client: MlflowClient) -> None:
    """The ``/ajax-api`` routes' refusals as MLflow's server words them, ``/get-artifact``
    (MLflow's web UI downloads a run's file there) and a logged model's files."""
    base = f"{server.url}/ajax-api/2.0/mlflow"

    def refused(r: httpx.Response) -> str:
        assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        return str(r.json()["message"])

    bulk = f"{base}/metrics/get-history-bulk"
    assert "must specify at least one run_id" in refused(
        httpx.get(bulk, params={"metric_key": "k"})
    )
    many = {"run_id": [f"id_{i}" for i in range(101)], "metric_key": "k"}
    assert "cannot specify more than 100" in refused(httpx.get(bulk, params=many))
    assert "must specify a metric_key" in refused(httpx.get(bulk, params={"run_id": ["x"]}))
    interval = f"{base}/metrics/get-history-bulk-interval"
    msg = refused(httpx.get(interval, params={**many, "run_ids": many["run_id"]}))
    assert "GetMetricHistoryBulkInterval request must specify at most 100 run_ids" in msg
    one = {"run_ids": ["x"], "metric_key": "k"}
    assert "between 1 and 2500" in refused(httpx.get(interval, params={**one, "max_results": 0}))
    msg = refused(httpx.get(interval, params={**one, "start_step": 1}))
    assert "both must be specified" in msg
    datasets = f"{base}/experiments/search-datasets"
    msg = refused(httpx.post(datasets, json={"experiment_ids": []}))
    assert "must specify at least one experiment_id" in msg
    msg = refused(httpx.post(datasets, json={"experiment_ids": [str(i) for i in range(21)]}))
    assert "cannot specify more than 20" in msg
    run_id = client.create_run(client.create_experiment("ui-routes")).info.run_id
    upload = f"{base}/upload-artifact"
    assert refused(httpx.post(upload)) == "Request must specify run_uuid."
    assert refused(httpx.post(upload, params={"run_uuid": run_id})) == "Request must specify path."
    bad = {"run_uuid": run_id, "path": "../t.txt"}
    assert refused(httpx.post(upload, params=bad)) == "Invalid path"
    good = {"run_uuid": run_id, "path": "t.txt"}
    assert refused(httpx.post(upload, params=good)) == "Request must specify data."
    assert httpx.post(upload, params=good, content=b"hello world").status_code == 200
    got = httpx.get(f"{server.url}/get-artifact", params=good)
    assert got.status_code == 200 and got.text == "hello world"
    assert refused(httpx.get(f"{server.url}/get-artifact", params=bad)) == "Invalid path"


def test_model_version_file_as_mlflows_ui_downloads_it(
    client: MlflowClient, server: Server
) -> None:
    mlflow.set_experiment("version-files")
    with mlflow.start_run() as run:
        mlflow.log_text("hello", "notes/readme.txt")
    client.create_registered_model("ui-files")
    client.create_model_version("ui-files", f"runs:/{run.info.run_id}/notes", run.info.run_id)
    for route in ("/model-versions/get-artifact", "//model-versions/get-artifact"):
        url = server.url + route
        got = httpx.get(url, params={"name": "ui-files", "version": 1, "path": "readme.txt"})
        assert got.status_code == 200 and got.text == "hello"
        bad = httpx.get(url, params={"name": "ui-files", "version": 1, "path": "../x"})
        assert bad.status_code == 400 and bad.json()["message"] == "Invalid path"


def test_logged_model_files_and_generated_names(client: MlflowClient, server: Server) -> None:
    from mlflow.pyfunc.model import PythonModel

    class Echo(PythonModel):
        def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
            return model_input

    eid = mlflow.set_experiment("model-files").experiment_id
    info = mlflow.pyfunc.log_model(name="model", python_model=Echo())
    base = f"{server.url}/ajax-api/2.0/mlflow/logged-models/{info.model_id}/artifacts"
    listed = httpx.get(f"{base}/directories").json()["files"]
    assert "MLmodel" in [f["path"] for f in listed]
    got = httpx.get(f"{base}/files", params={"artifact_file_path": "MLmodel"})
    assert got.status_code == 200 and info.model_id in got.text
    # created without a name, each logged model gets a name of its own, as on MLflow
    a, b = client.create_logged_model(eid), client.create_logged_model(eid)
    assert a.name and b.name and a.name != b.name
    found = client.search_logged_models(experiment_ids=[eid], filter_string=f"name = '{a.name}'")
    assert [m.model_id for m in found] == [a.model_id]


def test_capture_plugin_gives_mlflow_runs_a_patch_and_packages(
    server: Server, client: MlflowClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json
    import subprocess

    import tomllib
    from mlflow.tracking.context import registry as ctx_registry

    from labledger.integrations.mlflow_context import LabledgerRunContext

    from .conftest import labledger

    # the entry point MLflow loads the provider from (installed with labledger)
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    declared = pyproject["project"]["entry-points"]["mlflow.run_context_provider"]
    assert declared == {"labledger": "labledger.integrations.mlflow_context:LabledgerRunContext"}
    # registered here as MLflow's entry-point loader does (the venv's metadata may predate it)
    providers = ctx_registry._run_context_provider_registry._registry
    if not any(isinstance(p, LabledgerRunContext) for p in providers):
        monkeypatch.setattr(
            ctx_registry._run_context_provider_registry,
            "_registry",
            [*providers, LabledgerRunContext()],
        )
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.email=a@b", "-c", "user.name=a", "-C", str(repo)]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "train.py").write_text("print('v1')\n")
    subprocess.run([*git, "add", "train.py"], check=True)
    subprocess.run([*git, "commit", "-qm", "v1"], check=True)
    (repo / "train.py").write_text("print('v2: uncommitted')\n")
    monkeypatch.chdir(repo)
    mlflow.set_experiment("plugin")
    with mlflow.start_run() as run:
        mlflow.log_metric("acc", 0.5)
    shown = labledger("show", run.info.run_id, "--store", server.backend_uri, "--json")
    assert shown.returncode == 0, shown.stderr
    env = json.loads(shown.stdout)["env"]
    assert env["git"]["commit"] and env["git"]["dirty"] is True
    assert env["git"]["diff_sha256"] and env["packages"].get("mlflow") == mlflow.__version__
    assert not any(k.startswith("labledger.") for k in env["mlflow"]["tags"])
    patch = labledger("env", run.info.run_id, "--patch", "--store", server.backend_uri)
    assert patch.returncode == 0, patch.stderr
    assert "v2: uncommitted" in patch.stdout
