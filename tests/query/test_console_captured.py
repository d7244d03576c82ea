"""The live panel's "what was captured" line, steps per second and artifacts logged."""

from __future__ import annotations

import io
import time
from pathlib import Path

from rich.console import Console

import labledger
from labledger.tracking.console import ConsolePanel, render_panel


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _text(renderable: object) -> str:
    out = io.StringIO()
    Console(file=out, width=200, color_system=None).print(renderable)
    return out.getvalue()


def test_panel_lists_commit_patch_packages_gpus_and_seed() -> None:
    env = {
        "git": {"commit": "abcdef0123456789", "diff_sha256": "feedbeef" + "0" * 56},
        "packages": {"numpy": "2.0", "torch": "2.3", "rich": "13"},
        "hardware": {"gpus": [{"name": "H100"}, {"name": "H100"}]},
    }
    common = {
        "run_id": "0123456789abcdef",
        "project": "proj",
        "name": "r1",
        "status": "running",
        "config": {"lr": 0.1},
        "series": {"loss": [1.0, 0.5]},
        "latest": {"loss": (1, 0.5)},
        "elapsed_s": 3.0,
    }
    text = _text(render_panel(env=env, seed=42, steps_per_s=12.5, artifacts=2, **common))
    for part in (
        "commit abcdef0123",
        "patch feedbeef",
        "3 packages",
        "2 GPUs",
        "seed 42",
        "12.5 steps/s",
        "2 artifacts",
    ):
        assert part in text, (part, text)
    bare = _text(render_panel(env={}, seed=None, steps_per_s=None, artifacts=0, **common))
    assert "no git" in bare and "no GPU" in bare and "seed not set" in bare
    assert "steps/s" not in bare and "artifacts" not in bare
    clean = _text(
        render_panel(
            env={"git": {"commit": "abc"}}, seed=1, steps_per_s=None, artifacts=0, **common
        )
    )
    assert "clean" in clean and "patch" not in clean


def test_live_panel_counts_steps_per_second_and_logged_artifacts(tmp_path: Path) -> None:
    run = labledger.init(
        "panel",
        name="arts",
        store=f"sqlite:///{tmp_path / 'l.db'}",
        capture=False,
        console=False,
        seed=5,
    )
    out = _Tty()
    panel = ConsolePanel(run, file=out, refresh_s=0.05).start()
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"\x01" * 100)
    deadline = time.monotonic() + 1.6  # the rate needs more than a second of samples
    while time.monotonic() < deadline:
        run.log({"loss": 0.5})
        time.sleep(0.02)
    run.log_artifact(weights, name="weights").wait(30)
    run.log_model(weights).wait(30)
    time.sleep(0.3)
    run.finish()
    panel.stop()
    text = out.getvalue()
    assert "steps/s" in text
    assert "2 artifacts" in text
    assert "seed 5" in text


def test_panel_lists_user_metrics_and_folds_system_metrics_into_units() -> None:
    latest = {
        "system/proc_rss_bytes": (3, 8.07822e07),
        "system/cpu_percent": (3, 12.34),
        "acc": (5, 0.9),
        "loss": (5, 0.25),
    }
    text = _text(
        render_panel(
            run_id="0123456789abcdef",
            project="proj",
            name="r1",
            status="finished",
            config={},
            env={},
            seed=None,
            series={},
            latest=latest,
            steps_per_s=None,
            artifacts=0,
            elapsed_s=1.0,
        )
    )
    assert text.index("acc") < text.index("loss") < text.index("system  ")
    assert "proc_rss_bytes 80.8 MB" in text and "cpu_percent 12.3 %" in text
    assert "8.07822e+07" not in text and "8.0782e+07" not in text
