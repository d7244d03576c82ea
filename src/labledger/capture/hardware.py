"""CPU, memory and GPUs of the machine a run executes on.

GPUs are read through NVML (``pynvml`` from the optional ``nvidia-ml-py``); without
it, or without a GPU or driver, the list is empty and nothing is printed. torch's
CUDA and cuDNN versions are recorded only when the training script has already
imported torch (importing it here would cost seconds).
"""

from __future__ import annotations

import os
import sys
from typing import Any

__all__ = ["capture_hardware", "cpu_model", "nvidia_present", "nvml_gpus"]


def cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Processor", "cpu model"):
                    return value.strip() or None
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine() or None


def _memory_bytes() -> int | None:
    # what psutil.virtual_memory().total reads (MemTotal), without importing psutil
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        pass
    try:
        import psutil

        return int(psutil.virtual_memory().total)
    except Exception:
        return None


def _physical_cores() -> int | None:
    # Linux: distinct (physical id, core id) pairs of /proc/cpuinfo, as psutil counts them
    try:
        cores: set[tuple[str, str]] = set()
        phys = core = ""
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "physical id":
                    phys = value.strip()
                elif key == "core id":
                    core = value.strip()
                elif not key and (phys or core):
                    cores.add((phys, core))
                    phys = core = ""
        if phys or core:
            cores.add((phys, core))
        if cores:
            return len(cores)
    except OSError:
        pass
    try:
        import psutil

        n = psutil.cpu_count(logical=False)
        return int(n) if n else None
    except Exception:
        return None


def nvidia_present() -> bool:
    """Whether an NVIDIA driver may be there (else pynvml's import and init are skipped)."""
    if not sys.platform.startswith("linux"):
        return True
    return os.path.exists("/proc/driver/nvidia") or os.path.exists("/dev/nvidiactl")


def _text(v: Any) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def nvml_gpus() -> tuple[list[dict[str, Any]], str | None]:
    """(GPUs, CUDA driver version) through NVML; ``([], None)`` when unavailable."""
    if not nvidia_present():
        return [], None
    try:
        import pynvml
    except ImportError:
        return [], None
    try:
        pynvml.nvmlInit()
    except Exception:  # no driver / no GPU: an empty list, not a warning
        return [], None
    try:
        driver = _text(pynvml.nvmlSystemGetDriverVersion())
        cuda = None
        try:
            v = int(pynvml.nvmlSystemGetCudaDriverVersion())
            cuda = f"{v // 1000}.{(v % 1000) // 10}"
        except Exception:
            pass
        gpus = []
        for i in range(int(pynvml.nvmlDeviceGetCount())):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            gpu: dict[str, Any] = {
                "index": i,
                "name": _text(pynvml.nvmlDeviceGetName(h)),
                "memory_bytes": int(pynvml.nvmlDeviceGetMemoryInfo(h).total),
                "driver": driver,
                "uuid": _text(pynvml.nvmlDeviceGetUUID(h)),
            }
            try:
                major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(h)
                gpu["compute_capability"] = f"{major}.{minor}"
            except Exception:
                pass
            gpus.append(gpu)
        return gpus, cuda
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass


def capture_hardware() -> dict[str, Any]:
    gpus, nvml_cuda = nvml_gpus()
    out: dict[str, Any] = {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_physical": _physical_cores(),
        "memory_bytes": _memory_bytes(),
        "gpus": gpus,
        "cuda": None,
        "cuda_driver": nvml_cuda,
        "cudnn": None,
    }
    if hasattr(os, "sched_getaffinity"):
        out["cpu_affinity"] = len(os.sched_getaffinity(0))
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            out["torch"] = str(torch.__version__)
            out["cuda"] = getattr(torch.version, "cuda", None)
            cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
            out["cudnn"] = str(cudnn) if cudnn is not None else None
        except Exception:  # a half-imported torch must not stop capture
            pass
    if out["cuda"] is None:
        out["cuda"] = nvml_cuda
    return out
