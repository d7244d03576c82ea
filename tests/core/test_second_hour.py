"""The smaller items of issue #26 ("the second hour"): warnings without a stray source
line, did-you-mean for artifacts, system keys last, units for system metrics, edit history
wording, Terraform's TF_* variables, a busy UI port."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import click
import pytest

import labledger
from labledger._exceptions import ArtifactNotFoundError, UsageError

ROOT = Path(__file__).resolve().parents[2]


def test_fmt_metric_prints_system_metrics_in_units() -> None:
    from labledger._values import fmt_metric

    assert fmt_metric("system/proc_rss_bytes", 8.07822e07) == "80.8 MB"
    assert fmt_metric("system/disk_read_bytes_per_s", 3.2e6) == "3.2 MB/s"
    assert fmt_metric("system/cpu_percent", 12.34) == "12.3 %"
    assert fmt_metric("system/gpu0/util", 99) == "99.0 %"
    assert fmt_metric("system/gpu0/temp_c", 55) == "55.0 °C"
    assert fmt_metric("val/acc", 0.912345678) == "0.912346"  # a user metric: unchanged


def test_a_warning_from_a_background_thread_prints_no_source_line(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(
        "import threading\n"
        "from labledger._values import warn\n"
        "t = threading.Thread(target=warn, args=('labledger: from a thread',))\n"
        "t.start(); t.join()\n"
        "warn('labledger: from the script')\n"
    )
    out = subprocess.run(
        [sys.executable, str(script)],
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = out.stderr.splitlines()
    thread = lines.index(
        "labledger:0: RuntimeWarning: labledger: from the thread".replace("the", "a")
    )
    # the message alone: the next line is the next warning, not a line of labledger's source
    assert lines[thread + 1].startswith(f"{script}:5: RuntimeWarning: labledger: from the script")
    assert "threading" not in out.stderr and "_values.py" not in out.stderr


def test_cite_lists_the_users_metrics_before_system_ones(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'l.db'}"
    run = labledger.init("cite", store=store, capture=False, console=False)
    run.log({"acc": 0.9, "system/cpu_percent": 10.0, "zz": 1.0})
    run.finish()
    from labledger._cite import cite

    with pytest.raises(UsageError) as err:
        cite(run.id, "ac", store=store)
    assert "(it has: acc, zz, system/cpu_percent)" in str(err.value)


def test_edit_history_says_unset_not_none(capsys: pytest.CaptureFixture[str]) -> None:
    from labledger.cli.runs import render_history

    render_history(
        {"edits": [{"at": 0.0, "author": "ada", "field": "notes", "old": None, "new": "fine"}]}
    )
    out = capsys.readouterr().out
    assert "notes: (unset) -> fine" in out and "None" not in out


def test_terraform_variables_are_not_captured_as_ml_settings() -> None:
    from labledger.capture.secrets import allowed_env_vars

    env = {
        "TF_CLI_CONFIG_FILE": "/x/.terraformrc",
        "TF_LOG": "DEBUG",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    assert allowed_env_vars(env) == {"TF_CPP_MIN_LOG_LEVEL": "2"}
    env["LABLEDGER_ENV_ALLOWLIST"] = "TF_CLI_CONFIG_FILE"  # asked for by name: kept
    assert "TF_CLI_CONFIG_FILE" in allowed_env_vars(env)


def test_an_artifact_of_another_project_is_suggested_with_its_project(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'l.db'}"
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights")
    run = labledger.init("digits-demo", store=store, capture=False, console=False)
    run.log_artifact(model, name="digits-mlp")
    run.finish()
    from labledger.store import open_store

    s = open_store(store)
    try:
        with pytest.raises(ArtifactNotFoundError) as err:
            s.get_artifact_version("work", "digits-mlp:v1")
    finally:
        s.close()
    assert "did you mean digits-demo/digits-mlp:v1?" in str(err.value)


def test_a_busy_ui_port_suggests_port_0() -> None:
    from labledger.cli.ui import bind_socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        with pytest.raises(click.ClickException) as err:
            bind_socket("127.0.0.1", port).close()
    assert "--port 0 for any free port" in err.value.message


def test_primary_metric_is_the_sorted_one_else_the_most_logged_validation_metric(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from labledger.cli._layout import primary_metric, remember_primary

    monkeypatch.setenv("LABLEDGER_CACHE_DIR", str(tmp_path))
    runs = [
        {"project": "p", "summary": {"train/acc": 1, "val/acc": 1, "test_acc": 1, "system/x": 1}},
        {"project": "p", "summary": {"train/acc": 1, "val_loss": 1, "test_acc": 1}},
    ]
    assert primary_metric(runs, "s", "p") == "val/acc"  # validation before test and train
    assert primary_metric(runs[1:], "s", "p") == "val_loss"
    assert primary_metric(runs, "s", "p", "-summary.test_acc") == "test_acc"
    remember_primary("s", "p", "-summary.test_acc", {"test_acc"})
    assert primary_metric(runs, "s", "p") == "test_acc"  # remembered for this store
    assert primary_metric(runs, "other", "p") == "val/acc"
    remember_primary("s", "p", "-summary.tst_acc", {"test_acc"})  # a typo is not remembered
    assert primary_metric(runs, "s", "p") == "test_acc"
    for i in range(205):
        remember_primary(f"store-{i}", "p", "summary.val/acc", {"val/acc"})
    memory = json.loads((tmp_path / "primary-metrics.json").read_text())
    assert len(memory) == 200 and "store-204#p" in memory and "s#p" not in memory
