"""Helpers for the dashboard tests (imported by conftest.py and the tests)."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
XSS_NAME = "<img src=x onerror=alert(1)>"
ARTIFACT_BYTES = b"\x00weights\xff" * 1000
PATCH_MARKER = '<script>alert("patch")</script>'


def sub_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABLEDGER_")}
    env.update(PYTHONPATH=str(ROOT / "src"), LABLEDGER_CONSOLE="off", **extra)
    return env


POPULATE = (
    textwrap.dedent("""
    import math, sys
    import labledger

    store = sys.argv[1]
    lrs = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3]
    for i, lr in enumerate(lrs):
        name = XSS_NAME if i == 5 else f"run-{i}"
        config = {"lr": lr, "optimizer": ["adam", "sgd"][i % 2], "model": {"depth": 10 + 2 * i}, "batch_size": [32, 64, 128][i % 3]}
        with labledger.init("vision", name=name, config=config, tags=["sweep", "<b>t</b>"], seed=i, store=store) as run:
            for step in range(200):
                run.log({"loss": 2 * math.exp(-lr * step * 3) + 0.01 * (step % 7),
                         "acc": 1 - 0.9 * math.exp(-lr * step * 2),
                         "system/cpu_percent": 30 + (step * 7) % 20}, step=step)
            run.summary["val_acc"] = 0.6 + 0.1 * math.log10(lr * 1000) + 0.02 * (i % 2)
            if i == 2:
                with open("weights.bin", "wb") as f:
                    f.write(ARTIFACT_BYTES)
                run.log_artifact("weights.bin", name="weights", kind="model").wait(60)
    for i in range(2):
        # constant keys that sort before the varying ones (lr, optimizer)
        config = {"batch": 16, "dataset": "wiki", "dropout": 0.1, "epochs": 3, "head": "cls",
                  "lr": 1e-5 * (i + 1), "optimizer": ["adam", "sgd"][i], "warmup": 100}
        with labledger.init("nlp", name=f"bert-{i}", config=config, store=store) as run:
            run.log({"loss": 1.0 / (i + 1)})
            if i == 0:
                run.use_artifact("vision/weights:latest")
""")
    .replace("XSS_NAME", repr(XSS_NAME))
    .replace("ARTIFACT_BYTES", repr(ARTIFACT_BYTES))
)


class UiServer:
    def __init__(self, proc: subprocess.Popen[str], url: str, reader: threading.Thread) -> None:
        self.proc = proc
        self.url = url.rstrip("/")
        self.reader = reader

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.reader.join(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def start_ui(store_uri: str, *extra: str, timeout: float = 30) -> UiServer:
    """Run ``labledger ui --port 0`` and read the URL it prints."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "labledger.cli", "ui", "--store", store_uri, "--port", "0", *extra],
        env=sub_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    seen = []
    while True:
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            proc.kill()
            proc.wait()
            raise AssertionError(f"labledger ui printed no URL: {seen}") from None
        seen.append(line)
        if "http://" in line:
            url = line.split("http://", 1)[1].split()[0]
            return UiServer(proc, "http://" + url, reader)


class PageProbe:
    """A page plus everything it reported: console errors, uncaught exceptions, dialogs."""

    def __init__(self, page: Any, base: str) -> None:
        self.page = page
        self.base = base
        self.errors: list[str] = []
        self.allowed: list[str] = []
        self.dialogs: list[str] = []
        page.on(
            "console",
            lambda m: (
                self.errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None
            ),
        )
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))

        def on_dialog(d: Any) -> None:
            self.dialogs.append(d.message)
            d.dismiss()

        page.on("dialog", on_dialog)

    def open(self, route: str, *, loaded: bool = True) -> Any:
        self.page.goto(f"{self.base}/{route}")
        if loaded:
            self.page.wait_for_selector("main[data-loaded='1']", timeout=15_000)
        return self.page

    def allow(self, fragment: str) -> None:
        """Expect console errors containing ``fragment`` (e.g. the 400 of a bad filter)."""
        self.allowed.append(fragment)

    def unexpected_errors(self) -> list[str]:
        return [e for e in self.errors if not any(a in e for a in self.allowed)]

    def wait_js(self, expression: str, timeout: float = 10.0) -> Any:
        """Poll ``expression`` until it is truthy.

        Playwright's ``wait_for_function`` evaluates a string with eval, which the
        dashboard's Content-Security-Policy forbids; ``evaluate`` is not subject to it.
        """
        deadline = time.monotonic() + timeout
        while True:
            value = self.page.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for: {expression}")
            self.page.wait_for_timeout(50)

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


def insert_verdict(store: Any, verdict: dict[str, Any]) -> None:
    """A repro verdict row written straight into the table, as a store written before verdicts
    needed their reproduction run holds them (``add_repro_verdict`` now re-derives every
    verdict from its two runs); the readers and the UI still show such rows."""
    import sqlalchemy as sa

    from labledger._values import encode_json
    from labledger.store import _schema as s

    with store._tx() as conn:
        conn.execute(
            sa.insert(s.repro_verdicts).values(
                id=verdict["id"],
                original_run_id=verdict["original_run_id"],
                repro_run_id=verdict.get("repro_run_id"),
                verdict=verdict["verdict"],
                reason=verdict.get("reason"),
                tolerance=verdict.get("tolerance"),
                details=encode_json(verdict.get("details") or {}),
                created_at=verdict["created_at"],
            )
        )
