"""Identify processes across pid reuse and reboots, cheaply (no psutil at init)."""

from __future__ import annotations

import os

from ._settings import setting

__all__ = ["boot_id", "host_id", "hostname", "is_this_host", "pid_alive", "process_token"]

_BOOT_ID: str | None = None


def hostname() -> str:
    try:
        return os.uname().nodename  # what socket.gethostname() returns, without importing socket
    except AttributeError:  # not POSIX
        import socket

        return socket.gethostname()


def _hostname_hidden() -> bool:
    return (setting("LABLEDGER_CAPTURE_HOSTNAME") or "").lower() in ("0", "off", "false", "no")


def _anonymous_host() -> str:
    # salted with the boot id, so the token cannot be matched against a list of host names
    import hashlib

    digest = hashlib.sha256(f"{boot_id()}:{hostname()}".encode()).hexdigest()
    return f"anon:{digest[:16]}"


def host_id() -> str:
    """The ``host`` recorded on a run: the hostname, or an opaque token for this host (and
    boot) when ``LABLEDGER_CAPTURE_HOSTNAME=off``; either way this host recognises its runs."""
    return _anonymous_host() if _hostname_hidden() else hostname()


def is_this_host(host: str | None) -> bool:
    """Whether a run's recorded ``host`` is this machine (by name or by anonymous token)."""
    return host is not None and host in (hostname(), _anonymous_host())


def boot_id() -> str:
    global _BOOT_ID
    if _BOOT_ID is None:
        try:
            with open("/proc/sys/kernel/random/boot_id") as fh:
                _BOOT_ID = fh.read().strip()
        except OSError:
            try:
                import psutil

                _BOOT_ID = str(int(psutil.boot_time()))
            except Exception:
                _BOOT_ID = "unknown"
    return _BOOT_ID


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
        # the command name may hold spaces and parentheses: split after the last ')'
        fields = data[data.rindex(b")") + 2 :].split()
        return fields[19].decode()  # field 22 of stat: start time in clock ticks since boot
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil

        return f"{psutil.Process(pid).create_time():.3f}"
    except Exception:
        return None


def process_token(pid: int | None = None) -> str:
    """``boot_id:start_time`` of a process: equal only for the very same process."""
    pid = os.getpid() if pid is None else pid
    return f"{boot_id()}:{_start_time(pid)}"


def pid_alive(pid: int, token: str | None) -> bool:
    """Whether the process that wrote ``token`` is still alive on this host."""
    if token and not token.startswith(boot_id() + ":"):
        return False  # the machine rebooted since
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if token is None:
        return True
    current = process_token(pid)
    if current.endswith(":None"):
        return True
    if current != token:
        return False
    # a zombie (exited, not yet reaped by its parent) counts as dead
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
        return data[data.rindex(b")") + 2 : data.rindex(b")") + 3] != b"Z"
    except OSError:
        return True
