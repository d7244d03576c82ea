"""The live terminal panel: when it turns on, what it shows, and `run.log()` staying untouched."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import labledger
from labledger.tracking.console import ConsolePanel, console_enabled, sparkline

ROOT = Path(__file__).resolve().parents[2]


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_console_switches() -> None:
    assert console_enabled(stream=_Tty(), environ={}) is True
    assert console_enabled(stream=io.StringIO(), environ={}) is False  # not a terminal
    assert console_enabled(stream=_Tty(), environ={"CI": "true"}) is False
    assert console_enabled(stream=_Tty(), environ={"LABLEDGER_CONSOLE": "off"}) is False
    assert console_enabled(True, stream=io.StringIO(), environ={"CI": "1"}) is True
    assert console_enabled(False, stream=_Tty(), environ={}) is False


def test_sparkline_scales_and_marks_nan() -> None:
    assert sparkline([0.0, 1.0]) == "▁█"
    assert sparkline([1.0, float("nan"), 1.0]) == "▅ ▅"
    assert sparkline([]) == ""


def test_panel_shows_metrics_from_the_writer(tmp_path: Path) -> None:
    run = labledger.init(
        "panel",
        name="p1",
        config={"lr": 0.01, "opt": "adam"},
        store=f"sqlite:///{tmp_path / 'l.db'}",
        capture=False,
        console=False,
    )
    out = _Tty()
    panel = ConsolePanel(run, file=out, refresh_s=0.05).start()
    for i in range(20):
        run.log({"loss": 1.0 / (i + 1), "acc": i / 20})
        run.flush()
        time.sleep(0.01)
    time.sleep(0.3)
    run.finish()
    panel.stop()
    text = out.getvalue()
    assert "panel" in text and "p1" in text and run.id[:8] in text
    assert "lr=0.01" in text and "opt=adam" in text
    assert "loss" in text and "acc" in text and "0.05" in text  # last loss value
    assert any(ch in text for ch in "▁▂▃▄▅▆▇█")
    assert not panel.thread.is_alive()


def _run_in_pty(code: str, env: dict[str, str], cwd: Path) -> str:
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=slave,
        stderr=slave,
        cwd=cwd,
        env={**env, "PYTHONPATH": str(ROOT / "src"), "TERM": "xterm"},
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(master)
    return b"".join(chunks).decode("utf-8", "replace")


SCRIPT = """
import time, labledger
run = labledger.init("ttyproj", name="ttyrun", config={"lr": 0.5}, store="sqlite:///l.db")
for i in range(30):
    run.log({"loss": 1.0 / (i + 1)})
    time.sleep(0.05)
run.finish()
"""


def test_panel_appears_in_a_terminal_and_not_when_disabled(tmp_path: Path) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith("LABLEDGER_") and k != "CI"}
    shown = _run_in_pty(SCRIPT, base, tmp_path)
    assert "ttyproj" in shown and "loss" in shown and "lr=0.5" in shown
    hidden = _run_in_pty(SCRIPT, {**base, "LABLEDGER_CONSOLE": "off"}, tmp_path)
    assert "ttyproj" not in hidden
    under_ci = _run_in_pty(SCRIPT, {**base, "CI": "true"}, tmp_path)
    assert "ttyproj" not in under_ci
