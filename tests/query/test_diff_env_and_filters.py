"""`labledger diff` environment sections (patch, Python, hardware) and `importance --filter`."""

from __future__ import annotations

import json
import math
import random
from typing import Any

from _qhelpers import insert, make_run
from click.testing import CliRunner

from labledger.cli import cli

PATCH_A = """\
diff --git a/train.py b/train.py
--- a/train.py
+++ b/train.py
@@ -1 +1 @@
-LR = 0.1
+LR = 0.05
"""

PATCH_B = (
    PATCH_A
    + """\
diff --git a/util.py b/util.py
--- a/util.py
+++ b/util.py
@@ -1 +1 @@
-X = 1
+X = 2
"""
)


def _cli(uri: str, *args: str) -> Any:
    res = CliRunner().invoke(cli, [*args, "--store", uri], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res


def test_diff_shows_commit_patch_python_and_hardware(store: Any) -> None:
    sha_a, sha_b = store.put_blob(PATCH_A.encode()), store.put_blob(PATCH_B.encode())

    def env(sha: str, py: str, gpu: str, cuda: str) -> dict[str, Any]:
        return {
            "git": {"commit": "c" * 40, "dirty": True, "diff_sha256": sha},
            "python": {"version": py},
            "hardware": {"cpu_count": 8, "gpus": [{"name": gpu, "memory_bytes": 1}], "cuda": cuda},
        }

    insert(
        store,
        [
            make_run(name="a", env=env(sha_a, "3.11.1", "A100", "12.1")),
            make_run(name="b", env=env(sha_b, "3.12.0", "H100", "12.4")),
        ],
    )
    d = json.loads(_cli(store.uri, "diff", "a", "b", "--json").output)["environment"]
    assert d["same"] is False
    assert d["git"]["diff_sha256"] == {"a": sha_a, "b": sha_b}
    assert d["patch"] == {"added": ["util.py"], "removed": [], "changed": []}
    assert d["python"]["version"] == {"a": "3.11.1", "b": "3.12.0"}
    assert d["hardware"]["cuda"] == {"a": "12.1", "b": "12.4"}
    assert d["hardware"]["gpus"] == {"a": ["A100 (1 B)"], "b": ["H100 (1 B)"]}
    assert "cpu_count" not in d["hardware"]  # only differences by default
    text = _cli(store.uri, "diff", "a", "b").output
    assert "python.version: 3.11.1 -> 3.12.0" in text
    assert "hardware.cuda: 12.1 -> 12.4" in text
    assert "util.py" in text


def test_importance_filter_restricts_the_runs(store: Any) -> None:
    rng = random.Random(1)
    runs = []
    for i in range(120):
        lr, depth = 10 ** rng.uniform(-4, -1), rng.randint(1, 12)
        sweep = "lr" if i % 2 == 0 else "depth"
        # in the "lr" sweep only lr matters; in the "depth" sweep only depth does
        acc = (
            0.9 - 0.1 * abs(math.log10(lr) + 2.5) if sweep == "lr" else 0.5 + 0.03 * depth
        ) + rng.gauss(0, 0.002)
        runs.append(
            make_run(config={"lr": lr, "depth": depth}, tags=[sweep], metrics={"val_acc": [acc]})
        )
    insert(store, runs)
    lr_first = json.loads(
        _cli(store.uri, "importance", "-m", "val_acc", "--filter", 'tags = "lr"', "--json").output
    )
    depth_first = json.loads(
        _cli(
            store.uri, "importance", "-m", "val_acc", "--filter", 'tags = "depth"', "--json"
        ).output
    )
    assert [it["key"] for it in lr_first] == ["lr", "depth"]
    assert [it["key"] for it in depth_first] == ["depth", "lr"]
    assert depth_first[0]["spearman"] > 0.9
