"""Standard provenance of a run: an in-toto Statement v1 with a SLSA Provenance v1 predicate.

``labledger attest RUN -o FILE [--sign KEY]`` (docs/trust.md). What goes where:

- ``subject``: every file of every artifact version the run produced (its path under the
  version's URI and its sha256); a run without artifacts has its sealed record as subject.
- ``buildDefinition.externalParameters``: ``config``, ``seed`` and ``command`` (argv, entry
  point, working directory relative to the repository).
- ``buildDefinition.resolvedDependencies``: the git commit (``gitCommit``, with the patch of
  uncommitted changes and the bundle of unpushed commits as their own sha256 entries), every
  dataset's digest, the artifact versions it used and the installed packages (purl URIs).
- ``runDetails.byproducts``: the run's record hash (``labledger-record``) and its newest
  reproduction verdict (``reproduction-verdict``, or ``none``).

Signed, the statement is the payload of a DSSE envelope of type ``application/vnd.in-toto+json``
(:mod:`labledger._dsse`), which in-toto and sigstore tooling read.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from typing import Any

from ._exceptions import UsageError

__all__ = [
    "BUILD_TYPE",
    "INTOTO_PAYLOAD_TYPE",
    "PREDICATE_TYPE",
    "STATEMENT_TYPE",
    "attestation",
    "signed_attestation",
]

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
BUILD_TYPE = "https://labledger.dev/buildtypes/tracked-run/v1"
BUILDER_ID = "https://labledger.dev/builders/labledger"


def _time(ts: Any) -> str | None:
    if ts is None:
        return None
    t = dt.datetime.fromtimestamp(float(ts), tz=dt.timezone.utc)
    return t.isoformat(timespec="seconds").replace("+00:00", "Z")


def _purl_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _sha(value: Any) -> str:
    return hashlib.sha256(
        json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()
    ).hexdigest()


def _clean(doc: Any) -> Any:
    """``annotations`` without their null values (nothing to say is said by absence)."""
    if isinstance(doc, dict):
        return {
            k: _clean(v)
            for k, v in doc.items()
            if not (v is None and k not in ("seed", "config", "argv", "entry_point", "rel_cwd"))
        }
    if isinstance(doc, list):
        return [_clean(v) for v in doc]
    return doc


def _git_dependencies(git: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not git or not git.get("commit"):
        return []
    remote = git.get("remote")
    remote_url = remote.get("url") if isinstance(remote, dict) else remote
    source: dict[str, Any] = {
        "name": "source",
        "uri": f"git+{remote_url}" if remote_url else f"git+file://{git.get('root', '')}",
        "digest": {"gitCommit": str(git["commit"])},
        "annotations": {"branch": git.get("branch"), "dirty": bool(git.get("dirty"))},
    }
    out = [source]
    if git.get("diff_sha256"):
        source["annotations"]["patch_sha256"] = git["diff_sha256"]
        out.append(
            {
                "name": "git-patch",
                "digest": {"sha256": str(git["diff_sha256"])},
                "annotations": {"what": "uncommitted changes at the run's start, on the commit"},
            }
        )
    bundle = git.get("bundle")
    if isinstance(bundle, dict) and bundle.get("sha256"):
        source["annotations"]["bundle_sha256"] = bundle["sha256"]
        out.append(
            {
                "name": "git-bundle",
                "digest": {"sha256": str(bundle["sha256"])},
                "annotations": {
                    "what": "commits on no remote branch",
                    "stored": bundle.get("stored"),
                },
            }
        )
    return out


def attestation(ledger: Any, ref: str) -> dict[str, Any]:
    """The in-toto Statement v1 (SLSA Provenance v1) of an ended run, from ``ledger`` (a
    :class:`~labledger.Ledger`). UsageError for a run with no sealed record yet."""
    run = ledger.get(ref)
    if not run.get("record_sha256"):
        raise UsageError(
            f"run {run['id'][:12]} is {run.get('status')}: it has no sealed record to attest "
            "(a run is sealed when it finishes, fails or is killed)"
        )
    env = run.get("env") or {}
    subjects = [
        {
            "name": f"{a['uri']}/{f['path']}",
            "digest": {"sha256": f["sha256"]},
            "annotations": {"artifact": a["uri"], "kind": a["kind"], "manifest": a["sha256"]},
        }
        for a in run.get("artifacts") or []
        for f in a.get("files") or []
    ]
    if not subjects:
        subjects = [
            {
                "name": f"labledger-run:{run['project']}/{run['id']}",
                "digest": {"sha256": run["record_sha256"]},
            }
        ]
    command = env.get("command") or {}
    deps = _git_dependencies(env.get("git"))
    for d in run.get("datasets") or []:
        deps.append(
            {
                "name": f"dataset:{d.get('name')}",
                "digest": {"sha256": str(d["sha256"])},
                "annotations": {
                    "path": d.get("path"),
                    "size": d.get("size"),
                    "files": d.get("files"),
                },
            }
        )
    for u in run.get("used_artifacts") or []:
        deps.append({"name": f"artifact:{u['uri']}", "digest": {"sha256": str(u["sha256"])}})
    for name, version in sorted((env.get("packages") or {}).items()):
        deps.append({"name": name, "uri": f"pkg:pypi/{_purl_name(name)}@{version}"})
    verdicts = [
        v for v in ledger.store.repro_verdicts([run["id"]]) if v.get("original_run_id") == run["id"]
    ]
    verdict = verdicts[0] if verdicts else None
    try:
        from importlib.metadata import version

        ours = version("labledger")
    except Exception:
        ours = "unknown"

    return {
        "_type": STATEMENT_TYPE,
        "subject": _clean(subjects),
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "config": run.get("config") or {},
                    "seed": run.get("seed"),
                    "command": {
                        "argv": command.get("argv"),
                        "entry_point": command.get("entry_point"),
                        "rel_cwd": command.get("rel_cwd"),
                    },
                },
                "internalParameters": {
                    "project": run["project"],
                    "run_id": run["id"],
                    "name": run.get("name"),
                    "author": run.get("author"),
                    "python": (env.get("python") or {}).get("version")
                    if isinstance(env.get("python"), dict)
                    else env.get("python"),
                },
                "resolvedDependencies": _clean(deps),
            },
            "runDetails": {
                "builder": {"id": BUILDER_ID, "version": {"labledger": ours}},
                "metadata": {
                    "invocationId": run["id"],
                    "startedOn": _time(run.get("created_at")),
                    "finishedOn": _time(run.get("ended_at")),
                },
                "byproducts": _clean(
                    [
                        {
                            "name": "labledger-record",
                            "digest": {"sha256": run["record_sha256"]},
                            "annotations": {"status": run.get("status")},
                        },
                        {
                            "name": "reproduction-verdict",
                            "digest": {"sha256": _sha(verdict)},
                            "annotations": {
                                "verdict": verdict["verdict"] if verdict else "none",
                                "repro_run_id": verdict.get("repro_run_id") if verdict else None,
                                "reason": verdict.get("reason") if verdict else None,
                            },
                        },
                    ]
                ),
            },
        },
    }


def signed_attestation(statement: dict[str, Any], key: Any) -> dict[str, Any]:
    """``statement`` as the payload of a DSSE envelope signed with ``key`` (Ed25519)."""
    from ._dsse import sign_envelope

    return sign_envelope(INTOTO_PAYLOAD_TYPE, statement, key)
