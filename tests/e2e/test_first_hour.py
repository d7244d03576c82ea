"""The first hour of a new user: `labledger demo`, then every command the README lists,
through the real CLI in real subprocesses (issue #13)."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(
    *args: str, cwd: Path, env: dict[str, str] | None = None, columns: int = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "labledger.cli", *args],
        cwd=cwd,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("LABLEDGER_")},
            "PYTHONPATH": str(ROOT / "src"),
            "LABLEDGER_CONSOLE": "off",
            "COLUMNS": str(columns),
            **(env or {}),
        },
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A directory with the demo's eight runs in its embedded store, as after `make demo`."""
    where = tmp_path_factory.mktemp("first-hour")
    subprocess.run(["git", "init", "-q", str(where)], check=True)
    out = _run("demo", "--epochs", "2", cwd=where)
    assert out.returncode == 0, out.stderr[-3000:]
    yield where, out.stdout


def _ids(where: Path) -> list[dict[str, object]]:
    out = _run("ls", "--json", cwd=where)
    assert out.returncode == 0, out.stderr
    runs: list[dict[str, object]] = json.loads(out.stdout)
    return runs


def test_ls_at_120_columns_never_wraps_numbers_or_ids(demo: tuple[Path, str]) -> None:
    where, _ = demo
    runs = _ids(where)
    out = _run("ls", cwd=where, columns=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert all(len(line) <= 120 for line in lines), max(lines, key=len)
    rows = [ln for ln in lines if ln.startswith("│")]
    assert len(rows) == len(runs) == 8  # one line per run: nothing wrapped onto a second line
    for r in runs:
        (row,) = [ln for ln in rows if f"│ {str(r['id'])[:8]} │" in ln]
        shown = [c.strip() for c in row.strip("│").split("│")]
        summary, config = r["summary"], r["config"]
        assert isinstance(summary, dict) and isinstance(config, dict)
        values = [*summary.values(), *config.values()]
        for cell in shown:  # every number on the line is a whole value of the run
            if re.fullmatch(r"\d+\.\d+", cell):
                assert any(cell == f"{v:.6g}" for v in values if isinstance(v, float)), cell
    assert "column(s) left out to fit 120 columns" in out.stdout


def _header(text: str) -> list[str]:
    line = next(ln for ln in text.splitlines() if ln.startswith("┃"))
    return [h.strip() for h in line.strip("┃").split("┃")]


@pytest.mark.parametrize("columns", [80, 120])
def test_ls_and_best_lead_with_the_primary_metric_and_fit(
    demo: tuple[Path, str], columns: int
) -> None:
    """Metrics first (issue #26): the primary metric right after the identity, then the config
    keys that vary; keys every run shares said once above; one line per run; what was left
    out named."""
    where, _ = demo
    out = _run("ls", cwd=where, columns=columns)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert all(len(line) <= columns for line in lines), max(lines, key=len)
    head = _header(out.stdout)
    assert head[:3] == ["id", "name", "★ val/acc"]  # the demo's validation metric
    assert head[3] == "lr" and "status" in head  # a varying config key, never epochs
    assert "epochs" not in head and "author" not in head[:4]
    same = out.stdout[: out.stdout.index("┏")]
    assert same.startswith("same in every run: project=digits-demo, epochs=2")
    assert len([ln for ln in lines if ln.startswith("│")]) == 8
    note = " ".join(lines[lines.index(next(ln for ln in lines if ln.startswith("└"))) + 1 :])
    assert f"left out to fit {columns} columns" in note and "test_acc" in note

    best = _run("best", "--metric", "test_acc", "--top", "8", cwd=where, columns=columns)
    assert best.returncode == 0, best.stderr
    lines = best.stdout.splitlines()
    assert all(len(line) <= columns for line in lines), max(lines, key=len)
    head = _header(best.stdout)
    assert head[:4] == ["#", "id", "name", "★ test_acc"]
    assert {"commit", "seed"} <= set(head)
    assert len([ln for ln in lines if ln.startswith("│")]) == 8  # one line per run
    assert "dataset=sklearn.digits" in best.stdout and "data=digits:" in best.stdout
    if columns == 120:
        assert {"lr", "hidden", "activation", "optimizer"} <= set(head)


def test_ls_remembers_the_metric_sorted_by_and_warns_on_an_unknown_one(
    demo: tuple[Path, str], tmp_path: Path
) -> None:
    where, _ = demo
    env = {"LABLEDGER_CACHE_DIR": str(tmp_path / "cache")}
    sorted_ = _run("ls", "--sort", "-summary.test_f1_macro", cwd=where, env=env)
    assert sorted_.returncode == 0 and sorted_.stderr == "", sorted_.stderr
    assert _header(sorted_.stdout)[2] == "★ test_f1_macro"
    again = _run("ls", cwd=where, env=env)
    assert _header(again.stdout)[2] == "★ test_f1_macro"  # remembered for the project
    assert _header(_run("ls", cwd=where).stdout)[2] == "★ val/acc"  # elsewhere: the default

    typo = _run("ls", "--sort", "-summary.tst_acc", cwd=where, env=env)
    assert typo.returncode == 0
    assert "warning: no listed run has 'summary.tst_acc': the sort did nothing" in typo.stderr
    assert "did you mean summary.test_acc" in typo.stderr
    assert _header(typo.stdout)[2] == "★ test_f1_macro"  # a typo is not remembered

    imp = _run("importance", "--metric", "tst_acc", cwd=where)
    assert imp.returncode == 1 and "did you mean test_acc" in imp.stderr


def test_ls_columns_accepts_the_built_in_names(demo: tuple[Path, str]) -> None:
    where, _ = demo
    out = _run("ls", "--columns", "id,name,status,runtime,tags", cwd=where)
    assert out.returncode == 0 and out.stderr == "", out.stderr
    header = next(ln for ln in out.stdout.splitlines() if ln.startswith("┃"))
    assert [h.strip() for h in header.strip("┃").split("┃")] == [
        "id",
        "name",
        "status",
        "runtime",
        "tags",
    ]
    assert out.stdout.count("demo") >= 8  # the tags column is filled


def test_best_with_an_unknown_metric_exits_1_with_a_suggestion(demo: tuple[Path, str]) -> None:
    where, _ = demo
    out = _run("best", "--metric", "val_acc", cwd=where)
    assert out.returncode == 1
    assert out.stderr.strip().startswith("error: no run has a summary metric 'val_acc'")
    assert "did you mean val/acc?" in out.stderr
    assert "val/acc" in _run("best", "--help", cwd=where).stdout
    good = _run("best", "--metric", "val/acc", cwd=where, columns=120)
    assert good.returncode == 0 and "best by val/acc" in good.stdout
    assert all(len(line) <= 120 for line in good.stdout.splitlines())
    assert "dataset=sklearn.digits" in good.stdout  # a config value is never broken


def test_export_writes_to_stdout_by_default_and_with_dash(demo: tuple[Path, str]) -> None:
    where, _ = demo
    for args in ((), ("-o", "-"), ("--format", "csv", "-o", "-")):
        out = _run("export", *args, cwd=where)
        assert out.returncode == 0, out.stderr
        rows = list(csv.DictReader(io.StringIO(out.stdout)))
        assert len(rows) == 8 and "summary.test_acc" in rows[0]
    js = _run("export", "--format", "json", cwd=where)
    assert len(json.loads(js.stdout)) == 8
    assert not (where / "-").exists()


def test_show_has_no_exit_dash_user_metrics_first_and_labelled_sizes(
    demo: tuple[Path, str],
) -> None:
    where, _ = demo
    best = max(_ids(where), key=lambda r: r["summary"]["test_acc"])  # type: ignore[index]
    for args in (("show", str(best["id"])), ("env", str(best["id"]))):
        out = _run(*args, cwd=where, columns=200)
        assert out.returncode == 0, out.stderr
        assert "exit -" not in out.stdout
    text = _run("show", str(best["id"]), cwd=where, columns=200).stdout
    assert "test_acc" in text
    if "system/" in text:  # a short run may end before the sampler's first sample
        assert text.index("test_acc") < text.index("system metrics") < text.index("system/")
    assert re.search(r"digits-mlp .* model .* \d+\.\d KB", text)  # the demo's model artifact
    assert "version digest" in text and "content sha256" in text
    assert "KiB" not in text


def test_compare_of_one_run_shows_it_without_differences(demo: tuple[Path, str]) -> None:
    where, _ = demo
    rid = str(_ids(where)[0]["id"])
    out = _run("compare", rid, cwd=where, columns=200)
    assert out.returncode == 0, out.stderr
    assert "one run: nothing to compare it with" in out.stdout
    assert "config.lr" in out.stdout and "summary.test_acc" in out.stdout
    table = json.loads(_run("compare", rid, "--json", cwd=where).stdout)
    assert not any(row["differs"] for row in table["rows"])
    keys = [row["key"] for row in table["rows"]]
    user = [i for i, k in enumerate(keys) if k.startswith("summary.") and "system/" not in k]
    system = [i for i, k in enumerate(keys) if k.startswith("summary.system/")]
    assert user
    if system:  # a short run may end before the sampler's first sample
        assert max(user) < min(system)  # the machine's metrics after the user's


def test_diff_lists_user_metrics_before_system_metrics(demo: tuple[Path, str]) -> None:
    where, _ = demo
    a, b = (str(r["id"]) for r in _ids(where)[:2])
    d = json.loads(_run("diff", a, b, "--all", "--json", cwd=where).stdout)
    keys = [e["key"] for e in d["summary"]]
    firsts = [k.startswith("system/") for k in keys]
    assert firsts == sorted(firsts)  # every user metric, then every system/* metric


def test_importance_plot_greys_categorical_keys_and_warns_on_few_runs(
    demo: tuple[Path, str],
) -> None:
    where, _ = demo
    png = where / "imp.png"
    out = _run("importance", "--metric", "test_acc", "--plot", str(png), cwd=where)
    assert out.returncode == 0, out.stderr
    assert "warning: only 8 runs: importances and correlations are rough" in out.stderr
    import matplotlib.image as mpimg
    import numpy as np

    img = mpimg.imread(png)[..., :3]
    grey = np.all(np.abs(img - 0x99 / 255) < 0.02, axis=-1).sum()
    assert grey > 200  # the categorical keys (activation, optimizer) are grey bars


def test_repro_dry_run_of_a_run_with_no_environment(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'l.db'}"
    script = tmp_path / "t.py"
    script.write_text(
        "import labledger\n"
        f"with labledger.init('p', store={store!r}, capture=False, seed=1) as r:\n"
        "    r.summary['x'] = 1.0\n"
    )
    subprocess.run(
        [sys.executable, str(script)],
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    (run,) = json.loads(_run("ls", "--json", "--store", store, cwd=tmp_path).stdout)
    out = _run("repro", str(run["id"]), "--dry-run", "--store", store, cwd=tmp_path)
    assert "drift:    not checked: the run recorded no environment" in out.stdout
    assert "drift:    none" not in out.stdout


def test_a_damaged_store_file_says_damaged_and_how_to_recover(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    out = _run("demo", "--runs", "1", "--epochs", "1", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    db = tmp_path / ".labledger" / "ledger.db"
    with open(db, "r+b") as fh:
        fh.write(b"\0" * 100)  # the header is gone
    out = _run("ls", cwd=tmp_path)
    assert out.returncode == 1
    assert "is damaged" in out.stderr and "not a labledger store" not in out.stderr
    assert ".recover" in out.stderr and "-wal" in out.stderr and "backup" in out.stderr


def test_every_error_has_one_style(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        out = _run(
            "ui", "--port", str(port), "--store", f"sqlite:///{tmp_path / 'x.db'}", cwd=tmp_path
        )
    assert out.returncode == 1
    assert out.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}")
    usage = _run("ls", "--bogus", cwd=tmp_path)
    assert usage.returncode == 2 and "error: No such option" in usage.stderr
    assert "Error:" not in usage.stderr + out.stderr


def test_diff_and_compare_fold_system_metrics_and_print_them_in_units(
    demo: tuple[Path, str],
) -> None:
    where, _ = demo
    runs = _ids(where)
    a, b = (str(r["id"]) for r in runs[:2])
    system = [k for k in runs[0]["summary"] if k.startswith("system/")]  # type: ignore[attr-defined]
    text = _run("diff", a, b, "--all", cwd=where, columns=160).stdout
    assert "system/" not in text.split("environment")[0]
    if system:  # a short run may end before the sampler's first sample
        assert f"system metrics: {len(system)} keys folded (--system shows them)" in text
        unfolded = _run("diff", a, b, "--all", "--system", cwd=where, columns=160).stdout
        assert re.search(r"system/proc_rss_bytes\s+│ \d+\.\d MB", unfolded), unfolded
        assert "e+0" not in unfolded
    table = json.loads(_run("compare", a, b, "--json", cwd=where).stdout)
    groups = {row["key"]: row["group"] for row in table["rows"]}
    assert groups["seed"] == "provenance" and groups["author"] == "provenance"
    assert groups["dataset.digits"] == "provenance" and groups["config.lr"] == "config"
    shown = _run("compare", a, b, cwd=where, columns=160).stdout
    assert shown.index("seed") < shown.index("config.")  # provenance leads
    if system:
        assert "system/" not in shown and "system metrics:" in shown
