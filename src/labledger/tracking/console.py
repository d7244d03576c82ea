"""The live terminal panel shown while a run trains, and the renderer ``labledger watch`` shares.

The panel never touches ``run.log()``: a daemon thread reads the writer's ``latest``
dict (key -> (step, value), updated by the writer thread) about twice a second and
redraws with ``rich.live.Live``. It is off when stdout is not a terminal, when the CI
variable is set, or with ``LABLEDGER_CONSOLE=off``; ``force=True`` turns it on anyway.
"""

from __future__ import annotations

import collections
import math
import os
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

from .._settings import setting

__all__ = ["ConsolePanel", "console_enabled", "maybe_start_console", "render_panel", "sparkline"]

_BARS = "▁▂▃▄▅▆▇█"
REFRESH_S = 0.5
MAX_POINTS = 40


def sparkline(values: list[float]) -> str:
    """Unicode bars for ``values`` (NaN as a space)."""
    finite = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if not finite:
        return ""
    lo, hi = min(finite), max(finite)
    span = hi - lo
    out = []
    for v in values:
        if not (isinstance(v, (int, float)) and math.isfinite(v)):
            out.append(" ")
        elif span == 0:
            out.append(_BARS[len(_BARS) // 2])
        else:
            out.append(_BARS[min(len(_BARS) - 1, int((v - lo) / span * (len(_BARS) - 1) + 0.5))])
    return "".join(out)


def console_enabled(
    force: bool | None = None, *, stream: Any = None, environ: Mapping[str, str] | None = None
) -> bool:
    """Whether the live panel should run: ``force`` wins; else a TTY, no CI, LABLEDGER_CONSOLE not off."""
    env = os.environ if environ is None else environ
    if force is not None:
        return force
    if (setting("LABLEDGER_CONSOLE", env) or "").lower() in ("off", "0", "false", "no"):
        return False
    if env.get("CI"):
        return False
    out = sys.stdout if stream is None else stream
    try:
        return bool(out.isatty())
    except (AttributeError, ValueError):
        return False


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.5g}" if math.isfinite(v) else str(v)
    return str(v)


def render_panel(
    *,
    run_id: str,
    project: str,
    name: str,
    status: str,
    config: Mapping[str, Any],
    env: Mapping[str, Any],
    seed: Any,
    series: Mapping[str, list[float]],
    latest: Mapping[str, tuple[int, float]],
    steps_per_s: float | None,
    artifacts: int,
    elapsed_s: float,
) -> Any:
    """A rich renderable: header, key config, what was captured, metrics with sparklines."""
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table

    from .._values import SYSTEM_PREFIX, fmt_duration, fmt_metric, is_system_key

    git = env.get("git") or {}
    hw = env.get("hardware") or {}
    gpus = hw.get("gpus") or []
    captured = [
        f"commit {str(git.get('commit'))[:10]}" if git.get("commit") else "no git",
        ("patch " + str(git.get("diff_sha256"))[:8])
        if git.get("diff_sha256")
        else ("clean" if git.get("commit") else ""),
        f"{len(env.get('packages') or {})} packages" if env.get("packages") else "",
        f"{len(gpus)} GPU{'s' if len(gpus) != 1 else ''}" if gpus else "no GPU",
        f"seed {seed}" if seed is not None else "seed not set",
    ]
    cfg_items = list(config.items())[:8]
    cfg = "  ".join(f"{k}={_fmt(v)}" for k, v in cfg_items if not isinstance(v, (dict, list)))
    head = (
        f"[bold]{project}[/] / {name}  [dim]{run_id[:8]}[/]  {status}  {fmt_duration(elapsed_s)}"
        + (f"  {steps_per_s:.1f} steps/s" if steps_per_s else "")
        + (f"  {artifacts} artifacts" if artifacts else "")
    )
    t = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for col in ("metric", "step", "value", "trend"):
        t.add_column(col)
    # the user's metrics; the machine's system/* folded into one line of units after them
    user = sorted(k for k in latest if not is_system_key(k))
    for key in user[:12]:
        step, value = latest[key]
        t.add_row(key, str(step), _fmt(value), sparkline(series.get(key, [])))
    parts: list[Any] = [head, "[dim]" + "  ".join(p for p in captured if p) + "[/]"]
    if cfg:
        parts.append(cfg)
    parts.append(t)
    system = sorted(k for k in latest if is_system_key(k))
    if system:
        parts.append(
            "[dim]system  "
            + "  ".join(
                f"{k[len(SYSTEM_PREFIX) :]} {fmt_metric(k, latest[k][1])}" for k in system[:6]
            )
            + (f"  (+{len(system) - 6} more)" if len(system) > 6 else "")
            + "[/]"
        )
    return Panel(Group(*parts), title="labledger", expand=False)


class ConsolePanel:
    """Redraws a run's panel from a daemon thread; ``stop()`` ends it (also at finish)."""

    def __init__(self, run: Any, *, file: Any = None, refresh_s: float = REFRESH_S) -> None:
        self.run = run
        self.refresh_s = refresh_s
        self._file = file
        self._stop = threading.Event()
        self._series: dict[str, collections.deque[float]] = {}
        self._last_step: dict[str, int] = {}
        self._rate: tuple[float, int] | None = None
        self._steps_per_s: float | None = None
        self.thread = threading.Thread(
            target=self._loop, name=f"labledger-console-{run.id[:8]}", daemon=True
        )

    def start(self) -> ConsolePanel:
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self.thread.is_alive() and threading.current_thread() is not self.thread:
            self.thread.join(timeout=2.0)

    def _sample(self) -> dict[str, tuple[int, float]]:
        latest = dict(getattr(self.run._writer, "latest", {}))  # a copy: the writer mutates it
        for key, (step, value) in latest.items():
            if self._last_step.get(key) != step:
                self._last_step[key] = step
                self._series.setdefault(key, collections.deque(maxlen=MAX_POINTS)).append(
                    float(value)
                )
        now = time.monotonic()
        step_now = int(getattr(self.run, "step", 0))
        if self._rate is not None and now - self._rate[0] >= 1.0:
            self._steps_per_s = (step_now - self._rate[1]) / (now - self._rate[0])
            self._rate = (now, step_now)
        elif self._rate is None:
            self._rate = (now, step_now)
        return latest

    def renderable(self) -> Any:
        latest = self._sample()
        run = self.run
        env: dict[str, Any] = {}
        store = getattr(run._writer, "store", None)
        env_cache = getattr(self, "_env", None)
        if (
            env_cache is None
            and store is not None
            and time.monotonic() - getattr(self, "_env_at", 0.0) > 5.0
        ):
            self._env_at = time.monotonic()
            try:
                env = store.get_run(run.id).get("env") or {}
                if env.get("git") or env.get("packages"):
                    self._env = env
            except Exception:
                env = {}
        else:
            env = env_cache or {}
        return render_panel(
            run_id=run.id,
            project=run.project,
            name=run.name,
            status=run.status,
            config=dict(run.config),
            env=env,
            seed=getattr(run, "_seed", None),
            series={k: list(v) for k, v in self._series.items()},
            latest=latest,
            steps_per_s=self._steps_per_s,
            artifacts=len(getattr(run, "_artifacts", []) or []),
            elapsed_s=time.time() - run.created_at,
        )

    def _loop(self) -> None:
        try:
            from rich.console import Console
            from rich.live import Live

            console = Console(file=self._file) if self._file is not None else Console()
            with Live(
                self.renderable(), console=console, auto_refresh=False, transient=False
            ) as live:
                while not self._stop.wait(self.refresh_s):
                    if getattr(self.run, "_finished", False):
                        break
                    live.update(self.renderable(), refresh=True)
                live.update(self.renderable(), refresh=True)
        except Exception:
            return


def maybe_start_console(run: Any, force: bool | None = None) -> ConsolePanel | None:
    """Start the live panel for ``run`` when enabled (see :func:`console_enabled`)."""
    if not console_enabled(force):
        return None
    import atexit

    panel = ConsolePanel(run).start()
    run._console = panel
    atexit.register(panel.stop)  # restore the terminal before the interpreter exits
    return panel
