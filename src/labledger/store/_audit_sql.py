"""Trust in the SQL store: edit events, sealing finished runs, the audit hash chain.

Mixed into :class:`~labledger.store.sql.SqlStore`. When a run ends (finished, failed or
killed) its *record* is hashed in the same transaction and appended to its project's
hash chain (``audit_log``); every later edit of notes, tags or summary is stored in
``run_edits`` and appends again. A record is a set of named field digests::

    name author status created_at ended_at seed exit_code error parent_run_id
    config env summary tags notes datasets artifacts used_artifacts edits
    series.<key> (sha256 of the series' steps, values and timestamps)
    metric.<key> (its stored summary: count, last, min, max, last step)

Entry kinds: ``seal`` (the run ended), ``edit`` (an edit of an ended run), ``import`` (a
run recorded already ended; it stays appendable), ``late`` (points replayed by ``labledger
sync`` after the end, or additions to an imported run) and ``delete`` (an artifact version
the record named was deleted). ``record_sha256`` is the sha256 of those digests; an entry's
hash covers the previous entry's hash, its position and the record, so :meth:`AuditSqlMixin.audit_verify` can
re-derive everything from the rows and name the run and field that changed. See
docs/trust.md for what this does and does not guarantee.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .._exceptions import RunFinishedError
from . import _schema as s
from ._audit_core import (
    FORMAT,
    GENESIS,
    JSON_FIELDS,
    SCALAR_FIELDS,
    artifact_field,
    canonical,
    entry_hash,
    prefix_digests,
    record_format,
    record_hash,
    sha256_hex,
    transition_problems,
)
from ._fields import SEALED_STATUSES
from ._sqla import SaDb
from ._statements import append_entry, record_fields

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

__all__ = [
    "EDITABLE",
    "EDITABLE_ENV",
    "FROZEN",
    "SEALED_STATUSES",
    "AuditSqlMixin",
    "canonical",
    "sha256_hex",
]

# fields a batch may still change once a run is sealed (each change is an edit event)
EDITABLE = frozenset({"notes", "tags", "summary"})
# env keys that stay editable once a run is sealed: client bookkeeping, not the run's
# environment (the MLflow API keeps an MLflow run's tags and lifecycle stage, which
# MLflow lets clients change after the run ended, in env.mlflow); each change is an
# edit event ("env.mlflow", old -> new) and a chain entry like any other edit
EDITABLE_ENV = frozenset({"mlflow"})
FROZEN = frozenset(
    {"status", "ended_at", "config", "seed", "env", "datasets", "exit_code", "error", "name"}
    | {"parent_run_id"}
)
_GENESIS = GENESIS
_SCALARS = SCALAR_FIELDS
_JSONS = JSON_FIELDS
_IN = 500  # ids per IN (...) query
log = logging.getLogger("labledger.store")
# audit verify checks a project's runs in several id ranges at once past this many
_PARALLEL_RUNS = 20_000
_entry_hash = entry_hash
_record_hash = record_hash


def _chunks(ids: Sequence[str]) -> Iterable[list[str]]:
    for i in range(0, len(ids), _IN):
        yield list(ids[i : i + _IN])


class AuditSqlMixin:
    """Edits, sealing and the audit chain of the SQL store (see the module docstring)."""

    # id ranges ``audit verify`` checks at once on PostgreSQL (a process each past the
    # first); None: min(4, the machine's cores)
    audit_workers: int | None = None

    if TYPE_CHECKING:
        dialect: str
        uri: str

        def _tx(self) -> contextlib.AbstractContextManager[Connection]: ...

        def _read(self) -> contextlib.AbstractContextManager[Connection]: ...

        def resolve_run_id(self, ref: str) -> str: ...

    # -- the record ------------------------------------------------------------------

    def _record_fields(
        self,
        conn: Connection,
        run_ids: Sequence[str],
        formats: dict[str, int] | None = None,
    ) -> dict[str, dict[str, str]]:
        """Field digests of each run's record, read from the rows (``_statements``).

        ``formats``: the record format to hash a run in (its stored record's; default the
        current one), so a record sealed in an older format still verifies."""
        return record_fields(SaDb(conn, self.dialect), run_ids, formats)

    # -- writing ---------------------------------------------------------------------

    def _append_entry(
        self,
        conn: Connection,
        project: str,
        run_id: str,
        kind: str,
        edit_id: str | None = None,
    ) -> str:
        """Hash ``run_id``'s record as it is now in this transaction and chain it; return its hash."""
        return append_entry(SaDb(conn, self.dialect), project, run_id, kind, edit_id)

    def _reseal(self, conn: Connection, run_id: str, kind: str) -> None:
        """Chain a new record of ``run_id`` when it is in the chain already (its record changed
        through labledger: a late point, an artifact of an imported run, a deleted version)."""
        a = s.audit_log
        row = conn.execute(sa.select(a.c.project).where(a.c.run_id == run_id).limit(1)).first()
        if row is not None:
            self._append_entry(conn, str(row[0]), run_id, kind)

    def _imported(self, conn: Connection, run_id: str) -> bool:
        """Was the run recorded already ended (an import)? Such a run is not frozen: its
        writer may still add to it, and every change chains a ``late`` entry."""
        a = s.audit_log
        first = conn.execute(
            sa.select(a.c.kind).where(a.c.run_id == run_id).order_by(a.c.seq).limit(1)
        ).scalar()
        return first == "import"

    def _check_frozen(self, run_id: str, status: str, update: dict[str, Any], points: int) -> None:
        frozen = sorted(set(update) & FROZEN)
        if points or frozen:
            what = ", ".join([*(["metric points"] if points else []), *frozen])
            raise RunFinishedError(
                run_id,
                status,
                f"its {what} cannot change; only notes, tags and summary may be edited",
            )

    # -- checking a run's history -------------------------------------------------------

    def _history_problems(
        self,
        conn: Connection,
        histories: dict[str, list[dict[str, Any]]],
        now: dict[str, dict[str, str]],
    ) -> list[tuple[str, str, str]]:
        """``[(run_id, field, message)]``: entries that changed what their kind may not change
        (a ``late`` entry rewriting a sealed config, an ``edit`` entry changing a metric), and
        late points that are not an addition to the series as sealed (docs/trust.md).

        ``histories``: each run's entries, oldest first (``fields`` decoded); ``now``: the
        runs' records re-derived from the rows."""
        out: list[tuple[str, str, str]] = []
        many = {rid: h for rid, h in histories.items() if len(h) > 1}
        if not many:
            return out
        e = s.run_edits
        edits: dict[str, list[tuple[float, str]]] = {}
        ids = sorted(rid for rid, h in many.items() if any(x["kind"] == "edit" for x in h))
        for part in _chunks(ids):
            for rid, at, field in conn.execute(
                sa.select(e.c.run_id, e.c.at, e.c.field).where(e.c.run_id.in_(part))
            ):
                edits.setdefault(rid, []).append((float(at), str(field).split(".", 1)[0]))
        prefixes: dict[str, dict[str, dict[int, str]]] = {}  # run -> key -> n -> digest
        added: dict[str, dict[str, int]] = {}  # run -> artifact field added late -> entry seq
        for rid, hist in sorted(many.items()):
            imported = hist[0]["kind"] == "import"
            for prev, entry in itertools.pairwise(hist):
                edited = frozenset(
                    col
                    for at, col in edits.get(rid, [])
                    if float(prev["created_at"]) < at <= float(entry["created_at"])
                )
                pf, nf = prev["fields"], entry["fields"]
                for field, message in transition_problems(
                    pf, nf, entry["kind"], edited=edited, imported=imported
                ):
                    out.append((rid, field, f"run {rid}: audit entry {entry['seq']}: {message}"))
                if entry["kind"] != "late" or imported:
                    continue
                if record_format(pf) >= 2:
                    for field in nf:
                        if field.startswith("artifact.") and field not in pf:
                            added.setdefault(rid, {})[field] = int(entry["seq"])
                for field in nf:
                    key = field[len("series.") :]
                    n = pf.get(f"points.{key}")
                    if field.startswith("series.") and n is not None and pf[field] != nf[field]:
                        prefixes.setdefault(rid, {}).setdefault(key, {})[int(n)] = pf[field]
        # a late artifact is one the seal listed as pending (env.pending_artifacts)
        for rid, fields in sorted(added.items()):
            env = conn.execute(sa.select(s.runs.c.env).where(s.runs.c.id == rid)).scalar()
            listed = {
                str(p.get("sha256"))
                for p in (s.load_json(env) or {}).get("pending_artifacts") or []
                if isinstance(p, dict)
            }
            av = s.artifact_versions
            shas = {
                artifact_field(name, version): sha
                for name, version, sha in conn.execute(
                    sa.select(av.c.name, av.c.version, av.c.sha256).where(av.c.run_id == rid)
                )
            }
            for field, seq in sorted(fields.items()):
                if field in shas and shas[field] not in listed:
                    out.append(
                        (
                            rid,
                            field,
                            f"run {rid}: audit entry {seq}: a 'late' entry added {field}, "
                            "which was not pending when the run was sealed "
                            "(env.pending_artifacts)",
                        )
                    )
        # late points are an addition: the series as sealed is a prefix of the series now
        t = s.metric_chunks
        for rid, keys in sorted(prefixes.items()):
            if now.get(rid) != histories[rid][-1]["fields"]:
                continue  # the rows differ from the newest record: reported already
            q = (
                sa.select(t.c.key, t.c.steps, t.c.vals, t.c.ts)
                .where(t.c.run_id == rid, t.c.key.in_(sorted(keys)))
                .order_by(t.c.key, t.c.id)
            )
            got = prefix_digests((tuple(r) for r in conn.execute(q)), keys)
            for key, wanted in sorted(keys.items()):
                for n, digest in sorted(wanted.items()):
                    if got.get((key, n)) != digest:
                        out.append(
                            (
                                rid,
                                f"series.{key}",
                                f"run {rid}: series.{key}: its first {n} points are not the "
                                "ones sealed (a late entry may only add points)",
                            )
                        )
        return out

    def _version_problems(self, conn: Connection, where: Any) -> list[tuple[str | None, str, str]]:
        """``[(run_id, field, message)]`` for artifact versions (selected by ``where`` on
        ``artifact_versions``) whose file rows no longer hash to their version digest."""
        from ._manifest import manifest_digest, root_type

        av, af = s.artifact_versions, s.artifact_files
        versions = {
            r[0]: r
            for r in conn.execute(
                sa.select(
                    av.c.id, av.c.run_id, av.c.name, av.c.version, av.c.sha256, av.c.meta
                ).where(where)
            )
        }
        if not versions:
            return []
        files: dict[str, list[dict[str, Any]]] = {vid: [] for vid in versions}
        for part in _chunks(sorted(versions)):
            for vid, path, sha, size in conn.execute(
                sa.select(af.c.version_id, af.c.path, af.c.sha256, af.c.size).where(
                    af.c.version_id.in_(part)
                )
            ):
                files[vid].append({"path": path, "sha256": sha, "size": size})
        out: list[tuple[str | None, str, str]] = []
        for vid, (_, run_id, name, version, sha, meta) in sorted(versions.items()):
            got = manifest_digest(root_type(s.load_json(meta), files[vid]), files[vid])
            if got != sha:
                out.append(
                    (
                        run_id,
                        artifact_field(name, version),
                        f"artifact {name}:v{version}: its file rows hash to {got[:16]}…, "
                        f"not to its version digest {sha[:16]}… (a file row was changed)",
                    )
                )
        return out

    # -- reading ---------------------------------------------------------------------

    def record_sha256(self, run_id: str) -> str | None:
        """The run's latest record hash in the audit chain (None before it ended)."""
        a = s.audit_log
        with self._read() as conn:
            row = conn.execute(
                sa.select(a.c.record_sha256)
                .where(a.c.run_id == run_id)
                .order_by(a.c.seq.desc())
                .limit(1)
            ).first()
        return None if row is None else str(row[0])

    def record_history(self, run_id: str) -> list[str]:
        """Every record hash the run had in the chain, oldest first."""
        a = s.audit_log
        with self._read() as conn:
            rows = conn.execute(
                sa.select(a.c.record_sha256).where(a.c.run_id == run_id).order_by(a.c.seq)
            ).all()
        return [str(r[0]) for r in rows]

    def verify_run(self, ref: str) -> dict[str, Any]:
        """Check one run against its audit entries (cheap: no walk of the whole chain).

        ``{"run_id", "sealed", "record_sha256", "history": [record hashes, oldest first],
        "problems": [{field, message}]}``; ``sealed`` is False before the run ended. Checks
        the newest entry against the rows, each entry against the one before (what its kind
        may change) and the run's artifact versions against their file rows.
        """
        run_id = self.resolve_run_id(ref)
        a = s.audit_log
        problems: list[dict[str, Any]] = []
        with self._read() as conn:
            entries = [
                dict(e)
                for e in conn.execute(
                    sa.select(a).where(a.c.run_id == run_id).order_by(a.c.seq)
                ).mappings()
            ]
            for e in entries:
                e["fields"] = s.load_json(e["fields"])
            fmt = record_format(entries[-1]["fields"]) if entries else FORMAT
            now = self._record_fields(conn, [run_id], {run_id: fmt}).get(run_id, {})
            history = self._history_problems(conn, {run_id: entries}, {run_id: now})
            versions = self._version_problems(conn, s.artifact_versions.c.run_id == run_id)
        for _, field, message in versions:
            problems.append({"field": field, "message": message})
        if not entries:
            return {
                "run_id": run_id,
                "sealed": False,
                "record_sha256": None,
                "history": [],
                "problems": problems,
            }
        last = entries[-1]
        if (
            _entry_hash(last) != last["entry_sha256"]
            or _record_hash(last["fields"]) != last["record_sha256"]
        ):
            problems.append(
                {"field": "audit_log", "message": f"audit entry {last['seq']} was changed"}
            )
        for field in sorted(set(last["fields"]) | set(now)):
            if last["fields"].get(field) != now.get(field):
                problems.append(
                    {"field": field, "message": f"{field} was changed after it was recorded"}
                )
        for _, field, message in history:
            problems.append({"field": field, "message": message})
        return {
            "run_id": run_id,
            "sealed": True,
            "record_sha256": last["record_sha256"],
            "history": [str(e["record_sha256"]) for e in entries],
            "problems": problems,
        }

    def _verify_run_range(
        self, conn: Connection, name: str, lo: str, hi: str | None
    ) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
        """The per-run checks of ``audit verify`` for the runs of project ``name`` with
        ``lo < id <= hi`` (``hi`` None: to the end), in pages of 500 by id: each run's
        record re-derived from its rows against its newest entry, and what each entry of
        a run with several may change. Returns ``(found, later)``: problems in page order,
        then the history problems (reported after every page's, as one range would)."""
        a = s.audit_log
        r = s.runs
        found: list[tuple[str, str, str]] = []
        later: list[tuple[str, str, str]] = []
        after = lo
        while True:
            page = sa.select(r.c.id).where(r.c.project == name, r.c.id > after)
            if hi is not None:
                page = page.where(r.c.id <= hi)
            part = list(conn.execute(page.order_by(r.c.id).limit(500)).scalars())
            if not part:
                break
            after = part[-1]
            # per run its newest entry's (seq, hash of its fields, record format)
            # and its entry count
            last = {
                str(rid): (int(seq), int(count))
                for rid, seq, count in conn.execute(
                    sa.select(a.c.run_id, sa.func.max(a.c.seq), sa.func.count())
                    .where(a.c.project == name, a.c.run_id.in_(part))
                    .group_by(a.c.run_id)
                )
            }
            latest: dict[str, tuple[int, str, int, int]] = {}
            for rid, fields in conn.execute(
                sa.select(a.c.run_id, a.c.fields).where(
                    a.c.project == name, a.c.seq.in_([v[0] for v in last.values()])
                )
            ):
                f = s.load_json(fields)
                seq, count = last[rid]
                latest[rid] = (seq, _record_hash(f), record_format(f), count)
            part = [rid for rid in part if rid in latest]  # the others: unsealed, above
            if not part:
                continue
            now = self._record_fields(conn, part, {rid: latest[rid][2] for rid in part})
            for rid in part:
                new = now.get(rid, {})
                if _record_hash(new) == latest[rid][1]:
                    continue
                recorded = conn.execute(
                    sa.select(a.c.fields).where(a.c.project == name, a.c.seq == latest[rid][0])
                ).scalar_one()
                old = s.load_json(recorded) or {}
                for field in sorted(set(old) | set(new)):
                    if old.get(field) != new.get(field):
                        how = (
                            "was deleted"
                            if field not in new
                            else "was added"
                            if field not in old
                            else "was changed"
                        )
                        found.append(
                            (rid, field, f"run {rid}: {field} {how} after it was recorded")
                        )
            # each entry may only change what its kind allows (a forged late entry):
            # only runs with several entries have a history to check
            many = [rid for rid in part if latest[rid][3] > 1]
            if many:
                histories: dict[str, list[dict[str, Any]]] = {rid: [] for rid in many}
                for ipart in _chunks(many):
                    for e in conn.execute(
                        sa.select(a)
                        .where(a.c.project == name, a.c.run_id.in_(ipart))
                        .order_by(a.c.seq)
                    ).mappings():
                        row = dict(e)
                        row["fields"] = s.load_json(row["fields"])
                        histories[row["run_id"]].append(row)
                later.extend(self._history_problems(conn, histories, now))
        return found, later

    def _verify_runs(self, conn: Connection, name: str) -> list[tuple[str, str, str]]:
        """:meth:`_verify_run_range` over all of project ``name``'s runs.

        On PostgreSQL, for a project of more than ``_PARALLEL_RUNS`` runs, the runs are
        split into ``audit_workers`` id ranges of equal size: this process checks the
        first, a worker process (``_verify_worker``) each other one, at once. Problems
        come in the order one range would give them. A worker that fails has its range
        checked here instead: the answer never depends on the workers."""
        workers = self.audit_workers or min(4, os.cpu_count() or 1)
        bounds: list[str] = []
        if self.dialect == "postgresql" and workers > 1:
            n = conn.execute(
                sa.select(sa.func.count()).select_from(s.runs).where(s.runs.c.project == name)
            ).scalar_one()
            if n > _PARALLEL_RUNS:
                bounds = [
                    conn.execute(
                        sa.select(s.runs.c.id)
                        .where(s.runs.c.project == name)
                        .order_by(s.runs.c.id)
                        .offset(n * i // workers)
                        .limit(1)
                    ).scalar_one()
                    for i in range(1, workers)
                ]
        ranges: list[tuple[str, str | None]] = list(
            zip(["", *bounds], [*bounds, None], strict=True)
        )
        procs = [self._start_verify_worker(name, lo, hi) for lo, hi in ranges[1:]]
        try:
            parts = [self._verify_run_range(conn, name, *ranges[0])]
            for (lo, hi), proc in zip(ranges[1:], procs, strict=True):
                parts.append(self._verify_worker_answer(proc, conn, name, lo, hi))
        finally:  # an error here leaves no worker running
            for proc in procs:
                if proc is not None and proc.returncode is None:
                    proc.kill()
                    proc.communicate()  # reaps it and closes its pipes
        return [p for found, _ in parts for p in found] + [p for _, later in parts for p in later]

    def _start_verify_worker(self, name: str, lo: str, hi: str | None) -> Any:
        import json
        import subprocess
        import sys

        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "labledger.store._verify_worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            assert proc.stdin is not None
            proc.stdin.write(json.dumps({"uri": self.uri, "project": name, "lo": lo, "hi": hi}))
            proc.stdin.close()
            proc.stdin = None  # written: communicate() only reads its answer
            return proc
        except OSError as exc:
            log.warning("audit verify: could not start a worker (%s); checking here", exc)
            return None

    def _verify_worker_answer(
        self, proc: Any, conn: Connection, name: str, lo: str, hi: str | None
    ) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
        import json

        if proc is not None:
            out, err = proc.communicate()
            if proc.returncode == 0:
                try:
                    got = json.loads(out)
                    return (
                        [(str(r), str(f), str(m)) for r, f, m in got["found"]],
                        [(str(r), str(f), str(m)) for r, f, m in got["later"]],
                    )
                except (ValueError, KeyError, TypeError):
                    pass
            lines = (err or "").strip().splitlines()
            log.warning(
                "audit verify: a worker failed (exit %s: %s); checking its runs here",
                proc.returncode,
                lines[-1] if lines else "no output",
            )
        return self._verify_run_range(conn, name, lo, hi)

    def audit_head(self, project: str | None = None) -> list[dict[str, Any]]:
        """``[{project, seq, head}]``: the newest entry hash of each project's chain."""
        a = s.audit_log
        last = sa.select(a.c.project, sa.func.max(a.c.seq).label("seq")).group_by(a.c.project)
        if project is not None:
            last = last.where(a.c.project == project)
        sub = last.subquery()
        q = (
            sa.select(a.c.project, a.c.seq, a.c.entry_sha256)
            .join(sub, sa.and_(a.c.project == sub.c.project, a.c.seq == sub.c.seq))
            .order_by(a.c.project)
        )
        with self._read() as conn:
            return [{"project": p, "seq": int(q_), "head": h} for p, q_, h in conn.execute(q).all()]

    def audit_verify(self, project: str | None = None, head: str | None = None) -> dict[str, Any]:
        """Re-derive every hash; ``{"ok", "projects": [...], "problems": [{project, run_id, field, message}]}``.

        ``head``: a previously published head hash, which must still be in the chain.
        """
        a = s.audit_log
        r = s.runs
        problems: list[dict[str, Any]] = []
        summaries: list[dict[str, Any]] = []
        head_found = head is None
        with self._read() as conn:
            since_row = conn.execute(
                sa.select(s.meta.c.value).where(s.meta.c.key == "audit_since")
            ).first()
            since = float(since_row[0]) if since_row else 0.0
            names = (
                [project]
                if project is not None
                else sorted(
                    {p for (p,) in conn.execute(sa.select(r.c.project).distinct())}
                    | {p for (p,) in conn.execute(sa.select(a.c.project).distinct())}
                )
            )
            for name in names:

                def problem(run_id: str | None, field: str, message: str, p: str = name) -> None:
                    problems.append(
                        {"project": p, "run_id": run_id, "field": field, "message": message}
                    )

                # memory stays flat whatever the number of runs: the chain streams (a
                # server-side cursor on PostgreSQL) keeping only the previous hash; the
                # checks per run read the runs in pages of 500, by id, each page's newest
                # entries and entry counts in bulk; deleted and unsealed runs are anti-joins
                prev, expected_seq, n = _GENESIS, 1, 0
                # yield_per on the statement, not on ``conn`` (Connection.execution_options
                # sets it for every later statement of the connection: each page's grouped
                # read then ran as a server-side cursor, planned for its first rows, and
                # scanned the whole chain per page: over 15 minutes at 1M runs)
                entries = conn.execute(
                    sa.select(a)
                    .where(a.c.project == name)
                    .order_by(a.c.seq)
                    .execution_options(yield_per=1000)
                ).mappings()
                for e in entries:
                    n += 1
                    row = dict(e)
                    row["fields"] = s.load_json(row["fields"])
                    rid = row["run_id"]
                    if int(row["seq"]) != expected_seq:
                        problem(
                            rid,
                            "audit_log",
                            f"audit entries {expected_seq}..{int(row['seq']) - 1} were deleted",
                        )
                    if row["prev_sha256"] != prev:
                        problem(
                            rid,
                            "audit_log",
                            f"audit entry {row['seq']} does not follow "
                            "the previous entry (the chain was cut or rewritten)",
                        )
                    if (
                        _entry_hash(row) != row["entry_sha256"]
                        or _record_hash(row["fields"]) != row["record_sha256"]
                    ):
                        problem(rid, "audit_log", f"audit entry {row['seq']} was changed")
                    if head is not None and row["entry_sha256"] == head:
                        head_found = True
                    prev, expected_seq = row["entry_sha256"], int(row["seq"]) + 1
                summaries.append({"project": name, "entries": n, "head": prev if n else None})
                in_chain = sa.exists().where(a.c.project == name, a.c.run_id == r.c.id)
                kept = sa.exists().where(r.c.project == name, r.c.id == a.c.run_id)
                for (rid,) in conn.execute(
                    sa.select(a.c.run_id)
                    .where(a.c.project == name, ~kept)
                    .distinct()
                    .order_by(a.c.run_id)
                ):
                    problem(rid, "run", f"run {rid} was deleted (it is in the audit chain)")
                for rid, st, ended in conn.execute(
                    sa.select(r.c.id, r.c.status, r.c.ended_at)
                    .where(r.c.project == name, ~in_chain)
                    .order_by(r.c.id)
                ):
                    if st in SEALED_STATUSES and (ended or 0) >= since:
                        problem(
                            rid,
                            "status",
                            f"run {rid} is {st} but has no audit entry "
                            "(its entry was deleted, or its status was set behind "
                            "labledger's back)",
                        )
                for rid, field, message in self._verify_runs(conn, name):
                    problem(rid, field, message)
                # every artifact version's digest, re-derived from its file rows
                for vrid, field, message in self._version_problems(
                    conn, s.artifact_versions.c.project == name
                ):
                    problem(vrid, field, message)
        if not head_found:
            problems.append(
                {
                    "project": project,
                    "run_id": None,
                    "field": "head",
                    "message": f"the published head {head} is not in the chain: history "
                    "before it was rewritten",
                }
            )
        return {"ok": not problems, "projects": summaries, "problems": problems}
