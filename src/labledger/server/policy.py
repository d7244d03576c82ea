"""Per-project run policy, enforced by the server: runs must carry a git commit, a seed, a dataset.

An admin sets it (``labledger server policy PROJECT --require git --require seed`` or
``PUT /api/v1/projects/{project}/policy``); it lives in ``projects.settings`` under
``"policy"``. When it is checked:

- at run creation nothing is required yet: the environment (git) is captured in the
  background and arrives in later batches, the seed and datasets too. The answer to
  ``POST /runs`` names the policy so the client says at ``init()`` what will be required.
  A run created directly as ``finished`` (a raw API call) is checked at once and refused
  (422 ``policy_violation``) when something is missing;
- when a batch marks the run ``finished`` (its own route and ``POST /replay``: raw API
  calls cannot bypass it), the run as it will be after the batch is checked. When
  something is missing the batch is still stored (no point is lost) but the run is
  recorded as ``failed`` with the error ``refused by the policy of project …: missing …``,
  and the answer carries ``policy: {refused: true, missing: [...]}`` that the client prints
  at ``finish()``. Failed, killed and crashed runs are not checked.
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa

from .._exceptions import UsageError
from ..store import _schema as s

__all__ = [
    "REQUIREMENTS",
    "check_requirements",
    "get_policy",
    "missing_for",
    "refusal_message",
    "set_policy",
]

# name -> what a run must carry (as said in messages)
REQUIREMENTS: dict[str, str] = {
    "git": "a git commit (env.git.commit)",
    "seed": "a seed (labledger.init(seed=...) or a seeded framework)",
    "dataset": "a dataset fingerprint (run.log_dataset(path))",
}


def check_requirements(require: list[str]) -> list[str]:
    """The requirement names, validated and in a stable order; UsageError for unknown ones."""
    unknown = sorted(set(require) - set(REQUIREMENTS))
    if unknown:
        raise UsageError(
            f"unknown policy requirement(s) {', '.join(unknown)}; known: {', '.join(REQUIREMENTS)}"
        )
    return [r for r in REQUIREMENTS if r in set(require)]


def get_policy(store: Any, project: str) -> list[str]:
    """What runs of ``project`` must carry (empty: no policy, or a store without projects)."""
    engine = getattr(store, "engine", None)
    if engine is None:
        return []
    with engine.connect() as conn:
        settings = conn.execute(
            sa.select(s.projects.c.settings).where(s.projects.c.name == project)
        ).scalar_one_or_none()
    settings = s.load_json(settings) or {}
    policy = settings.get("policy") if isinstance(settings, dict) else None
    if not isinstance(policy, dict):
        return []
    return [r for r in policy.get("require", []) if r in REQUIREMENTS]


def set_policy(store: Any, project: str, require: list[str]) -> list[str]:
    """Store the policy of ``project`` (created when new); returns the requirement names."""
    require = check_requirements(require)
    with store._tx() as conn:
        cur = conn.execute(
            sa.select(s.projects.c.settings).where(s.projects.c.name == project)
        ).first()
        if cur is None:
            conn.execute(
                sa.insert(s.projects).values(
                    name=project,
                    created_at=time.time(),
                    settings={"policy": {"require": require}},
                )
            )
        else:
            settings = dict(s.load_json(cur[0]) or {})
            settings["policy"] = {"require": require}
            conn.execute(
                sa.update(s.projects).where(s.projects.c.name == project).values(settings=settings)
            )
    return require


def missing_for(run: dict[str, Any], require: list[str]) -> list[str]:
    """The requirements ``run`` (a run record: env, seed, datasets) does not meet."""
    out = []
    env = run.get("env") or {}
    git = env.get("git") if isinstance(env, dict) else None
    if "git" in require and not (isinstance(git, dict) and git.get("commit")):
        out.append("git")
    if "seed" in require and run.get("seed") is None:
        out.append("seed")
    datasets = run.get("datasets") or []
    if "dataset" in require and not any(isinstance(d, dict) and d.get("sha256") for d in datasets):
        out.append("dataset")
    return out


def refusal_message(project: str, missing: list[str]) -> str:
    return f"refused by the policy of project {project!r}: missing " + ", ".join(
        REQUIREMENTS[m] for m in missing
    )
