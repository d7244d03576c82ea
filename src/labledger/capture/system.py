"""Background sampler of system metrics, logged as ``system/*`` series.

One daemon thread per run wakes every ``interval`` seconds (default 10, ``init(
system_metrics=...)`` or env ``LABLEDGER_SYSTEM_METRICS=off|<seconds>``) and logs
through ``run._log_internal`` with its own sample counter as the step, so the user's
step counter is untouched. A last sample is taken when the run finishes, so even a
short run has one point. Series:

- ``system/cpu_percent`` (whole machine), ``system/proc_cpu_percent`` (this process,
  100 = one core), ``system/proc_rss_bytes``, ``system/mem_used_percent``;
- ``system/disk_read_bytes_per_s``, ``system/disk_write_bytes_per_s``,
  ``system/net_sent_bytes_per_s``, ``system/net_recv_bytes_per_s``;
- per GPU ``i`` through NVML: ``system/gpu{i}/util``, ``system/gpu{i}/mem_used_bytes``,
  ``system/gpu{i}/mem_percent``, ``system/gpu{i}/temp_c``, ``system/gpu{i}/power_w``.

A probe that fails is dropped from later samples; the sampler never raises.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from .._settings import setting

if TYPE_CHECKING:
    from . import Run

__all__ = ["DEFAULT_INTERVAL", "SystemSampler", "resolve_interval", "start_sampler"]

DEFAULT_INTERVAL = 10.0
MIN_INTERVAL = 0.05
PRIME_WAIT_S = 0.5  # how long finish() waits for a sampler that is still starting


def resolve_interval(option: bool | float | None, *, capture: bool = True) -> float | None:
    """Seconds between samples, or None when off.

    ``option``: False -> off, True -> default, a number -> that many seconds, None ->
    env ``LABLEDGER_SYSTEM_METRICS`` (``off``/``on``/seconds), else the default
    (off when ``capture`` is off).
    """
    if option is False:
        return None
    if option is True:
        return DEFAULT_INTERVAL
    if option is not None:
        value = float(option)
        if not value > 0:
            from .._exceptions import UsageError

            raise UsageError(f"system_metrics interval must be > 0 seconds, got {option!r}")
        return max(value, MIN_INTERVAL)
    env = (setting("LABLEDGER_SYSTEM_METRICS") or "").strip().lower()
    if env in ("off", "0", "false", "no"):
        return None
    if env in ("", "on", "true", "yes", "1"):
        return DEFAULT_INTERVAL if (capture or env) else None
    try:
        value = float(env)
    except ValueError:
        return DEFAULT_INTERVAL
    return max(value, MIN_INTERVAL) if value > 0 else None


class SystemSampler(threading.Thread):
    def __init__(self, run: Run, interval: float) -> None:
        super().__init__(name=f"labledger-system-{run.id[:8]}", daemon=True)
        self.run_ref = run
        self.interval = interval
        self.samples = 0
        self._stop_event = threading.Event()
        self._lock = threading.Lock()
        self._psutil: Any = None
        self._proc: Any = None
        self._nvml: Any = None
        self._gpus: list[Any] = []
        self._last_t = 0.0
        self._last_disk: tuple[int, int] | None = None
        self._last_net: tuple[int, int] | None = None
        self._broken: set[str] = set()
        self._primed = threading.Event()
        self._stopped_early = False

    # -- set-up ----------------------------------------------------------------------

    def _prime(self) -> None:
        try:
            import psutil

            self._psutil = psutil
            self._proc = psutil.Process()
            self._proc.cpu_percent(None)
            psutil.cpu_percent(None)
            self._last_disk = self._disk()
            self._last_net = self._net()
        except Exception:
            self._psutil = None
        self._last_t = time.monotonic()
        from .hardware import nvidia_present

        try:
            if not nvidia_present():
                raise ImportError("no NVIDIA driver")
            import pynvml

            pynvml.nvmlInit()
            self._nvml = pynvml
            self._gpus = [
                pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())
            ]
        except Exception:  # no NVML, no driver or no GPU: no GPU series
            self._nvml = None
            self._gpus = []

    def _disk(self) -> tuple[int, int] | None:
        d = self._psutil.disk_io_counters()
        return (int(d.read_bytes), int(d.write_bytes)) if d else None

    def _net(self) -> tuple[int, int] | None:
        n = self._psutil.net_io_counters()
        return (int(n.bytes_sent), int(n.bytes_recv)) if n else None

    # -- sampling --------------------------------------------------------------------

    def _probe(self, name: str, out: dict[str, float], fn: Any) -> None:
        if name in self._broken:
            return
        try:
            fn(out)
        except Exception:
            self._broken.add(name)

    def sample(self) -> dict[str, float]:
        out: dict[str, float] = {}
        now = time.monotonic()
        dt = max(now - self._last_t, 1e-6)
        self._last_t = now
        ps = self._psutil
        if ps is not None:

            def cpu(o: dict[str, float]) -> None:
                o["system/cpu_percent"] = float(ps.cpu_percent(None))
                o["system/proc_cpu_percent"] = float(self._proc.cpu_percent(None))

            def mem(o: dict[str, float]) -> None:
                o["system/proc_rss_bytes"] = float(self._proc.memory_info().rss)
                o["system/mem_used_percent"] = float(ps.virtual_memory().percent)

            def disk(o: dict[str, float]) -> None:
                cur = self._disk()
                if cur is not None and self._last_disk is not None:
                    o["system/disk_read_bytes_per_s"] = max(0, cur[0] - self._last_disk[0]) / dt
                    o["system/disk_write_bytes_per_s"] = max(0, cur[1] - self._last_disk[1]) / dt
                self._last_disk = cur

            def net(o: dict[str, float]) -> None:
                cur = self._net()
                if cur is not None and self._last_net is not None:
                    o["system/net_sent_bytes_per_s"] = max(0, cur[0] - self._last_net[0]) / dt
                    o["system/net_recv_bytes_per_s"] = max(0, cur[1] - self._last_net[1]) / dt
                self._last_net = cur

            self._probe("cpu", out, cpu)
            self._probe("mem", out, mem)
            self._probe("disk", out, disk)
            self._probe("net", out, net)
        nv = self._nvml
        for i, h in enumerate(self._gpus):

            def gpu(o: dict[str, float], i: int = i, h: Any = h) -> None:
                p = f"system/gpu{i}/"
                o[p + "util"] = float(nv.nvmlDeviceGetUtilizationRates(h).gpu)
                m = nv.nvmlDeviceGetMemoryInfo(h)
                o[p + "mem_used_bytes"] = float(m.used)
                o[p + "mem_percent"] = 100.0 * float(m.used) / float(m.total or 1)
                o[p + "temp_c"] = float(nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU))
                try:
                    o[p + "power_w"] = float(nv.nvmlDeviceGetPowerUsage(h)) / 1000.0
                except Exception:  # some boards do not report power
                    pass

            self._probe(f"gpu{i}", out, gpu)
        return out

    def _emit(self) -> None:
        with self._lock:
            data = self.sample()
            if data:
                self.run_ref._log_internal(data, self.samples)
                self.samples += 1

    def run(self) -> None:
        try:
            self._prime()
            self._primed.set()
            while not self._stop_event.wait(self.interval):
                self._emit()
            if self._stopped_early:  # stop() did not wait for us: release NVML here
                self._shutdown_nvml()
        except Exception:
            pass  # the sampler must never disturb training

    def _shutdown_nvml(self) -> None:
        if self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except Exception:
                pass
            self._nvml = None
            self._gpus = []

    def stop(self, final_sample: bool = True, timeout: float = 2.0) -> None:
        """Stop the thread; take one last sample so short runs still have a point.

        A sampler still priming (importing psutil, usually 20-30 ms after init()) is
        waited for up to ``PRIME_WAIT_S`` so that a run of a fraction of a second still
        gets its one sample; past that (a very busy machine) finish() does not pay for
        it: the run has no system/* series and the thread stops on its own.
        """
        if not self._primed.wait(PRIME_WAIT_S):
            self._stopped_early = True
            self._stop_event.set()
            return
        self._stop_event.set()
        self.join(timeout)
        # the last sample: always for a run that has none yet (a run shorter than the
        # interval still gets one point); otherwise only if the periodic one is not fresh
        if (
            final_sample
            and self._last_t
            and (
                self.samples == 0 or time.monotonic() - self._last_t >= min(self.interval, 1.0) / 2
            )
        ):
            try:
                self._emit()
            except Exception:
                pass
        if self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except Exception:
                pass
            self._nvml = None
            self._gpus = []


def start_sampler(
    run: Run, option: bool | float | None, *, capture: bool = True
) -> SystemSampler | None:
    interval = resolve_interval(option, capture=capture)
    if interval is None:
        return None
    sampler = SystemSampler(run, interval)
    sampler.start()
    return sampler
