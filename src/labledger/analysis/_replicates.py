"""Replicate sets: runs that differ only in their seed.

Two runs are replicates when they ran the same code (git commit and patch digest), on the
same data (dataset digests) with the same configuration once the seed keys are left out.
Seed keys are the run's recorded seed (``seed``, always left out: it is not part of
``config``) and every config key whose last dotted part is one of :func:`seed_keys`
(``seed``, ``random_state``, ... or ``LABLEDGER_SEED_KEYS``). A replicate set is the
unit of an honest comparison: its spread is the seed noise.

Pure functions over run dicts (the fields of ``labledger show --json``); no store.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._settings import setting
from .._values import flatten

__all__ = [
    "DEFAULT_SEED_KEYS",
    "ReplicateSet",
    "replicate_identity",
    "replicate_key",
    "replicate_sets",
    "seed_keys",
    "without_seed_keys",
]

DEFAULT_SEED_KEYS = ("seed", "random_state", "random_seed", "rng_seed", "seed_value", "manual_seed")


def seed_keys(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Config key names that hold a seed: ``LABLEDGER_SEED_KEYS`` (comma-separated, replaces
    the default; matched case-insensitively against a key's last dotted part) or
    :data:`DEFAULT_SEED_KEYS`."""
    raw = setting("LABLEDGER_SEED_KEYS", environ)
    if raw is None or not raw.strip():
        return DEFAULT_SEED_KEYS
    return tuple(k.strip().lower() for k in raw.split(",") if k.strip())


def _is_seed_key(key: str, keys: Iterable[str]) -> bool:
    return key.rsplit(".", 1)[-1].lower() in keys


def without_seed_keys(
    config: Mapping[str, Any] | None, keys: Sequence[str] | None = None
) -> dict[str, Any]:
    """The flattened config (dotted keys) without its seed keys."""
    ks = tuple(k.lower() for k in (seed_keys() if keys is None else keys))
    return {k: v for k, v in flatten(dict(config or {})).items() if not _is_seed_key(k, ks)}


def _git(run: Mapping[str, Any]) -> Mapping[str, Any]:
    env = run.get("env") or {}
    git = env.get("git") if isinstance(env, Mapping) else None
    return git if isinstance(git, Mapping) else {}


def replicate_identity(run: Mapping[str, Any], keys: Sequence[str] | None = None) -> dict[str, Any]:
    """What must be equal for two runs to be replicates: commit, patch digest, dataset
    digests (sorted by name) and the config without seed keys. The project is part of it
    too: runs of two projects are never replicates."""
    git = _git(run)
    data = sorted(
        (str(d.get("name") or d.get("path") or ""), d.get("sha256"))
        for d in (run.get("datasets") or [])
        if isinstance(d, Mapping)
    )
    return {
        "project": run.get("project"),
        "commit": git.get("commit"),
        "patch_sha256": git.get("diff_sha256"),
        "datasets": [{"name": n, "sha256": h} for n, h in data],
        "config": without_seed_keys(run.get("config"), keys),
    }


def replicate_key(run: Mapping[str, Any], keys: Sequence[str] | None = None) -> str:
    """A short, stable id of the run's replicate set (hex of a SHA-256 of its identity)."""
    return _key_of(replicate_identity(run, keys))


def _key_of(identity: Mapping[str, Any]) -> str:
    # NaN/inf hash as their JSON-ish tokens; only equality matters here
    text = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class ReplicateSet:
    """Runs with one identity; ``runs`` keep the order they were given in."""

    key: str
    identity: dict[str, Any]
    runs: list[Mapping[str, Any]] = field(default_factory=list)

    @property
    def run_ids(self) -> list[str]:
        return [str(r["id"]) for r in self.runs]

    @property
    def seeds(self) -> list[Any]:
        return [r.get("seed") for r in self.runs]


def replicate_sets(
    runs: Iterable[Mapping[str, Any]], keys: Sequence[str] | None = None
) -> list[ReplicateSet]:
    """Group ``runs`` into replicate sets, in the order each set's first run appears."""
    ks = tuple(k.lower() for k in (seed_keys() if keys is None else keys))
    sets: dict[str, ReplicateSet] = {}
    for run in runs:
        ident = replicate_identity(run, ks)
        key = _key_of(ident)
        s = sets.get(key)
        if s is None:
            s = sets[key] = ReplicateSet(key, ident)
        s.runs.append(run)
    return list(sets.values())
