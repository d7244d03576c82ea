"""``labledger demo`` records the data it trains on, as the README promises."""

from __future__ import annotations

import hashlib
import json
from importlib import resources

from labledger import Ledger

from .conftest import Cli


def test_demo_fingerprints_the_digits_data(cli: Cli, store_uri: str) -> None:
    out = cli("demo", "--runs", "1", "--epochs", "1", "--store", store_uri)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "no dataset fingerprint" not in out.stderr
    with Ledger(store_uri) as led:
        (run,) = led.runs(project="digits-demo")
        datasets = led.get(run["id"])["datasets"]
    digits = resources.files("sklearn.datasets.data") / "digits.csv.gz"
    data = digits.read_bytes()
    assert [(d["name"], d["sha256"], d["size"]) for d in datasets] == [
        ("digits", hashlib.sha256(data).hexdigest(), len(data))
    ]
    best = cli("best", "-m", "test_acc", "--json", "--store", store_uri)
    assert best.returncode == 0, best.stderr
    (row,) = json.loads(best.stdout)
    assert [d["name"] for d in row["datasets"]] == ["digits"]
