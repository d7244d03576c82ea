"""The tracking API in-process: values, keys, steps, config, summary, ids and names."""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
from collections import OrderedDict
from types import MappingProxyType
from typing import Any

import numpy as np
import pytest
import torch

import labledger
from labledger import InvalidKeyError, RunFinishedError


def start(uri: str, finish_all: list[Any], **kw: Any) -> labledger.Run:
    run = labledger.init("core-tests", store=uri, capture=False, **kw)
    finish_all.append(run)
    return run


VALUE_KINDS = [
    (3, 3.0),
    (-2.5, -2.5),
    (True, 1.0),
    (False, 0.0),
    (2**40, float(2**40)),
    (np.float32(0.25), 0.25),
    (np.float64(1e-300), 1e-300),
    (np.float16(0.5), 0.5),
    (np.int8(-7), -7.0),
    (np.int64(123456789), 123456789.0),
    (np.uint16(65535), 65535.0),
    (np.bool_(True), 1.0),
    (np.array(4.5), 4.5),
    (np.array(6, dtype=np.int32), 6.0),
    (torch.tensor(1.5), 1.5),
    (torch.tensor(7), 7.0),
    (torch.tensor(True), 1.0),
    (torch.tensor(0.125, dtype=torch.float64, requires_grad=True) * 1, 0.125),
]


def test_every_value_kind_round_trips(
    any_store_uri: str, finish_all: list[Any], ledger_of: Any
) -> None:
    run = start(any_store_uri, finish_all)
    for i, (value, _) in enumerate(VALUE_KINDS):
        run.log({f"kind/{i}": value})
    run.finish()
    led = ledger_of(any_store_uri)
    got = led.get(run.id)
    for i, (_, expected) in enumerate(VALUE_KINDS):
        h = led.history(run.id, f"kind/{i}")
        assert h.values.tolist() == [expected], (i, VALUE_KINDS[i][0])
        assert h.steps.tolist() == [i]
        assert got["summary"][f"kind/{i}"] == expected
        assert got["metrics"][f"kind/{i}"]["count"] == 1


def test_nan_and_inf_read_back_exactly(
    any_store_uri: str, finish_all: list[Any], ledger_of: Any
) -> None:
    run = start(any_store_uri, finish_all)
    seq = [1.0, math.nan, math.inf, -math.inf, 2.0, math.nan]
    for v in seq:
        run.log({"loss": v})
    run.log({"pos": math.inf})
    run.log({"neg": -math.inf})
    run.log({"allnan": math.nan})
    run.summary["explicit_nan"] = math.nan
    run.summary["explicit_inf"] = -math.inf
    run.finish()
    led = ledger_of(any_store_uri)
    h = led.history(run.id, "loss")
    got = h.values.tolist()
    assert len(got) == len(seq)
    for a, b in zip(got, seq, strict=True):
        assert (math.isnan(a) and math.isnan(b)) or a == b
    r = led.get(run.id)
    assert math.isnan(r["summary"]["loss"])  # the last value, not clamped
    assert r["metrics"]["loss"]["min"] == -math.inf
    assert r["metrics"]["loss"]["max"] == math.inf
    assert r["summary"]["pos"] == math.inf
    assert r["summary"]["neg"] == -math.inf
    assert math.isnan(r["summary"]["allnan"])
    assert r["metrics"]["allnan"]["min"] is None and r["metrics"]["allnan"]["max"] is None
    assert math.isnan(r["summary"]["explicit_nan"])
    assert r["summary"]["explicit_inf"] == -math.inf


@pytest.mark.parametrize(
    ("value", "type_name"),
    [
        ("0.5", "str"),
        (None, "NoneType"),
        ([1.0], "list"),
        (np.zeros(3), "ndarray"),
        (torch.zeros(2, 2), "Tensor"),
        (1 + 2j, "complex"),
        ({"a": 1}, "dict"),
        (b"1", "bytes"),
    ],
)
def test_non_numeric_value_raises_type_error_at_call_site(
    store_uri: str, finish_all: list[Any], value: Any, type_name: str
) -> None:
    run = start(store_uri, finish_all)
    with pytest.raises(TypeError) as info:
        run.log({"ok": 1.0, "bad/key": value})
    msg = str(info.value)
    assert "'bad/key'" in msg and type_name in msg
    # raised in log() itself, not later in the writer thread
    assert info.traceback[-1].name in ("log", "coerce_metric")
    assert any(
        tb.name == "test_non_numeric_value_raises_type_error_at_call_site" for tb in info.traceback
    )


@pytest.mark.parametrize(
    "key",
    ["", "x" * 251, "a\nb", "tab\there", "nul\x00", "del\x7f", "/lead", "trail/", "a//b", 3, None],
)
def test_bad_keys_raise_invalid_key_error(store_uri: str, finish_all: list[Any], key: Any) -> None:
    run = start(store_uri, finish_all)
    with pytest.raises(InvalidKeyError):
        run.log({key: 1.0})
    with pytest.raises(InvalidKeyError):
        run.summary[key] = 1.0


def test_good_keys_are_accepted(store_uri: str, finish_all: list[Any], ledger_of: Any) -> None:
    run = start(store_uri, finish_all)
    keys = ["x" * 250, "train/loss", "a/b/c", "ünïcödé ✓", "with space", "dots.are.fine"]
    run.log(dict.fromkeys(keys, 1.0))
    run.finish()
    assert sorted(ledger_of(store_uri).metric_keys(run.id)) == sorted(keys)


def test_log_after_finish_raises(store_uri: str, finish_all: list[Any]) -> None:
    run = start(store_uri, finish_all)
    run.log({"a": 1})
    run.finish()
    with pytest.raises(RunFinishedError, match=run.id[:8]):
        run.log({"a": 2})
    run.finish()  # a second finish is a no-op
    assert run.status == "finished"


def test_log_rejects_non_mapping(store_uri: str, finish_all: list[Any]) -> None:
    run = start(store_uri, finish_all)
    with pytest.raises(TypeError, match="dict"):
        run.log([("a", 1.0)])  # type: ignore[arg-type]


def test_steps_auto_increment_and_explicit_steps(
    any_store_uri: str, finish_all: list[Any], ledger_of: Any
) -> None:
    run = start(any_store_uri, finish_all)
    run.log({"a": 0.0})  # step 0
    run.log({"a": 1.0, "b": 1.0})  # step 1, both keys
    run.log({"a": 10.0}, step=10)
    run.log({"a": 11.0})  # continues after the explicit step
    run.log({"b": 5.0}, step=5)  # going back does not move the counter
    run.log({"a": 12.0})
    assert run.step == 13
    with pytest.raises(TypeError):
        run.log({"a": 1.0}, step=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        run.log({"a": 1.0}, step=-1)
    run.log({"c": 1.0}, step=np.int64(40))
    run.finish()
    led = ledger_of(any_store_uri)
    assert led.history(run.id, "a").steps.tolist() == [0, 1, 10, 11, 12]
    assert led.history(run.id, "b").steps.tolist() == [1, 5]
    assert led.history(run.id, "b").values.tolist() == [1.0, 5.0]
    assert led.history(run.id, "c").steps.tolist() == [40]


def test_history_is_ordered_by_step_when_logged_out_of_order(
    store_uri: str, finish_all: list[Any], ledger_of: Any
) -> None:
    run = start(store_uri, finish_all)
    for s in (5, 1, 3):
        run.log({"x": float(s)}, step=s)
    run.finish()
    h = ledger_of(store_uri).history(run.id, "x")
    assert h.steps.tolist() == [1, 3, 5] and h.values.tolist() == [1.0, 3.0, 5.0]


def test_summary_last_value_explicit_wins_min_max_for_readers(
    any_store_uri: str, finish_all: list[Any], ledger_of: Any
) -> None:
    run = start(any_store_uri, finish_all)
    for v in (0.9, 0.2, 0.5):
        run.log({"loss": v, "acc": 1 - v})
    assert run.summary["loss"] == 0.5  # readable in-process before anything is written
    run.flush()
    assert run.summary["loss"] == 0.5
    run.summary["acc"] = 0.99  # explicit wins over the last logged value
    run.summary["note"] = "best epoch 3"
    run.summary["np"] = np.float32(0.5)
    run.log({"acc": 0.1})  # still loses to the explicit value
    assert run.summary["acc"] == 0.99
    assert set(run.summary) == {"loss", "acc", "note", "np"}
    run.finish()
    r = ledger_of(any_store_uri).get(run.id)
    assert r["summary"]["loss"] == 0.5
    assert r["summary"]["acc"] == 0.99
    assert r["summary"]["note"] == "best epoch 3"
    assert r["summary"]["np"] == 0.5
    m = r["metrics"]["loss"]
    assert (m["min"], m["max"], m["last"], m["count"], m["last_step"]) == (0.2, 0.9, 0.5, 3, 2)
    assert r["metrics"]["acc"]["max"] == pytest.approx(0.8)
    assert r["metrics"]["acc"]["count"] == 4


def test_summary_of_unknown_key_raises_key_error(store_uri: str, finish_all: list[Any]) -> None:
    run = start(store_uri, finish_all)
    with pytest.raises(KeyError):
        run.summary["never-logged"]


@dataclasses.dataclass
class Opt:
    name: str = "adam"
    betas: tuple[float, float] = (0.9, 0.999)


@dataclasses.dataclass
class TrainCfg:
    lr: float = 1e-3
    opt: Opt = dataclasses.field(default_factory=Opt)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            {"lr": 0.1, "model": {"depth": 3, "act": {"name": "relu"}}},
            {"lr": 0.1, "model": {"depth": 3, "act": {"name": "relu"}}},
        ),
        (
            argparse.Namespace(lr=0.01, batch_size=32, layers=[1, 2]),
            {"lr": 0.01, "batch_size": 32, "layers": [1, 2]},
        ),
        (TrainCfg(), {"lr": 1e-3, "opt": {"name": "adam", "betas": [0.9, 0.999]}}),
        (MappingProxyType({"a": 1, "b": {"c": None}}), {"a": 1, "b": {"c": None}}),
        (OrderedDict([("z", 1), ("a", True)]), {"z": 1, "a": True}),
    ],
    ids=["dict", "namespace", "dataclass", "mappingproxy", "ordereddict"],
)
def test_config_sources_are_stored_faithfully(
    any_store_uri: str, finish_all: list[Any], ledger_of: Any, source: Any, expected: dict[str, Any]
) -> None:
    run = start(any_store_uri, finish_all, config=source)
    assert run.config.as_dict() == expected
    run.finish()
    assert ledger_of(any_store_uri).get(run.id)["config"] == expected


def test_config_dotted_addressing_and_updates(
    store_uri: str, finish_all: list[Any], ledger_of: Any
) -> None:
    run = start(store_uri, finish_all, config={"model": {"enc": {"depth": 4}}, "lr": 0.1})
    assert run.config["model.enc.depth"] == 4
    assert run.config.lr == 0.1
    assert "model.enc.depth" in run.config
    with pytest.raises(KeyError):
        run.config["model.enc.width"]
    run.config["model.enc.depth"] = 6  # dotted assignment reaches into the nested dict
    run.config.update(argparse.Namespace(epochs=3))
    run.config.update(TrainCfg(lr=0.5))
    run.config["batch"] = 64
    run.config.dropout = 0.2
    run.finish()
    cfg = ledger_of(store_uri).get(run.id)["config"]
    assert cfg["model"] == {"enc": {"depth": 6}}
    assert cfg["epochs"] == 3 and cfg["lr"] == 0.5 and cfg["batch"] == 64 and cfg["dropout"] == 0.2
    assert cfg["opt"] == {"name": "adam", "betas": [0.9, 0.999]}


class Weird:
    def __repr__(self) -> str:
        return "<Weird thing>"


def test_non_json_config_values_are_stored_as_repr_with_exactly_one_warning(
    store_uri: str, finish_all: list[Any], ledger_of: Any
) -> None:
    with pytest.warns(UserWarning) as record:
        run = start(
            store_uri, finish_all, config={"obj": Weird(), "nested": {"fn": Weird()}, "ok": 1}
        )
    assert len(record) == 1
    msg = str(record[0].message)
    assert "obj" in msg and "nested.fn" in msg
    assert record[0].filename == __file__  # points at the caller, not at labledger
    run.finish()
    cfg = ledger_of(store_uri).get(run.id)["config"]
    assert cfg == {"obj": "<Weird thing>", "nested": {"fn": "<Weird thing>"}, "ok": 1}


def test_config_rejects_unsupported_source(store_uri: str) -> None:
    with pytest.raises(TypeError, match="config"):
        labledger.init("p", store=store_uri, capture=False, config=42)


def test_ids_are_unique_and_prefixes_resolve(
    any_store_uri: str, finish_all: list[Any], ledger_of: Any
) -> None:
    runs = [start(any_store_uri, finish_all) for _ in range(3)]
    for r in runs:
        r.finish()
    ids = [r.id for r in runs]
    assert len(set(ids)) == 3
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    led = ledger_of(any_store_uri)
    for r in runs:
        assert led.get(r.id[:10])["id"] == r.id
        assert led.get(r.id.upper()[:10])["id"] == r.id
        assert led.get(r.name)["id"] == r.id or len({x.name for x in runs}) < 3


def test_ambiguous_prefix_and_unknown_run(
    any_store_uri: str, finish_all: list[Any], ledger_of: Any
) -> None:
    from labledger.store import open_store

    store = open_store(any_store_uri)
    try:
        for rid in ("abcd0001" + "0" * 24, "abcd0002" + "0" * 24):
            store.create_run({"id": rid, "project": "p", "name": f"n-{rid[:8]}"})
    finally:
        store.close()
    led = ledger_of(any_store_uri)
    with pytest.raises(labledger.AmbiguousRunError, match="abcd0001"):
        led.get("abcd")
    assert led.get("abcd0002")["id"].startswith("abcd0002")
    with pytest.raises(labledger.RunNotFoundError):
        led.get("ffff")


def test_names_are_readable_and_explicit_names_kept(store_uri: str, finish_all: list[Any]) -> None:
    names = {start(store_uri, finish_all).name for _ in range(5)}
    for n in names:
        assert re.fullmatch(r"[a-z]+-[a-z]+-\d{1,2}", n), n
    assert start(store_uri, finish_all, name="baseline").name == "baseline"


def test_context_manager_marks_failed_on_exception(store_uri: str, ledger_of: Any) -> None:
    with (
        pytest.raises(ZeroDivisionError),
        labledger.init("p", store=store_uri, capture=False) as run,
    ):
        run.log({"a": 1})
        1 / 0  # noqa: B018
    r = ledger_of(store_uri).get(run.id)
    assert r["status"] == "failed"
    assert "ZeroDivisionError" in r["error"]
    assert r["exit_code"] == 1
    with labledger.init("p", store=store_uri, capture=False) as ok:
        ok.log({"a": 1})
    assert ledger_of(store_uri).get(ok.id)["status"] == "finished"


def test_context_manager_keyboard_interrupt_is_killed(store_uri: str, ledger_of: Any) -> None:
    with (
        pytest.raises(KeyboardInterrupt),
        labledger.init("p", store=store_uri, capture=False) as run,
    ):
        raise KeyboardInterrupt
    r = ledger_of(store_uri).get(run.id)
    assert r["status"] == "killed" and r["exit_code"] == 130


def test_finish_with_status_and_bad_status(
    store_uri: str, finish_all: list[Any], ledger_of: Any
) -> None:
    run = start(store_uri, finish_all)
    with pytest.raises(labledger.UsageError):
        run.finish("weird")
    run.finish("failed", exit_code=2)
    r = ledger_of(store_uri).get(run.id)
    assert (r["status"], r["exit_code"]) == ("failed", 2)
    assert r["ended_at"] is not None and r["runtime_s"] >= 0


def test_a_run_name_that_is_also_hex_resolves_to_that_run(store_uri: str) -> None:
    from labledger.store import open_store

    store = open_store(store_uri)
    try:
        store.create_run({"id": "b" + "0" * 31, "project": "p", "name": "other"})
        store.create_run({"id": "c" + "0" * 31, "project": "p", "name": "b"})
        assert store.resolve_run_id("b") == "c" + "0" * 31  # the exact name wins
        assert store.resolve_run_id("b0") == "b" + "0" * 31  # a prefix still resolves
        assert store.resolve_run_id("c" + "0" * 31) == "c" + "0" * 31
    finally:
        store.close()


def test_log_keeps_an_explicit_timestamp(store_uri: str, finish_all: list[Any]) -> None:
    run = start(store_uri, finish_all)
    run.log({"loss": 0.5}, step=3, timestamp=1_600_000_000.25)
    run.log({"loss": 0.4})  # default: now
    run.finish()
    with labledger.Ledger(store_uri) as ledger:
        points = ledger.history(run.id, "loss").to_list()
    assert points[0] == (3, 0.5, 1_600_000_000.25)
    assert points[1][2] > 1_700_000_000


@pytest.mark.parametrize("bad", ["1600000000", math.nan, math.inf, -1.0, True])
def test_log_rejects_a_bad_timestamp(store_uri: str, finish_all: list[Any], bad: Any) -> None:
    run = start(store_uri, finish_all)
    with pytest.raises((TypeError, ValueError), match="timestamp"):
        run.log({"loss": 0.5}, timestamp=bad)
