"""Bad values are refused at the call site; one refused item never takes other data with it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import numpy as np
import pytest

import labledger
from labledger import LabledgerError, LimitExceededError, RunFinishedError
from labledger._limits import MAX_JSON_BYTES, MAX_JSON_DEPTH, MAX_NAME_LENGTH, MAX_TAG_LENGTH

from .conftest import Script, _env


def _init(uri: str, **kw: Any) -> labledger.Run:
    return labledger.init("limits", store=uri, capture=False, **kw)


def test_huge_int_metric_is_refused_at_the_call_site(store_uri: str, ledger_of: Any) -> None:
    run = _init(store_uri)
    with pytest.raises(LimitExceededError, match="float64"):
        run.log({"big": 10**400})
    with pytest.raises(LimitExceededError, match="float64"):
        run.log({"ok": 1.0, "big": -(10**400)})
    run.log({"ok": 2.0, "n": 3})
    run.finish()
    got = ledger_of(store_uri).get(run.id)
    assert got["status"] == "finished"
    assert got["summary"] == {"ok": 2.0, "n": 3.0}


def test_step_counter_past_int64_is_refused(store_uri: str, ledger_of: Any) -> None:
    run = _init(store_uri)
    run.log({"x": 1.0}, step=2**63 - 1)
    with pytest.raises(LimitExceededError, match="step"):
        run.log({"x": 2.0})
    with pytest.raises(LimitExceededError, match="step"):
        run.log({"x": 2.0}, step=2**63)
    run.finish()
    got = ledger_of(store_uri).get(run.id)
    assert got["status"] == "finished"
    assert got["metrics"]["x"]["last_step"] == 2**63 - 1


def test_numpy_longdouble_is_accepted_when_float64_holds_it(store_uri: str, ledger_of: Any) -> None:
    run = _init(store_uri)
    run.log({"ld": np.longdouble(0.25), "f16": np.float16(0.5)})
    run.config["ld"] = np.longdouble(1.5)
    if np.finfo(np.longdouble).max > np.finfo(np.float64).max:
        with pytest.raises(LimitExceededError):
            run.log({"ld": np.longdouble("1e400")})
    run.finish()
    got = ledger_of(store_uri).get(run.id)
    assert got["summary"]["ld"] == 0.25
    assert got["config"]["ld"] == 1.5


def test_deeply_nested_config_raises_a_labledger_error(store_uri: str) -> None:
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(5_000):
        node["a"] = {}
        node = node["a"]
    with pytest.raises(LabledgerError, match="nested"):
        _init(store_uri, config={"deep": deep})
    run = _init(store_uri)
    with pytest.raises(LimitExceededError, match="nested"):
        run.config.update({"deep": deep})
    with pytest.raises(LimitExceededError, match="nested"):
        run.summary["deep"] = deep
    ok: dict[str, Any] = {}
    node = ok
    for _ in range(MAX_JSON_DEPTH - 2):
        node["a"] = {}
        node = node["a"]
    run.config["ok"] = ok
    run.finish()


def test_names_tags_and_sizes_over_the_limits_are_refused(store_uri: str) -> None:
    with pytest.raises(LimitExceededError, match="run name"):
        _init(store_uri, name="x" * (MAX_NAME_LENGTH + 1))
    with pytest.raises(LimitExceededError, match="tag"):
        _init(store_uri, tags=["t" * (MAX_TAG_LENGTH + 1)])
    big = "x" * (MAX_JSON_BYTES + 1)
    with pytest.raises(LimitExceededError, match="config"):
        _init(store_uri, config={"blob": big})
    run = _init(store_uri, name="n" * MAX_NAME_LENGTH)
    with pytest.raises(LimitExceededError, match="config"):
        run.config["blob"] = big
    assert "blob" not in run.config  # refused changes leave the config as it was
    with pytest.raises(LimitExceededError, match="summary"):
        run.summary["blob"] = big
    run.finish()


def test_config_and_summary_after_finish_raise(store_uri: str, ledger_of: Any) -> None:
    run = _init(store_uri, config={"a": 1})
    run.finish()
    with pytest.raises(RunFinishedError):
        run.config.update(a=2)
    with pytest.raises(RunFinishedError):
        run.config["b"] = 1
    with pytest.raises(RunFinishedError):
        run.summary["acc"] = 0.9
    assert ledger_of(store_uri).get(run.id)["config"] == {"a": 1}


def test_same_limits_on_postgresql(pg_uri: str, ledger_of: Any) -> None:
    name = "n" * MAX_NAME_LENGTH  # the longest accepted name is storable on PostgreSQL
    run = labledger.init("p" * MAX_NAME_LENGTH, name=name, store=pg_uri, capture=False)
    run.log({"k" * 250: 1.0})
    run.finish()
    got = ledger_of(pg_uri).get(run.id)
    assert got["name"] == name and got["status"] == "finished"
    with pytest.raises(LimitExceededError):
        labledger.init("p", name=name + "x", store=pg_uri, capture=False)


CHILD_BAD_ITEM = """
import sys, time, labledger
run = labledger.init("bad", store=sys.argv[1], capture=False)
for i in range(100):
    run.log({"good": float(i), "other": 2.0 * i})
# a value that slipped past the call-site checks (as from an older client or a bug):
run._buf.append(("evil", 100, 10**400, time.time()))
run._writer.update_run(name="x" * {name_len})
for i in range(100, 200):
    run.log({"good": float(i)})
t = time.monotonic()
run.finish()
print("finished in", round(time.monotonic() - t, 1), flush=True)
"""


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_one_refused_item_keeps_every_other_point_and_the_final_status(
    script: Script, store_uri: str, request: Any, ledger_of: Any, backend: str
) -> None:
    uri = store_uri if backend == "sqlite" else request.getfixturevalue("pg_uri")
    # PostgreSQL refuses a 300-character name (varchar(250)); SQLite takes it
    code = CHILD_BAD_ITEM.replace("{name_len}", "300" if backend == "postgresql" else "10")
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), uri],
        cwd=script.cwd,
        env=_env(None),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "refused" in proc.stderr and "evil" in proc.stderr
    got = ledger_of(uri).get(_only_run(ledger_of, uri))
    assert got["status"] == "finished"
    assert got["metrics"]["good"]["count"] == 200
    assert got["metrics"]["other"]["count"] == 100
    assert "evil" not in got["metrics"]


def _only_run(ledger_of: Any, uri: str) -> str:
    runs = ledger_of(uri).runs()
    assert len(runs) == 1
    return str(runs[0]["id"])


def test_a_log_call_with_too_many_keys_is_refused_and_earlier_points_are_kept(
    store_uri: str, ledger_of: Any
) -> None:
    from labledger._limits import MAX_KEYS_PER_CALL

    run = _init(store_uri)
    run.log({"loss": 1.0})
    run.log({"loss": 0.5, "acc": 0.1})
    with pytest.raises(LimitExceededError, match="MAX_KEYS_PER_CALL") as err:
        run.log({f"k{i}": 1.0 for i in range(1_000_000)})
    assert "1,000,000 keys" in str(err.value)
    with pytest.raises(LimitExceededError, match="MAX_KEYS_PER_CALL"):
        run.log({f"k{i}": float(i) for i in range(MAX_KEYS_PER_CALL + 1)})
    run.log({"loss": 0.25})
    run.finish()
    assert run.status == "finished"
    led = ledger_of(store_uri)
    assert led.get(run.id)["status"] == "finished"
    assert sorted(led.metric_keys(run.id)) == ["acc", "loss"]
    assert led.history(run.id, "loss").values.tolist() == [1.0, 0.5, 0.25]


def test_a_run_takes_at_most_max_metric_keys_distinct_keys(store_uri: str, ledger_of: Any) -> None:
    from labledger._limits import MAX_KEYS_PER_CALL, MAX_METRIC_KEYS

    run = _init(store_uri)
    per_call = min(MAX_KEYS_PER_CALL, MAX_METRIC_KEYS // 2)
    for start in range(0, MAX_METRIC_KEYS, per_call):
        run.log({f"k{i}": 1.0 for i in range(start, start + per_call)})
    assert len(run._known) >= MAX_METRIC_KEYS
    with pytest.raises(LimitExceededError, match="MAX_METRIC_KEYS"):
        run.log({"one_more": 1.0})  # the one-key path
    with pytest.raises(LimitExceededError, match="MAX_METRIC_KEYS"):
        run.log({"k0": 2.0, "one_more": 1.0, "another": 2})  # refused whole: k0 not logged
    run.log({"k0": 3.0, "k1": 3.0})  # known keys still log
    run.finish()
    led = ledger_of(store_uri)
    assert led.get(run.id)["status"] == "finished"
    assert len(led.metric_keys(run.id)) == MAX_METRIC_KEYS
    assert led.history(run.id, "k0").values.tolist() == [1.0, 3.0]


def test_a_config_or_summary_integer_beyond_float64_is_refused(
    store_uri: str, ledger_of: Any
) -> None:
    with pytest.raises(LimitExceededError, match="float64"):
        _init(store_uri, config={"big": 10**400})
    run = _init(store_uri, config={"fine": 2**70})
    with pytest.raises(LimitExceededError, match="float64"):
        run.config["big"] = {"deep": [10**400]}
    with pytest.raises(LimitExceededError, match="float64"):
        run.summary["big"] = -(10**400)
    with pytest.raises(LimitExceededError, match="float64"):
        run.summary["huge"] = 10**5000  # past int's 4,300 digits of str()
    run.finish()
    got = ledger_of(store_uri).get(run.id)
    assert got["config"] == {"fine": 2**70} and "big" not in got["summary"]
