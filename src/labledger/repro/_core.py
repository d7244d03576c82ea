"""Plan and carry out a reproduction: code, environment, data, run, verdict."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .._exceptions import ReproError, UsageError, VerdictRefusedError
from .._settings import setting
from .._values import config_digest
from ..store import ReproVerdicts, TokenBearer, is_reproduction
from ._code import CodeSource, code_source, prepare_code, remove_code
from ._command import REDACTED, Command, recorded_command
from ._data import DataCheck, find_datasets
from ._drift import current_environment, drift, drift_lines
from ._fresh import FreshEnv, FreshSpec, build_fresh_env, fresh_spec
from ._verdict import (
    COULD_NOT_RERUN,
    NOT_REPRODUCED,
    NOT_REPRODUCIBLE,
    ended_early,
    history_value_at,
    judge,
)

__all__ = ["ReproPlan", "ReproResult", "plan_repro", "reproduce"]

Echo = Callable[[str], None]


def _silent(_msg: str) -> None:
    return None


@dataclass
class ReproPlan:
    """Everything repro will do, decided before anything is written."""

    run: dict[str, Any]
    store_uri: str
    code: CodeSource
    command: Command
    checkout: Path
    keep_checkout: bool
    env_mode: str
    seed: int | None
    env_vars: dict[str, str]
    data: list[DataCheck] = field(default_factory=list)
    drift: dict[str, Any] = field(default_factory=dict)
    drift_lines: list[str] = field(default_factory=list)
    fresh: FreshSpec | None = None
    token: str | None = field(default=None, repr=False)  # for the re-run's LABLEDGER_TOKEN
    recorded_env: bool = True
    blockers: list[str] = field(default_factory=list)  # stop unless --force
    fatal: list[str] = field(default_factory=list)  # stop even with --force
    caveats: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        r = self.run
        out = [f"reproduce run {r['id'][:12]} ({r['project']}/{r['name']}, {r['status']})"]
        out.append(f"code:     {self.code.describe()}")
        out.append(
            f"          into {self.checkout}"
            + ("" if self.keep_checkout else " (removed afterwards)")
        )
        out.append(f"command:  {self.command.describe()}")
        out.append(f"cwd:      <checkout>/{self.command.rel_cwd}")
        out.append(f"seed:     {self.seed if self.seed is not None else 'none recorded'}")
        if self.env_vars:
            out.append(f"env vars: {', '.join(sorted(self.env_vars))}")
        if self.env_mode == "fresh" and self.fresh is not None:
            f = self.fresh
            out.append(
                f"env:      fresh virtual environment {f.key} (Python {f.python_minor or '?'}, "
                f"{len(f.requirements)} pinned package(s))"
            )
            for name, rel in f.from_checkout.items():
                out.append(f"          {name}: from the checkout ({rel})")
            for name, why in f.not_installable.items():
                out.append(f"          cannot install {name}: {why}")
        else:
            out.append("env:      current interpreter " + sys.executable)
            if not self.recorded_env:
                out.append("drift:    not checked: the run recorded no environment")
            elif self.drift_lines:
                out.append(
                    f"drift:    {len(self.drift_lines)} difference(s) from the recorded environment"
                )
                out.extend(f"          {ln}" for ln in self.drift_lines)
            else:
                out.append("drift:    none in Python, packages, OS and hardware")
        for d in self.data:
            where = f" at {d.path}"
            if d.status == "ok":
                where = (
                    ""
                    if d.source == "recorded path"
                    else f" (same sha256 in {d.source}: {d.found})"
                )
            out.append(f"data:     {d.name}: {d.status}{where}")
        for c in self.caveats:
            out.append(f"caveat:   {c}")
        for b in self.fatal:
            out.append(f"cannot:   {b}")
        for b in self.blockers:
            out.append(f"blocked:  {b} (--force runs it anyway)")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run["id"],
            "code": asdict(self.code),
            "command": self.command.describe(),
            "rel_cwd": self.command.rel_cwd,
            "checkout": str(self.checkout),
            "keep_checkout": self.keep_checkout,
            "env_mode": self.env_mode,
            "seed": self.seed,
            "env_vars": sorted(self.env_vars),
            "data": [asdict(d) for d in self.data],
            "drift": self.drift_lines,
            "fresh": asdict(self.fresh) if self.fresh else None,
            "blockers": self.blockers,
            "fatal": self.fatal,
            "caveats": self.caveats,
        }


@dataclass
class ReproResult:
    plan: ReproPlan
    verdict: str | None = None  # None for --dry-run
    reason: str | None = None
    repro_run_id: str | None = None
    metrics: list[dict[str, Any]] = field(default_factory=list)
    verdict_id: str | None = None
    exit_code: int | None = None
    notes: list[str] = field(default_factory=list)
    fresh_env: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.verdict in ("reproduced", "reproduced-within-tolerance")

    def to_dict(self) -> dict[str, Any]:
        return {
            "original_run_id": self.plan.run["id"],
            "repro_run_id": self.repro_run_id,
            "verdict": self.verdict,
            "reason": self.reason,
            "metrics": self.metrics,
            "verdict_id": self.verdict_id,
            "exit_code": self.exit_code,
            "notes": self.notes,
            "fresh_env": self.fresh_env,
            "plan": self.plan.to_dict(),
        }


def _repo_root(cwd: str | os.PathLike[str] | None = None) -> str | None:
    """The git repository root of ``cwd`` (default: the current directory), else None."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
        )
    except OSError:
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _artifact_fetcher(store: Any) -> Callable[[str, str], Path | None]:
    """``fetch(sha256, name)``: a verified local copy of the artifact store's blob, else None."""

    def fetch(sha: str, name: str) -> Path | None:
        from ..artifacts import open_blob_store
        from ..capture.data import cache_dir

        blobs = open_blob_store(None, store.uri)
        if not blobs.has(sha):
            return None
        dest = cache_dir().parent / "data" / sha / (Path(name).name or "data")
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            blobs.download(sha, dest)
        return dest

    return fetch


def _find_data(
    store: Any, run: dict[str, Any], code: CodeSource, data_dirs: Sequence[str | os.PathLike[str]]
) -> list[DataCheck]:
    roots = [r for r in (_repo_root(), code.root) if r and Path(r).is_dir()]
    recorded_root = ((run.get("env") or {}).get("git") or {}).get("root")
    return find_datasets(
        run.get("datasets") or [],
        recorded_root=recorded_root,
        roots=list(dict.fromkeys(roots)),
        data_dirs=data_dirs,
        artifact=_artifact_fetcher(store),
    )


def _seed_of(run: dict[str, Any]) -> int | None:
    seed = run.get("seed")
    if seed is None:
        seed = ((run.get("env") or {}).get("seed") or {}).get("seed")
    return int(seed) if isinstance(seed, int) and not isinstance(seed, bool) else None


def plan_repro(
    store: Any,
    ref: str,
    *,
    in_dir: str | os.PathLike[str] | None = None,
    env_mode: str = "current",
    data_dirs: Sequence[str | os.PathLike[str]] = (),
) -> ReproPlan:
    """Decide how run ``ref`` would be reproduced; reads the store, the data and the repository only.

    Datasets are found by content (:mod:`labledger.repro._data`): the recorded path, the
    same path relative to the repository root, ``data_dirs``, then the artifact store."""
    if env_mode not in ("current", "fresh"):
        raise UsageError(f"env must be 'current' or 'fresh', not {env_mode!r}")
    run = store.get_run(ref)
    env = run.get("env") or {}
    code = code_source(run)
    snapshot_files = [
        f.get("path") for f in (env.get("code_snapshot") or {}).get("files") or [] if f.get("path")
    ]
    snap_base = (env.get("code_snapshot") or {}).get("root") or (env.get("command") or {}).get(
        "cwd"
    )
    base = code.root if code.kind == "git" else snap_base
    command = recorded_command(env, base=base, snapshot_files=snapshot_files)
    if in_dir is not None:
        checkout, keep = Path(in_dir).expanduser().resolve(), True
        if checkout.exists() and (not checkout.is_dir() or any(checkout.iterdir())):
            raise UsageError(f"--in {checkout}: choose a new or empty directory")
    else:
        checkout = (
            Path(tempfile.gettempdir()) / f"labledger-repro-{run['id'][:8]}-{uuid.uuid4().hex[:6]}"
        )
        keep = False
    plan = ReproPlan(
        run=run,
        store_uri=store.uri,
        code=code,
        command=command,
        checkout=checkout,
        keep_checkout=keep,
        env_mode=env_mode,
        seed=_seed_of(run),
        env_vars={str(k): str(v) for k, v in (env.get("env_vars") or {}).items()},
    )
    plan.fatal += code.problems if code.kind == "none" or not code.method else []
    plan.caveats += [p for p in code.problems if p not in plan.fatal]
    plan.fatal += command.problems
    plan.caveats += [w for w in command.warnings if REDACTED not in w]
    if any(REDACTED in w for w in command.warnings):
        plan.blockers.append("some recorded arguments were redacted as secrets")
    if plan.seed is None:
        plan.blockers.append(
            "the original run recorded no seed, so its randomness cannot be replayed "
            "(seed it with labledger.seed_everything(seed) or labledger.init(seed=...))"
        )
    seed_info = env.get("seed") or {}
    if (
        plan.seed is not None
        and any(s in ("torch", "torch.cuda") for s in seed_info.get("seeded") or [])
        and not seed_info.get("deterministic")
    ):
        plan.caveats.append(
            "torch ran without deterministic algorithms; GPU results may differ run to run"
        )
    plan.data = _find_data(store, run, code, data_dirs)
    for d in plan.data:
        if d.status != "ok":
            plan.blockers.append(
                f"dataset {d.name} is {d.status} at {d.path}, and no file with its sha256 was "
                "found in the repository, the --data folders or the artifact store"
            )
    if ended_early(run):
        steps = [
            int(m["last_step"])
            for k, m in (run.get("metrics") or {}).items()
            if not k.startswith("system/")
            and isinstance(m, dict)
            and m.get("last_step") is not None
        ]
        at = f" (last step {max(steps)})" if steps else ""
        plan.caveats.append(
            f"the original {run['status']}{at}: it is compared only over the steps it recorded, "
            "the reproduction at those same steps"
        )
    if env_mode == "fresh":
        plan.fresh = fresh_spec(env, code.root if code.kind == "git" else None)
        for name, why in plan.fresh.not_installable.items():
            plan.blockers.append(f"package {name} cannot be installed: {why}")
    elif env.get("packages") or env.get("python"):
        plan.drift = drift(env, current_environment())
        plan.drift_lines = drift_lines(plan.drift)
    else:
        plan.recorded_env = False
        plan.caveats.append("the run recorded no environment to compare with")
    return plan


def _child_env(plan: ReproPlan, fresh: FreshEnv | None) -> dict[str, str]:
    env = dict(os.environ)
    for k in [
        k
        for k in env
        if k.startswith("LABLEDGER_") and k not in ("LABLEDGER_CACHE_DIR", "LABLEDGER_CONSOLE")
    ]:
        del env[k]
    env.update(plan.env_vars)
    paths: list[str] = []
    if plan.fresh is not None:
        for rel in plan.fresh.from_checkout.values():
            d = plan.checkout / rel
            paths.append(str(d / "src" if (d / "src").is_dir() else d))
    if fresh is not None:
        env.pop("PYTHONHOME", None)
        env["VIRTUAL_ENV"] = str(fresh.path)
        env["PATH"] = str(fresh.python.parent) + os.pathsep + env.get("PATH", "")
        env["PYTHONPATH"] = os.pathsep.join(paths)  # never the host's PYTHONPATH
        if not paths:
            del env["PYTHONPATH"]
    elif paths:
        env["PYTHONPATH"] = os.pathsep.join([*paths, *filter(None, [env.get("PYTHONPATH")])])
    if plan.seed is not None:
        env["PYTHONHASHSEED"] = str(plan.seed)
        env["LABLEDGER_REPRO_SEED"] = str(plan.seed)
    env["LABLEDGER_URI"] = plan.store_uri
    if plan.token:  # a token-protected server: the re-run must be able to write
        env["LABLEDGER_TOKEN"] = plan.token
    env["LABLEDGER_PARENT_RUN"] = plan.run["id"]
    if plan.run.get("config"):
        env["LABLEDGER_REPRO_CONFIG"] = config_digest(plan.run["config"])
    env["LABLEDGER_PROJECT"] = plan.run["project"]
    return env


def _place_data(plan: ReproPlan) -> list[str]:
    """Put every dataset found by content where the re-run reads it.

    A dataset recorded inside the repository but not in the checkout (an ignored
    ``data/`` folder) is linked in at its relative path; a recorded command argument
    naming a dataset's recorded path that is gone names the place it was found instead.
    """
    notes: list[str] = []
    for d in plan.data:
        if d.status != "ok" or not d.found:
            continue
        found = Path(d.found)
        if d.rel:
            target = plan.checkout / d.rel
            if not target.exists() and not target.is_symlink():
                target.parent.mkdir(parents=True, exist_ok=True)
                target.symlink_to(found.resolve(), target_is_directory=found.is_dir())
                notes.append(f"linked dataset {d.name} into the checkout ({d.rel})")
            if target.exists():
                found = target
        if d.found != d.path and d.path in plan.command.args:
            plan.command.args = [str(found) if a == d.path else a for a in plan.command.args]
            notes.append(f"dataset {d.name}: the argument {d.path} is now {found}")
    return notes


def _find_repro_run(
    store: Any, original: dict[str, Any], since: float
) -> tuple[dict[str, Any] | None, str | None]:
    """The re-run's run that reproduces ``original``, and a note when it had to be chosen.

    A process that makes several runs (a grid, a sweep, a loop over configs) gives
    several candidates: the one with the original's config wins, then the one with its
    name; the others are the process's other runs, not reproductions of this one.
    """
    found = [
        dict(r)
        for r in store.list_runs(limit=500)
        if r.get("parent_run_id") == original["id"]
        and is_reproduction(r)
        and r["created_at"] >= since - 1.0
    ]
    found.sort(key=lambda r: r["created_at"])
    if len(found) <= 1:
        return (found[0] if found else None), None
    want = config_digest(original.get("config") or {})
    for how, pick in (
        ("config", [r for r in found if config_digest(r.get("config") or {}) == want]),
        ("name", [r for r in found if r.get("name") == original.get("name")]),
    ):
        if pick:
            return pick[0], f"the re-run made {len(found)} runs; matched by {how}"
    return found[0], (
        f"the re-run made {len(found)} runs and none has the original's config or name; "
        "compared with the first"
    )


def _store_verdict(store: Any, result: ReproResult, tolerance: float, force: bool) -> None:
    plan = result.plan
    details = {
        "metrics": result.metrics,
        "blockers": plan.blockers,
        "fatal": plan.fatal,
        "caveats": plan.caveats,
        "drift": plan.drift_lines,
        "data": [asdict(d) for d in plan.data],
        "code": plan.code.describe(),
        "command": plan.command.describe(),
        "env_mode": plan.env_mode,
        "seed": plan.seed,
        "exit_code": result.exit_code,
        "fresh_env": result.fresh_env,
        "forced": force and bool(plan.blockers),
    }
    if result.verdict == COULD_NOT_RERUN:
        result.notes.append("a re-run that could not be carried out is not stored as a verdict")
        return
    if not result.repro_run_id:
        result.notes.append(
            "nothing was run, so no verdict is stored (a verdict exists only with its "
            "reproduction run)"
        )
        return
    if not isinstance(store, ReproVerdicts):  # a server that predates verdicts
        result.notes.append(f"the store {store.uri} cannot keep repro verdicts; it was not stored")
        return
    try:
        result.verdict_id = store.add_repro_verdict(
            {
                "original_run_id": plan.run["id"],
                "repro_run_id": result.repro_run_id,
                "verdict": result.verdict,
                "reason": result.reason,
                "tolerance": tolerance,
                "details": details,
            }
        )
    except VerdictRefusedError as exc:  # the runs changed under us, or a stricter server
        result.notes.append(f"the store did not keep the verdict: {exc.reason}")


def reproduce(
    store: Any,
    ref: str,
    *,
    in_dir: str | os.PathLike[str] | None = None,
    env_mode: str = "current",
    tolerance: float = 0.0,
    dry_run: bool = False,
    force: bool = False,
    find_links: Sequence[str] = (),
    no_index: bool = False,
    index_url: str | None = None,
    keep: bool = False,
    timeout: float | None = None,
    token: str | None = None,
    data_dirs: Sequence[str | os.PathLike[str]] = (),
    echo: Echo = _silent,
    stdout: Any = None,
) -> ReproResult:
    """Re-run run ``ref`` from its recorded code, environment, data and seed, and judge the result.

    The verdict is stored (linked to both runs) unless ``dry_run`` or the re-run could
    not be carried out (``could-not-rerun``: a setup or tool failure, which says nothing
    about the run) or nothing was run (a verdict exists only with its reproduction run).
    ``data_dirs`` are folders where datasets are looked for by content (``--data``).
    ``stdout`` is where the command's output goes (inherited by default).
    ``token`` is passed to the re-run as ``LABLEDGER_TOKEN`` (default: the store's own
    token, else ``LABLEDGER_TOKEN``).
    """
    if tolerance < 0:
        raise UsageError(f"tolerance must be >= 0, got {tolerance}")
    plan = plan_repro(store, ref, in_dir=in_dir, env_mode=env_mode, data_dirs=data_dirs)
    if keep:
        plan.keep_checkout = True
    own = store.token if isinstance(store, TokenBearer) else None
    plan.token = token or own or setting("LABLEDGER_TOKEN")
    for line in plan.lines():
        echo(line)
    result = ReproResult(plan=plan)
    if dry_run:
        echo("dry run: nothing was checked out or run")
        return result
    stop = plan.fatal + ([] if force else plan.blockers)
    if stop:
        result.verdict, result.reason = NOT_REPRODUCIBLE, "; ".join(stop)
        _store_verdict(store, result, tolerance, force)
        return result
    made_checkout = False
    try:
        echo("checking out the recorded code")
        result.notes += prepare_code(plan.code, plan.checkout, store.get_blob)
        made_checkout = True
        result.notes += _place_data(plan)
        fresh: FreshEnv | None = None
        python = sys.executable
        if plan.fresh is not None:
            echo(f"preparing the fresh environment {plan.fresh.key}")
            fresh = build_fresh_env(
                plan.fresh, find_links=find_links, no_index=no_index, index_url=index_url, echo=echo
            )
            result.fresh_env = {
                "path": str(fresh.path),
                "cached": fresh.cached,
                "installed": fresh.installed,
                "failed": fresh.failed,
                "bridged": fresh.bridged,
                "build_s": round(fresh.build_s, 3),
            }
            echo(f"  {'reused cached' if fresh.cached else 'built'} environment {fresh.path}")
            for req, why in fresh.failed.items():
                echo(f"  could not install {req}: {why}")
            if fresh.failed:
                msg = [
                    f"package {req} could not be installed ({why})"
                    for req, why in fresh.failed.items()
                ]
                if not force:
                    result.verdict, result.reason = COULD_NOT_RERUN, "; ".join(msg)
                    _store_verdict(store, result, tolerance, force)
                    return result
                plan.caveats += msg
            python = str(fresh.python)
        for n in result.notes:
            echo(n)
        cwd = plan.checkout / plan.command.rel_cwd
        if not cwd.is_dir():
            raise ReproError(
                "run",
                f"the recorded working directory {plan.command.rel_cwd} is not in the checkout",
            )
        argv = plan.command.argv(python, plan.checkout)
        echo("running: " + " ".join(argv))
        t0 = time.time()
        try:
            proc = subprocess.run(
                argv,
                cwd=cwd,
                env=_child_env(plan, fresh),
                stdout=stdout,
                stderr=None if stdout is None else subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
            result.exit_code = proc.returncode
        except subprocess.TimeoutExpired:
            result.exit_code = None
            result.notes.append(f"the command was stopped after {timeout}s")
        new, how = _find_repro_run(store, plan.run, t0)
        if how:
            result.notes.append(how)
            echo(how)
        if new is None:
            result.verdict = COULD_NOT_RERUN
            stopped = result.exit_code is None and timeout is not None
            result.reason = (
                f"the command was stopped after {timeout}s"
                if stopped
                else f"the command exited with code {result.exit_code}"
            ) + (
                " without recording a run (is labledger importable where it ran, "
                "and can it write to the store?)"
            )
        else:
            result.repro_run_id = new["id"]
            new = store.get_run(new["id"])
            result.verdict, result.reason, result.metrics = judge(
                plan.run, new, tolerance, history_value_at(store, new["id"])
            )
            if result.verdict == NOT_REPRODUCED and plan.blockers:
                result.reason = f"{result.reason} (forced past: {'; '.join(plan.blockers)})"
        _store_verdict(store, result, tolerance, force)
        return result
    finally:
        if made_checkout and not plan.keep_checkout:
            remove_code(plan.code, plan.checkout)


def result_json(result: ReproResult) -> str:
    return json.dumps(result.to_dict(), default=str)
