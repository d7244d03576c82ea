"""Cite a result and check citations: "register before you share", enforced.

A citation names the metric, its value, the run and its record hash, readable in a chat
message or a paper::

    val_acc = 0.891 (labledger run 3f2a9c1e4b5d, record 4f47ecb88434a1b2)

Several metrics of one run share one reference: ``acc = 0.9, loss = 0.31 (labledger run …)``.
A citation names the sealed values (what the run logged); a value amended after the run
ended is cited only when asked (``amended=True``) and says so:
``val_acc = 0.991 (amended) (labledger run …)``.
:func:`check` finds every citation in a text (a message, a Markdown file) and verifies it
against the ledger: the run exists and finished, each value matches (at the precision
quoted), the record hash is one the run had in the audit chain and the record still
hashes to it, and the newest reproduction verdict, if any, is not a failure.

A replicate set (runs that differ only in their seed, ``labledger.analysis``) is cited by
its mean and standard deviation, its runs and one record over theirs::

    val_acc 0.902 ± 0.004 (mean ± std, n = 5 seeds; runs 3f2a9c1e4b5d, …; record 9c41…)

:func:`cite_set` writes it; :func:`check` verifies that every run is finished with that
record, that they still form one replicate set, and the mean, std and n.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ._exceptions import NotFoundError, UsageError

__all__ = ["CheckReport", "CitationResult", "check", "cite", "cite_set"]

RUN_ID_CHARS = 12
RECORD_CHARS = 16
_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?inf|nan"
_AMENDED = r"\(amended\)"
_PAIR = rf"[A-Za-z_][\w./-]*\s*=\s*(?:{_NUM})(?:\s*{_AMENDED})?"
_ANCHOR = r"\(labledger run (?P<run>[0-9a-f]{6,32}), record (?P<rec>[0-9a-f]{8,64})\)"
_CITATION = re.compile(rf"(?P<pairs>(?:{_PAIR}\s*,\s*)*{_PAIR})\s*{_ANCHOR}")
_ANY_ANCHOR = re.compile(_ANCHOR)
_ONE_PAIR = re.compile(rf"(?P<m>[A-Za-z_][\w./-]*)\s*=\s*(?P<v>{_NUM})(?P<am>\s*{_AMENDED})?")
_FAILED_VERDICT = re.compile(r"^not-reproduc")
_SET_CITATION = re.compile(
    rf"(?P<m>[A-Za-z_][\w./-]*)\s+(?P<mean>{_NUM})\s*±\s*(?P<std>{_NUM})\s*"
    r"\(mean ± std, n = (?P<n>\d+) seeds?; runs (?P<runs>[0-9a-f]{6,32}(?:,\s*[0-9a-f]{6,32})*); "
    r"record (?P<rec>[0-9a-f]{8,64})\)"
)


def _fmt(value: float) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UsageError(f"only numbers can be cited, not {value!r}")
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    return f"{value:.6g}"


@contextlib.contextmanager
def _open(store: Any) -> Iterator[Any]:
    """A Ledger over ``store`` (a Ledger, a Store, a URI or None); closed after use when
    opened here."""
    from ._ledger import Ledger

    if isinstance(store, Ledger):
        yield store
        return
    owned = store is None or isinstance(store, (str, os.PathLike))
    ledger = Ledger(store)
    try:
        yield ledger
    finally:
        if owned:
            ledger.close()


def cite(run: Any, metric: str | None = None, *, store: Any = None, amended: bool = False) -> str:
    """A citation of ``run``'s ``metric`` (default: every numeric summary value but
    ``system/*``), naming the value, the run and its record hash.

    ``run`` is a :class:`~labledger.Run`, a run dict or an id, prefix or name. The run
    must have finished: only a sealed record has a hash to cite. The values cited are the
    sealed ones (as logged); ``amended=True`` cites a value amended after the run ended
    instead, marked ``(amended)`` in the text.
    """
    ref = run if isinstance(run, str) else str(run["id"] if isinstance(run, dict) else run.id)
    if store is None and not isinstance(run, (str, dict)):
        store = getattr(run, "store_uri", None)
    with _open(store) as ledger:
        rec = ledger.get(ref)
    if not rec.get("record_sha256"):
        raise UsageError(
            f"run {rec['id'][:8]} is {rec['status']} and has no record hash yet: "
            "cite it once it has finished"
        )
    summary = rec.get("summary") or {}
    changed = rec.get("amended") or {}
    if amended:
        from .store import apply_amended

        summary = apply_amended(summary, changed)
    if metric is not None:
        if metric not in summary:
            # the user's metrics first, the machine's system/* after them
            have = ", ".join(sorted(summary, key=lambda k: (k.startswith("system/"), k))) or "none"
            hint = (
                " (it was added by an amendment after the run ended: --amended cites it)"
                if metric in changed
                else ""
            )
            raise UsageError(f"run {rec['id'][:8]} has no metric {metric!r} (it has: {have}){hint}")
        keys = [metric]
    else:
        keys = [
            k
            for k, v in sorted(summary.items())
            if not k.startswith("system/")
            and isinstance(v, (int, float))
            and not isinstance(v, bool)
        ]
        if not keys:
            raise UsageError(f"run {rec['id'][:8]} has no numeric metric to cite")
    pairs = ", ".join(
        f"{k} = {_fmt(summary[k])}" + (" (amended)" if amended and k in changed else "")
        for k in keys
    )
    return (
        f"{pairs} (labledger run {rec['id'][:RUN_ID_CHARS]}, "
        f"record {rec['record_sha256'][:RECORD_CHARS]})"
    )


def _set_record(records: dict[str, str]) -> str:
    """One digest over the member runs' record hashes (id:record lines, sorted)."""
    import hashlib

    text = "\n".join(f"{rid}:{rec}" for rid, rec in sorted(records.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def _fmt_pair(mean: float, std: float) -> tuple[str, str]:
    """Mean and std rounded at the std's first significant digit (two when it starts with 1)."""
    if std <= 0 or not math.isfinite(std):
        return _fmt(mean), _fmt(std)
    exp = math.floor(math.log10(std))
    digits = 2 if f"{std:e}".startswith("1") else 1
    decimals = max(0, -exp + digits - 1)
    return f"{mean:.{decimals}f}", f"{std:.{decimals}f}"


def _set_members(ledger: Any, run_ref: str, metric: str) -> list[dict[str, Any]]:
    """The finished runs of ``run_ref``'s replicate set with a numeric ``metric`` (sealed),
    reproductions left out; oldest first."""
    from .analysis import replicate_key

    rec = ledger.get(run_ref)
    key = replicate_key(rec)
    flt = 'status = "finished"'
    runs = ledger.runs(project=rec["project"], filter=flt, order_by="created_at")
    from .store import REPRO_JOB_TYPE

    out = []
    for r in runs:
        v = (r.get("summary") or {}).get(metric)
        if r.get("job_type") == REPRO_JOB_TYPE or isinstance(v, bool):
            continue
        if isinstance(v, (int, float)) and math.isfinite(v) and replicate_key(r) == key:
            out.append(r)
    return out


def cite_set(run: Any, metric: str, *, store: Any = None) -> str:
    """A citation of the replicate set ``run`` belongs to: the mean ± std of ``metric``
    over its finished runs (sealed values), n, the runs and one record over theirs."""
    ref = run if isinstance(run, str) else str(run["id"] if isinstance(run, dict) else run.id)
    with _open(store) as ledger:
        members = _set_members(ledger, ref, metric)
        if not any(m["id"] == ledger.get(ref)["id"] for m in members):
            raise UsageError(
                f"run {ref} is not a finished run with a numeric {metric!r}: nothing to cite"
            )
        records = {}
        for m in members:
            full = ledger.get(m["id"])
            if not full.get("record_sha256"):
                raise UsageError(f"run {m['id'][:8]} has no record hash yet: cite it once sealed")
            records[m["id"]] = full["record_sha256"]
    values = [float(m["summary"][metric]) for m in members]
    n = len(values)
    if n < 2:
        raise UsageError(
            f"the replicate set of run {ref} has one run: one seed, noise unknown "
            "(labledger replicate RUN --seeds K adds seeds; cite RUN cites the run)"
        )
    mean = math.fsum(values) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    q_mean, q_std = _fmt_pair(mean, std)
    ids = ", ".join(m["id"][:RUN_ID_CHARS] for m in members)
    return (
        f"{metric} {q_mean} ± {q_std} (mean ± std, n = {n} seeds; runs {ids}; "
        f"record {_set_record(records)[:RECORD_CHARS]})"
    )


def _check_set(ledger: Any, res: CitationResult, metric: str, mean: str, std: str, n: int) -> None:
    from .analysis import replicate_key

    runs, records, keys = [], {}, set()
    for ref in res.run.split(","):
        try:
            run = ledger.get(ref.strip())
        except NotFoundError as exc:
            res.problems.append(f"run not found in the ledger ({exc})")
            return
        runs.append(run)
        records[run["id"]] = run.get("record_sha256") or ""
        keys.add(replicate_key(run))
        if run["status"] != "finished":
            res.problems.append(f"run {run['id'][:8]} is {run['status']}, not finished")
        for p in ledger.store.verify_run(run["id"])["problems"]:
            res.problems.append(f"run {run['id'][:8]} record altered: {p['message']}")
    if not _set_record(records).startswith(res.record):
        res.problems.append(
            f"record {res.record} is not the record of these runs: a run was edited since, "
            "or the citation was altered"
        )
    if len(keys) > 1:
        res.problems.append("these runs differ in more than their seed: not one replicate set")
    if len(runs) != n:
        res.problems.append(f"n = {n} but {len(runs)} runs are named")
    values = [(r.get("summary") or {}).get(metric) for r in runs]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        res.problems.append(f"not every run has a numeric {metric!r}")
        return
    vs = [float(v) for v in values if v is not None]
    if len(vs) < 2:
        return
    m = math.fsum(vs) / len(vs)
    s = math.sqrt(math.fsum((v - m) ** 2 for v in vs) / (len(vs) - 1))
    if not _matches(mean, m):
        res.problems.append(f"mean of {metric} is {_fmt(m)} in the ledger, not {mean}")
    if not _matches(std, s):
        res.problems.append(f"std of {metric} is {_fmt(s)} in the ledger, not {std}")


@dataclass
class CitationResult:
    """One citation found in a text and what checking it found."""

    text: str
    line: int
    run: str
    record: str
    values: dict[str, str]
    ok: bool = True
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # metrics cited as amended ("val_acc = 0.991 (amended)") whose amended value matches
    amended: list[str] = field(default_factory=list)
    # metrics the citation marks "(amended)"
    marked: set[str] = field(default_factory=set)

    def __str__(self) -> str:
        what = (
            ", ".join(
                f"{k} = {v}" + (" (amended)" if k in self.marked else "")
                for k, v in self.values.items()
            )
            or "(no value)"
        )
        where = f"line {self.line}: {what} (run {self.run}, record {self.record})"
        if self.ok:
            extra = f" [{'; '.join(self.notes)}]" if self.notes else ""
            label = "AMENDED " if self.amended else "ok      "
            return f"{label}  {where}{extra}"
        return f"MISMATCH  {where}: {'; '.join(self.problems)}"


@dataclass
class CheckReport:
    """What :func:`check` found: one :class:`CitationResult` per citation."""

    citations: list[CitationResult]

    @property
    def ok(self) -> bool:
        """True when every citation checked out (a text without citations is ok)."""
        return all(c.ok for c in self.citations)

    def __bool__(self) -> bool:
        return self.ok

    def __iter__(self) -> Iterator[CitationResult]:
        return iter(self.citations)

    def __len__(self) -> int:
        return len(self.citations)

    def __str__(self) -> str:
        if not self.citations:
            return "no labledger citations found"
        return "\n".join(str(c) for c in self.citations)


def _matches(quoted: str, actual: Any) -> bool:
    """Does ``actual`` round to the ``quoted`` text (at the precision it was quoted)?"""
    if isinstance(actual, bool) or not isinstance(actual, (int, float)):
        return False
    q = quoted.lower()
    if q in ("nan", "inf", "+inf", "-inf"):
        return str(float(actual)).lower() == q.lstrip("+")
    value = float(q)
    if not math.isfinite(float(actual)):
        return False
    if _fmt(actual) == quoted or float(actual) == value:
        return True
    # "0.891" quotes 0.89123 (3 decimals); "8.91e-01" quotes it at 2 decimals of the mantissa
    mant = q.split("e")[0]
    decimals = len(mant.split(".")[1]) if "." in mant else 0
    exp = int(q.split("e")[1]) if "e" in q else 0
    scale = 10.0 ** (-decimals + exp)
    return abs(float(actual) - value) <= scale / 2 * (1 + 1e-9)


def find_citations(text: str) -> list[tuple[int, str, str, str, dict[str, str], set[str]]]:
    """``(line, text, run, record, {metric: quoted value}, {metrics marked amended})`` of
    each citation in ``text``."""
    out = []
    covered: set[int] = set()
    for m in _CITATION.finditer(text):
        pairs = list(_ONE_PAIR.finditer(m.group("pairs")))
        values = {p.group("m"): p.group("v") for p in pairs}
        marked = {p.group("m") for p in pairs if p.group("am")}
        line = text.count("\n", 0, m.start()) + 1
        out.append((line, m.group(0), m.group("run"), m.group("rec"), values, marked))
        covered.add(m.start("run"))
    for a in _ANY_ANCHOR.finditer(text):
        if a.start("run") not in covered:  # a reference with no "metric = value" before it
            line = text.count("\n", 0, a.start()) + 1
            out.append((line, a.group(0), a.group("run"), a.group("rec"), {}, set()))
    out.sort(key=lambda c: c[0])
    return out


def check(text: str, *, store: Any = None) -> CheckReport:
    """Find every citation in ``text`` and verify it against the ledger (see the module doc)."""
    results = []
    with _open(store) as ledger:
        for sm in _SET_CITATION.finditer(text):
            runs = ",".join(r.strip() for r in sm.group("runs").split(","))
            res = CitationResult(
                text=sm.group(0),
                line=text.count("\n", 0, sm.start()) + 1,
                run=runs,
                record=sm.group("rec"),
                values={sm.group("m"): f"{sm.group('mean')} ± {sm.group('std')}"},
            )
            results.append(res)
            _check_set(
                ledger, res, sm.group("m"), sm.group("mean"), sm.group("std"), int(sm.group("n"))
            )
            res.ok = not res.problems
        for line, raw, run_ref, record, values, marked in find_citations(text):
            res = CitationResult(
                text=raw, line=line, run=run_ref, record=record, values=values, marked=marked
            )
            results.append(res)
            _check_one(ledger, res)
            res.ok = not res.problems
    results.sort(key=lambda c: c.line)
    return CheckReport(results)


def _value(a: dict[str, Any]) -> str:
    v = a.get("value")
    return "removed" if v is None else _fmt(v) if isinstance(v, (int, float)) else repr(v)


def _who(a: dict[str, Any]) -> str:
    import datetime as dt

    at = a.get("at")
    when = (
        dt.datetime.fromtimestamp(float(at), dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        if isinstance(at, (int, float))
        else "?"
    )
    why = f", reason: {a['reason']}" if a.get("reason") else ""
    return f"amended by {a.get('by') or '?'} at {when}{why}"


def _check_amended(
    res: CitationResult, metric: str, quoted: str, a: dict[str, Any] | None, sealed: Any
) -> None:
    """A value cited as "(amended)": it must be the run's current amendment of ``metric``."""
    if a is None:
        shown = _fmt(sealed) if isinstance(sealed, (int, float)) else "missing"
        res.problems.append(
            f"{metric} is cited as amended but has no amendment (sealed value {shown})"
        )
    elif not _matches(quoted, a.get("value")):
        res.problems.append(f"{metric} is amended to {_value(a)} in the ledger, not {quoted}")
    else:
        res.amended.append(metric)
        shown = _fmt(sealed) if isinstance(sealed, (int, float)) else "none"
        res.notes.append(f"{metric} is an amended value: sealed {shown}, {_who(a)}")


def _check_one(ledger: Any, res: CitationResult) -> None:
    if not res.values:
        res.problems.append("no 'metric = value' before the reference")
    try:
        run = ledger.get(res.run)
    except NotFoundError as exc:
        res.problems.append(f"run not found in the ledger ({exc})")
        return
    if run["status"] != "finished":
        res.problems.append(f"run is {run['status']}, not finished")
    verified = ledger.store.verify_run(run["id"])
    history = [h for h in verified["history"] if h.startswith(res.record)]
    if not history:
        res.problems.append(
            f"record {res.record} is not a record hash of this run (now "
            f"{(verified['record_sha256'] or 'none')[:RECORD_CHARS]}): the citation was altered"
        )
    elif verified["record_sha256"] and not verified["record_sha256"].startswith(res.record):
        res.notes.append("edited since it was cited (see show --history)")
    for p in verified["problems"]:
        res.problems.append(f"record altered: {p['message']}")
    summary = run.get("summary") or {}
    changed = run.get("amended") or {}
    for metric, quoted in res.values.items():
        a = changed.get(metric)
        if metric in res.marked:
            _check_amended(res, metric, quoted, a, summary.get(metric))
        elif metric not in summary:
            res.problems.append(f"run has no metric {metric!r}")
        elif not _matches(quoted, summary[metric]):
            actual = summary[metric]
            shown = _fmt(actual) if isinstance(actual, (int, float)) else repr(actual)
            if a is not None and _matches(quoted, a.get("value")):
                res.problems.append(
                    f"{metric} = {quoted} is an amended value, not the one the run logged "
                    f"({shown}, sealed; {_who(a)}): a citation of it must say '(amended)'"
                )
            else:
                res.problems.append(f"{metric} is {shown} in the ledger, not {quoted}")
        elif a is not None:
            res.notes.append(f"{metric} cites the sealed value; amended since to {_value(a)}")
    from .repro import repro_field

    info = repro_field(ledger.store, run["id"])
    if info.get("verdict") and info.get("role") == "original":
        newest = str(info["verdict"])
        if _FAILED_VERDICT.match(newest):
            res.problems.append(f"its reproduction says {newest}")
        else:
            res.notes.append(f"repro: {newest}")
