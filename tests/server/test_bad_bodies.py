"""Bad bodies get a well-formed 400, never a 500: the native API in its error shape
``{"code", "message", "details"}``, the MLflow API in MLflow's
``{"error_code": "INVALID_PARAMETER_VALUE", "message"}``.

One parse for both (``labledger._limits.parse_json_body``): strict UTF-8, nested at most
``MAX_BODY_DEPTH`` levels, every number a float64."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import pytest

from labledger._limits import MAX_BODY_DEPTH

from .conftest import Server

BIG = "1" + "0" * 400  # 10**400: a JSON integer no back end stores


JSON = {"Content-Type": "application/json"}


def _nested(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


def q(text: str) -> str:
    """A JSON string."""
    return json.dumps(text)


def raw(**fields: str) -> str:
    """A JSON object of fields given as JSON text (so that 10**400 stays a literal)."""
    return "{" + ",".join(f"{q(k)}:{v}" for k, v in fields.items()) + "}"


@pytest.fixture(scope="module")
def http(shared_server: Server) -> Any:
    with httpx.Client(base_url=shared_server.url, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def run_id(http: httpx.Client) -> str:
    rid = uuid.uuid4().hex
    body = {"id": rid, "project": "bodies", "name": "b", "created_at": time.time()}
    assert http.post("/api/v1/runs", json=body).status_code == 201
    return rid


def _native_400(resp: httpx.Response, *words: str) -> None:
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert set(body) == {"code", "message", "details"} and body["code"] == "bad_request"
    for w in words:
        assert w in body["message"], body


def _mlflow_400(resp: httpx.Response, *words: str) -> None:
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE" and set(body) == {
        "error_code",
        "message",
    }
    for w in words:
        assert w in body["message"], body


def test_native_bad_bodies_answer_400_in_the_native_shape(http: httpx.Client, run_id: str) -> None:
    new = uuid.uuid4().hex
    run = {"id": q(new), "project": q("bodies"), "name": q("x")}
    batches, edits = f"/api/v1/runs/{run_id}/batches", f"/api/v1/runs/{run_id}/edits"
    cases: list[tuple[str, str | bytes, str]] = [
        ("/api/v1/runs", raw(**run, config=raw(a=BIG)), "float64"),
        ("/api/v1/runs", raw(**run, seed=BIG), "float64"),
        ("/api/v1/runs", raw(**run, config=raw(a=_nested(1000))), "nested"),
        ("/api/v1/runs", raw(**run, config=raw(a=_nested(100_000))), "nested"),
        ("/api/v1/runs", b'{"id":"\xff\xfe","project":"bodies"}', "UTF-8"),
        ("/api/v1/runs", '{"id":', "not JSON"),
        ("/api/v1/runs", raw(**run) + "x", "not JSON"),
        ("/api/v1/runs", raw(**run, seed="9" * 5000), "not JSON"),  # past int()'s 4300 digits
        (batches, raw(id=q("b1"), run_update=raw(summary=raw(a=BIG))), "float64"),
        (batches, raw(id=q("b2"), metrics=_nested(1000)), "nested"),
        (edits, raw(summary=raw(a="-" + BIG)), "float64"),
        ("/api/v1/runs/search", raw(limit=BIG), "float64"),
    ]
    for path, body, words in cases:
        resp = http.post(path, content=body, headers=JSON)
        _native_400(resp, words)
    assert http.get(f"/api/v1/runs/{new}").status_code == 404  # nothing was stored
    # JSON of the wrong shape is a 422 (the request does not match the description)
    for body in ("[1, 2]", '"x"', "null", "1"):
        resp = http.post("/api/v1/runs", content=body, headers=JSON)
        assert resp.status_code == 422 and resp.json()["code"] == "invalid_request", resp.text
    got = http.get(f"/api/v1/runs/{run_id}").json()
    assert got["status"] == "running" and got["summary"] == {}


def test_a_config_at_its_depth_limit_is_taken_and_one_past_it_is_a_422(
    http: httpx.Client,
) -> None:
    from labledger._limits import MAX_JSON_DEPTH

    def post(depth: int) -> httpx.Response:
        run = {"id": q(uuid.uuid4().hex), "project": q("bodies"), "name": q("deep")}
        body = raw(**run, config=raw(a=_nested(depth - 1)))  # {"a": [[...]]}: depth levels
        return http.post("/api/v1/runs", content=body, headers=JSON)

    assert post(MAX_JSON_DEPTH).status_code == 201
    resp = post(MAX_JSON_DEPTH + 1)  # the body parses; the field limit answers
    assert resp.status_code == 422 and "config is nested" in resp.text, resp.text
    assert post(MAX_BODY_DEPTH).status_code == 400  # past the body's own limit


MLFLOW = "/api/2.0/mlflow"


def test_mlflow_bad_bodies_answer_400_in_mlflow_shape(http: httpx.Client, run_id: str) -> None:
    exp = http.post(f"{MLFLOW}/experiments/create", json={"name": "bodies-ml"}).json()
    ml_run = http.post(f"{MLFLOW}/runs/create", json={"experiment_id": exp["experiment_id"]})
    rid = ml_run.json()["run"]["info"]["run_id"]
    r, e = q(rid), q(exp["experiment_id"])
    cases: list[tuple[str, str | bytes, str]] = [
        ("runs/log-metric", raw(run_id=r, key=q("m"), value=BIG, timestamp="1"), "float64"),
        ("runs/log-batch", raw(run_id=r, metrics=f"[{raw(key=q('m'), value=BIG)}]"), "float64"),
        ("runs/log-batch", raw(run_id=r, metrics=_nested(1000)), "nested"),
        ("runs/create", raw(experiment_id=e, tags=_nested(1000)), "nested"),
        ("runs/log-inputs", raw(run_id=r, datasets=_nested(100_000)), "nested"),
        ("runs/log-metric", b'{"run_id":"\xff"}', "UTF-8"),
        ("runs/log-metric", "{", "not JSON"),
        ("runs/log-metric", "[1]", "JSON object"),
        ("runs/log-batch", raw(run_id=r, metrics=raw(a="1")), "for parameter 'metrics'"),
        ("runs/log-batch", raw(run_id=r, metrics="7"), "for parameter 'metrics'"),
        ("runs/log-batch", raw(run_id=r, params="1.5"), "for parameter 'params'"),
        ("runs/log-inputs", raw(run_id=r, datasets="[[1]]"), "array of objects"),
        ("runs/create", raw(experiment_id=e, user_id='["x"]'), "for parameter 'user_id'"),
        ("runs/search", raw(experiment_ids="7"), "for parameter 'experiment_ids'"),
        ("runs/search", raw(experiment_ids='["0"]', max_results="1e400"), "max_results"),
        ("experiments/search", raw(max_results=q("x")), "max_results"),
        ("experiments/search", raw(order_by="true"), "for parameter 'order_by'"),
        ("logged-models/search", raw(max_results="[1]"), "max_results"),
        ("runs/set-tag", raw(run_id=r, key=q("k"), value=q("x" * 8001)), "8000"),
    ]
    for path, body, words in cases:
        for prefix in (MLFLOW, "/ajax-api/2.0/mlflow", "/api/3.0/mlflow"):
            resp = http.post(f"{MLFLOW}/{path}", content=body)
            _mlflow_400(resp, *words)
            if prefix.startswith("/ajax-api/2.0"):  # MLflow UI's mirror: the same answer
                _mlflow_400(http.post(f"{prefix}/{path}", content=body), *words)
            elif prefix != MLFLOW:  # not served there: a missing endpoint, in MLflow's shape
                other = http.post(f"{prefix}/{path}", content=body)
                assert other.status_code == 404, other.text
                assert other.json()["error_code"] == "ENDPOINT_NOT_FOUND"
    got = http.get(f"{MLFLOW}/runs/get", params={"run_id": rid}).json()["run"]
    assert got["data"].get("metrics", []) == []


def test_mlflow_fields_of_every_wrong_type_never_answer_500(
    http: httpx.Client,
) -> None:
    exp = http.post(f"{MLFLOW}/experiments/create", json={"name": "bodies-types"}).json()
    eid = exp["experiment_id"]
    rid = http.post(f"{MLFLOW}/runs/create", json={"experiment_id": eid}).json()["run"]["info"][
        "run_id"
    ]
    routes = {
        "experiments/search": ["max_results", "order_by", "filter", "page_token", "view_type"],
        "experiments/update": ["experiment_id", "new_name"],
        "experiments/set-experiment-tag": ["key", "value"],
        "runs/create": ["tags", "user_id", "run_name", "start_time"],
        "runs/update": ["status", "end_time", "run_name"],
        "runs/log-metric": ["value", "timestamp", "step", "key"],
        "runs/log-parameter": ["key", "value"],
        "runs/set-tag": ["key", "value"],
        "runs/log-batch": ["metrics", "params", "tags"],
        "runs/log-inputs": ["datasets"],
        "runs/outputs": ["models"],
        "runs/search": ["experiment_ids", "max_results", "order_by", "filter", "page_token"],
        "logged-models": ["params", "tags", "name", "model_type"],
        "logged-models/search": ["experiment_ids", "max_results", "page_token"],
    }
    values = [BIG, "1e400", "[]", "{}", '"x"', "1.5", "true", "null", "-1", '"\\u0000"', "[[1]]",
              "[null]", '[{"key":1}]', '[{"dataset":[]}]', '{"a":{"b":1}}']  # fmt: skip
    base = {"run_id": f'"{rid}"', "experiment_id": f'"{eid}"', "key": '"k"', "value": "1"}
    for route, fields in routes.items():
        for field in fields:
            for value in values:
                body = {**base, field: value}
                raw = "{" + ",".join(f'"{k}":{v}' for k, v in body.items()) + "}"
                resp = http.post(f"{MLFLOW}/{route}", content=raw)
                assert resp.status_code < 500, (route, field, value, resp.text)
                if resp.status_code >= 400:
                    assert set(resp.json()) == {"error_code", "message"}, resp.text


def test_a_405_lists_every_method_of_the_path(http: httpx.Client) -> None:
    resp = http.request("PATCH", "/api/v1/projects/p/policy")
    assert resp.status_code == 405
    assert set(resp.headers["allow"].split(", ")) >= {"GET", "PUT"}
    assert resp.json()["code"] == "method_not_allowed"


def test_a_batch_of_more_metric_keys_than_a_run_may_have_is_a_422(
    http: httpx.Client, run_id: str
) -> None:
    from labledger._limits import MAX_METRIC_KEYS

    empty = {"steps": "", "values": "", "timestamps": ""}
    body = {"id": "toomany", "metrics": {f"k{i}": empty for i in range(MAX_METRIC_KEYS + 1)}}
    resp = http.post(f"/api/v1/runs/{run_id}/batches", json=body)
    assert resp.status_code == 422, resp.text
    assert resp.json()["details"]["errors"][0]["loc"] == ["body", "metrics"]
    assert http.get(f"/api/v1/runs/{run_id}/metrics").json()["keys"] == []
