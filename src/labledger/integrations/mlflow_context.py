"""labledger's capture for runs started by the unchanged ``mlflow`` client.

Registered on MLflow's ``mlflow.run_context_provider`` entry point (pyproject.toml): with
labledger installed beside ``mlflow``, ``mlflow.start_run()`` asks this provider for tags,
and it answers labledger's capture of the process (git commit, branch, remote and the
uncommitted patch, packages, command, Python, OS, hardware, the seed of
``labledger.seed_everything``) as ``labledger.*`` tags. A labledger server folds them back
into the run's ``env`` (the patch into its blobs), so a run made through MLflow can be
reproduced and meets a project policy like one made by ``labledger.init()``. Against
another tracking server the tags are ordinary tags.

Capture never stops a run: any failure answers no tags. ``LABLEDGER_MLFLOW_CAPTURE=0``
switches the provider off.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LabledgerRunContext"]


class LabledgerRunContext:
    """An MLflow ``RunContextProvider`` (duck-typed: ``in_context()`` and ``tags()``)."""

    def in_context(self) -> bool:
        from .._settings import setting

        return (setting("LABLEDGER_MLFLOW_CAPTURE") or "1").strip().lower() not in (
            "0",
            "false",
            "no",
            "off",
        )

    def tags(self) -> dict[str, str]:
        try:
            return _capture_tags()
        except Exception:  # tracking never breaks the training script
            return {}


def _capture_tags() -> dict[str, str]:
    import hashlib

    from .._mlflow_map import capture_tags
    from ..capture import capture_env

    patches: dict[str, bytes] = {}

    def keep(data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        patches[digest] = data
        return digest

    env: dict[str, Any] = capture_env(put_blob=keep)
    git = env.get("git") or {}
    patch = patches.get(str(git.get("diff_sha256"))) if isinstance(git, dict) else None
    if isinstance(git, dict):
        git.pop("bundle", None)  # unpushed commits stay on this machine (their blob is not sent)
    env.pop("code_snapshot", None)
    env.pop("notebook", None)
    return capture_tags(env, patch)
