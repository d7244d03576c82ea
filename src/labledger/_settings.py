"""Every ``LABLEDGER_*`` environment variable, declared once with its default and meaning.

Code reads them only through :func:`setting` (a test fails on a direct
``os.environ.get("LABLEDGER_...")`` elsewhere, and on a variable missing here or from the
table in docs/settings.md, which ``tests/test_settings.py`` compares with :data:`SETTINGS`).
Values are read when asked for, never cached at import, so a test or a parent process can
change them. Defaults written ``None`` are computed by the code that reads them; the help
says how.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["SETTINGS", "setting"]

# name -> (default, help). Plain tuples: this module loads with ``import labledger``.
SETTINGS: dict[str, tuple[str | None, str]] = {
    name: (default, help)
    for name, default, help in (
        # where runs and artifacts go
        (
            "LABLEDGER_URI",
            None,
            "Store URI: sqlite:///PATH, postgresql://…, http(s)://HOST:PORT, or a path. "
            "Default: .labledger/ledger.db at the root of the git repository (else the current directory).",
        ),
        (
            "LABLEDGER_PROJECT",
            None,
            "Project of new runs. Default: the name of the git repository (or current directory).",
        ),
        (
            "LABLEDGER_GROUP",
            None,
            "Group of new runs, e.g. a sweep (like init(group=...)).",
        ),
        (
            "LABLEDGER_ARTIFACTS_URI",
            None,
            "Artifact storage: a directory, file://, s3://bucket/prefix. "
            "Default: artifacts/ beside an SQLite store, the server for an http(s) store.",
        ),
        (
            "LABLEDGER_S3_ENDPOINT_URL",
            None,
            "S3-compatible endpoint for s3:// artifacts. Default: AWS_ENDPOINT_URL, else AWS.",
        ),
        ("LABLEDGER_TOKEN", None, "API token sent to a tracking server (Bearer)."),
        (
            "LABLEDGER_LITE",
            "on",
            "off: never write an embedded SQLite store through the stdlib sqlite3 path (always SQLAlchemy).",
        ),
        # what a run captures and shows
        ("LABLEDGER_CAPTURE", "on", "off: no environment capture (like init(capture=False))."),
        (
            "LABLEDGER_CAPTURE_HOSTNAME",
            "on",
            "off: leave the host name out of env.os (a salted host id is kept).",
        ),
        (
            "LABLEDGER_SYSTEM_METRICS",
            None,
            "off, on or seconds between system/* samples. Default: every 10 s when capture is on.",
        ),
        (
            "LABLEDGER_CONSOLE",
            "on",
            "off: no live terminal panel and no progress bars.",
        ),
        ("LABLEDGER_QUIET", "off", "1/true/yes/on: no capture warnings on stderr."),
        (
            "LABLEDGER_STRICT",
            None,
            "1: refuse to start a run that cannot be reproduced (0 turns it off). "
            "Default: [tool.labledger] strict in pyproject.toml, else off.",
        ),
        (
            "LABLEDGER_CAPTURE_TIMEOUT",
            None,
            "Seconds finish() waits for environment capture. Default: 60.",
        ),
        (
            "LABLEDGER_CAPTURE_EXCLUDE",
            None,
            "Comma-separated extra patterns (dir/ for a folder) left out of captured patches and snapshots.",
        ),
        (
            "LABLEDGER_CAPTURE_UNTRACKED_MAX",
            None,
            "Largest untracked file included in the captured patch (bytes, or 10MB, 2GB...). Default: 1 MB.",
        ),
        (
            "LABLEDGER_CAPTURE_BUNDLE_MAX",
            None,
            "Largest git bundle stored for commits on no remote branch (bytes, or with kb/mb/gb). Default: 10 MiB.",
        ),
        (
            "LABLEDGER_ENV_ALLOWLIST",
            None,
            "Comma-separated extra environment variable names or globs recorded in env.",
        ),
        (
            "LABLEDGER_SEED_KEYS",
            None,
            "Comma-separated config key names holding a seed, left out when grouping runs into "
            "replicate sets. Default: seed,random_state,random_seed,rng_seed,seed_value,manual_seed.",
        ),
        # how long the engine waits
        (
            "LABLEDGER_FINISH_TIMEOUT",
            "60",
            "Seconds finish() waits for the writer before spilling to disk.",
        ),
        (
            "LABLEDGER_FAILING_GRACE",
            "10",
            "Seconds finish() keeps trying a store that fails every write.",
        ),
        (
            "LABLEDGER_ARTIFACT_TIMEOUT",
            "600",
            "Seconds finish() waits for pending artifact uploads.",
        ),
        ("LABLEDGER_ARTIFACT_RETRIES", "8", "Attempts per artifact upload step."),
        (
            "LABLEDGER_SYNC_TIMEOUT",
            "30",
            "Seconds an http(s) run waits at its end for its spool to reach the server.",
        ),
        # local folders
        (
            "LABLEDGER_CACHE_DIR",
            None,
            "Cache root (artifact copies, data fingerprints, repro envs). "
            "Default: $XDG_CACHE_HOME/labledger, else ~/.cache/labledger.",
        ),
        (
            "LABLEDGER_SPOOL_DIR",
            None,
            "Outbox root (the client spool; what a store did not take yet). "
            "Default: $XDG_CACHE_HOME/labledger/spool, else ~/.cache/labledger/spool.",
        ),
        # set by labledger for its own child processes
        (
            "LABLEDGER_PARENT_RUN",
            None,
            "Id of the run a new run reproduces (set by labledger repro); every run started "
            'with it set is a reproduction (`job_type = "repro"`).',
        ),
        (
            "LABLEDGER_REPRO_SEED",
            None,
            "Seed a reproduction replays when the script drew its own (set by labledger repro).",
        ),
        (
            "LABLEDGER_SEED_OVERRIDE",
            None,
            "Seed used in place of any seed the script passes to init(seed=) or seed_everything() "
            "(set by labledger replicate for each new seed).",
        ),
        (
            "LABLEDGER_REPRO_CONFIG",
            None,
            "Config digest of the run labledger repro re-runs: only a run with that config is linked.",
        ),
        (
            "LABLEDGER_SERVER_BACKEND_URI",
            None,
            "SQL store of labledger server (its --backend-uri). Default: LABLEDGER_URI.",
        ),
        (
            "LABLEDGER_SERVER_ARTIFACTS_URI",
            None,
            "Artifact storage of the server's workers (set from --artifacts-uri).",
        ),
        (
            "LABLEDGER_SERVER_HEARTBEAT_TIMEOUT",
            None,
            "Seconds without a heartbeat before the server marks a run crashed (set from the option).",
        ),
        ("LABLEDGER_SERVER_UI", "1", "0: the server's workers serve the API only."),
    )
}


def setting(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The variable's value when set (even empty), else its declared default.

    ``environ`` replaces ``os.environ`` (tests and injected environments). An undeclared
    name is a KeyError: declare it in :data:`SETTINGS` and docs/settings.md first.
    """
    default = SETTINGS[name][0]
    env = os.environ if environ is None else environ
    return env.get(name, default)
