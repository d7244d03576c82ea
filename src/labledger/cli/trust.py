"""``labledger edit``, ``audit verify|head|keygen``, ``attest``, ``cite``, ``check``.

Thin commands over the store's edit and audit methods and :mod:`labledger._cite`;
see docs/trust.md.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import click

from ._output import emit_json, open_ledger, store_option

if TYPE_CHECKING:
    from ..store import ServerStore

__all__ = ["attest", "audit", "check", "cite", "edit"]


def _parse_summary(items: tuple[str, ...]) -> dict[str, Any]:
    import json

    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint="--summary")
        value: Any
        if raw == "":
            value = None  # KEY= removes the explicit value
        else:
            try:
                value = json.loads(raw)
            except ValueError:
                value = raw
        out[key.strip()] = value
    return out


@click.command()
@click.argument("run_ref", metavar="RUN")
@click.option("--note", "note", default=None, help="Replace the run's notes ('' clears them).")
@click.option("--tag", "tags", multiple=True, help="Add a tag (repeatable).")
@click.option("--untag", "untags", multiple=True, help="Remove a tag (repeatable).")
@click.option(
    "--summary",
    "summary",
    multiple=True,
    help="Set an explicit summary value KEY=VALUE (KEY= removes it; repeatable). Once the run "
    "ended this is an amendment: the sealed value stays, and the amended one is shown beside it.",
)
@click.option("--reason", default=None, help="Why: kept with the edit events (amendments).")
@click.option("--json", "as_json", is_flag=True, help="Print the stored edit events as JSON.")
@store_option
def edit(
    run_ref: str,
    note: str | None,
    tags: tuple[str, ...],
    untags: tuple[str, ...],
    summary: tuple[str, ...],
    reason: str | None,
    as_json: bool,
    store: str | None,
) -> None:
    """Edit a run's notes, tags or summary (also once it finished); each change is an edit
    event (who, when, old -> new) shown by `show --history` and kept in the audit chain.
    A summary value changed after the run ended is an amendment: `ls`, `best`, `show` and
    the UI keep showing the sealed value, with the amendment beside it."""
    from .._author import local_author
    from ..store import Actor, Location, WriteCore

    values = _parse_summary(summary)
    changes: dict[str, Any] = {
        "notes": note,
        "add_tags": list(tags),
        "remove_tags": list(untags),
        "summary": values or None,
        "reason": reason,
    }
    with open_ledger(store) as ledger:
        if Location.of(ledger.store.uri).is_remote:
            # the server's write core applies the rules, as the token's user
            edits = ledger.store.edit_run(run_ref, **changes)
        else:
            core = WriteCore(cast("ServerStore", ledger.store))
            _, edits = core.edit_run(Actor.local_user(local_author()), run_ref, **changes)
    if as_json:
        emit_json(edits)
        return
    if not edits:
        click.echo("nothing changed")
        return
    for e in edits:
        what = "amended " if e.get("amendment") else ""
        click.echo(f"{what}{e['field']}: {e['old']!r} -> {e['new']!r}  (by {e['author']})")
    if any(e.get("amendment") for e in edits):
        click.echo(
            "the sealed value stays the run's result (rankings, cite); the amendment is shown "
            "beside it"
        )


@click.group()
def audit() -> None:
    """Tamper evidence: the per-project hash chain of run records and edits."""


def _read_heads(value: str) -> list[Any]:
    """``--head``: a hash, or a file holding a hash or signed heads (one envelope, a JSON
    list of them, or one per line)."""
    import json

    path = Path(value)
    if not path.is_file():
        return [value.strip()]
    text = path.read_text(encoding="utf-8").strip()
    try:
        doc = json.loads(text)
    except ValueError:
        try:
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError:
            return [text.split()[0]] if text else []
    return doc if isinstance(doc, list) else [doc]


def _check_signed(heads: list[Any], key: str | None) -> list[dict[str, Any]]:
    """The payloads of signed heads (``{project, head, entries, time}``), signatures checked."""
    from .._dsse import HEAD_TYPE, keyid, load_public_key, open_envelope

    if key is None:
        raise click.UsageError(
            "a signed head needs --key PUBLIC_KEY (the .pub file of `audit keygen`) "
            "to check its signature"
        )
    public = load_public_key(key)
    out = []
    for env in heads:
        payload = open_envelope(env, public, HEAD_TYPE)
        if not isinstance(payload, dict) or not {"project", "head", "entries"} <= set(payload):
            raise click.UsageError("the signed head lacks project, head or entries")
        payload["keyid"] = keyid(public)
        out.append(payload)
    return out


@audit.command("verify")
@click.option("--project", "-p", default=None, help="Only this project's chain.")
@click.option(
    "--head",
    "head",
    default=None,
    help="A head published earlier: its hash, or a file with a hash or signed heads "
    "(`audit head --sign`); it must still be in the chain.",
)
@click.option(
    "--key",
    "key",
    default=None,
    type=click.Path(dir_okay=False, exists=True),
    help="The public key (KEY.pub of `audit keygen`) that signed the --head file.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@store_option
def audit_verify(
    project: str | None, head: str | None, key: str | None, as_json: bool, store: str | None
) -> None:
    """Re-derive every hash; exit 1 naming the run and field of each change or deletion."""
    heads: list[Any] = [None] if head is None else _read_heads(head)
    signed: list[dict[str, Any]] = []
    if any(isinstance(h, dict) for h in heads):
        signed = _check_signed(heads, key)
        if project is not None and any(s["project"] != project for s in signed):
            raise click.UsageError(f"the signed head is not of project {project!r}")
    result: dict[str, Any] = {"ok": True, "projects": [], "problems": []}
    with open_ledger(store) as ledger:
        if signed:
            for s in signed:
                one = ledger.store.audit_verify(project=s["project"], head=s["head"])
                entries = {p["project"]: p["entries"] for p in one["projects"]}
                if entries.get(s["project"], 0) < int(s["entries"]):
                    one["problems"].append(
                        {
                            "project": s["project"],
                            "run_id": None,
                            "field": "head",
                            "message": f"the signed head counts {s['entries']} entries, the "
                            f"chain holds {entries.get(s['project'], 0)}: entries were deleted",
                        }
                    )
                result["projects"] += one["projects"]
                result["problems"] += one["problems"]
            result["signed_heads"] = signed
        else:
            for h in heads:
                one = ledger.store.audit_verify(project=project, head=h)
                result["projects"] += one["projects"]
                result["problems"] += one["problems"]
        result["ok"] = not result["problems"]
    if as_json:
        emit_json(result)
    else:
        for s in signed:
            click.echo(
                f"signed head of {s['project']} (entry {s['entries']}, {s.get('time', '?')}) "
                f"by key {s['keyid'][:16]}…: signature ok"
            )
        for p in result["projects"]:
            click.echo(f"{p['project']}: {p['entries']} entries, head {p['head'] or '-'}")
        for prob in result["problems"]:
            where = f"{prob['project']}/{prob['run_id']}" if prob.get("run_id") else prob["project"]
            click.echo(f"TAMPERED {where} field {prob['field']}: {prob['message']}")
        if result["ok"]:
            click.echo("ok: every record and edit matches the audit chain")
    if not result["ok"]:
        sys.exit(1)


@audit.command("keygen")
@click.option(
    "--output",
    "-o",
    "output",
    required=True,
    type=click.Path(dir_okay=False),
    help="Where to write the private key (PEM, mode 0600); the public key goes to OUTPUT.pub.",
)
def audit_keygen(output: str) -> None:
    """Make an Ed25519 key pair for signing heads (`audit head --sign`) and attestations."""
    from .._dsse import generate_key

    priv, pub, kid = generate_key(output)
    click.echo(f"private key {priv} (keep it secret), public key {pub}, keyid {kid}")


@audit.command("head")
@click.option("--project", "-p", default=None, help="Only this project.")
@click.option(
    "--sign",
    "sign",
    default=None,
    type=click.Path(dir_okay=False, exists=True),
    help="Sign each head with this private key (`audit keygen`): prints one DSSE envelope "
    "per project, one per line.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the heads as JSON.")
@store_option
def audit_head(project: str | None, sign: str | None, as_json: bool, store: str | None) -> None:
    """Print the head hash of each project's chain: publish it, and `audit verify --head`
    later proves nothing recorded before it was rewritten."""
    import json

    key = None
    if sign is not None:
        from .._dsse import load_private_key

        key = load_private_key(sign)
    with open_ledger(store) as ledger:
        heads = ledger.store.audit_head(project=project)
    if key is not None:
        import datetime as dt

        from .._dsse import HEAD_TYPE, sign_envelope

        now = dt.datetime.now(dt.timezone.utc)
        if not heads:
            raise click.ClickException("no audit entries yet: nothing to sign")
        for h in heads:
            payload = {
                "project": h["project"],
                "head": h["head"],
                "entries": int(h["seq"]),
                "time": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
            }
            click.echo(json.dumps(sign_envelope(HEAD_TYPE, payload, key), sort_keys=True))
        return
    if as_json:
        emit_json(heads)
        return
    if not heads:
        click.echo("no audit entries yet (a run enters the chain when it ends)")
        return
    for h in heads:
        click.echo(f"{h['project']}  {h['head']}  (entry {h['seq']})")


@click.command()
@click.argument("run_ref", metavar="RUN")
@click.option("--metric", "-m", default=None, help="The metric to cite (default: every metric).")
@click.option(
    "--amended",
    is_flag=True,
    help="Cite values amended after the run ended (marked '(amended)') instead of the sealed ones.",
)
@click.option(
    "--set",
    "of_set",
    is_flag=True,
    help="Cite RUN's replicate set (runs differing only in their seed): mean ± std, n, "
    "the runs and one record over theirs. Needs --metric.",
)
@store_option
def cite(run_ref: str, metric: str | None, amended: bool, of_set: bool, store: str | None) -> None:
    """Print a citation of a finished run's result: metric, value, run and record hash.

    The values are the sealed ones, as the run logged them; --amended cites an amendment.
    --set cites the run's replicate set: "val_acc 0.902 ± 0.004 (mean ± std, n = 5 seeds;
    runs …; record …)", which check verifies too."""
    from .._cite import cite as make
    from ._output import err

    if of_set:
        from .._cite import cite_set

        if metric is None:
            raise click.UsageError("--set needs --metric: a set is cited by one metric")
        if amended:
            raise click.UsageError("--set cites sealed values only")
        with open_ledger(store) as ledger:
            click.echo(cite_set(run_ref, metric, store=ledger))
        return
    with open_ledger(store) as ledger:
        text = make(run_ref, metric, store=ledger, amended=amended)
        changed = ledger.get(run_ref).get("amended") or {}
    click.echo(text)
    cited = {metric} if metric is not None else set(changed)
    left = sorted(k for k in cited if k in changed)
    if left and not amended:
        err(
            f"note: {', '.join(left)} {'was' if len(left) == 1 else 'were'} amended after the "
            "run ended; the sealed value is cited (--amended cites the amendment)"
        )


@click.command()
@click.argument("source", metavar="TEXT_OR_FILE")
@click.option("--json", "as_json", is_flag=True, help="Print one object per citation.")
@store_option
def check(source: str, as_json: bool, store: str | None) -> None:
    """Verify every citation in a message or file ('-' reads stdin); exit 1 on any mismatch."""
    from .._cite import check as run_check

    if source == "-":
        text = sys.stdin.read()
    else:
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8") if path.is_file() else source
        except OSError:  # a long message is not a path
            text = source
    with open_ledger(store) as ledger:
        report = run_check(text, store=ledger)
    if as_json:
        emit_json(
            [
                {
                    "line": c.line,
                    "run": c.run,
                    "record": c.record,
                    "values": c.values,
                    "ok": c.ok,
                    "problems": c.problems,
                    "notes": c.notes,
                }
                for c in report
            ]
        )
    else:
        click.echo(str(report))  # one line per citation, never wrapped
    if not report.ok:
        sys.exit(1)


@click.command()
@click.argument("run_ref", metavar="RUN")
@click.option(
    "--output",
    "-o",
    "output",
    required=True,
    type=click.Path(dir_okay=False),
    help="Where to write the attestation ('-' for stdout).",
)
@click.option(
    "--sign",
    "sign",
    default=None,
    type=click.Path(dir_okay=False, exists=True),
    help="Sign with this private key (`audit keygen`): writes a DSSE envelope around it.",
)
@store_option
def attest(run_ref: str, output: str, sign: str | None, store: str | None) -> None:
    """Write an ended run's provenance: an in-toto Statement v1 with a SLSA Provenance v1
    predicate (artifacts as subjects; config, seed, command; commit, data, packages)."""
    import json

    from .._attest import attestation, signed_attestation

    key = None
    if sign is not None:
        from .._dsse import load_private_key

        key = load_private_key(sign)
    with open_ledger(store) as ledger:
        statement = attestation(ledger, run_ref)
    doc = statement if key is None else signed_attestation(statement, key)
    text = json.dumps(doc, indent=2, sort_keys=True) + "\n"
    if output == "-":
        click.echo(text, nl=False)
        return
    Path(output).write_text(text, encoding="utf-8")
    what = "signed attestation (DSSE)" if key is not None else "attestation"
    click.echo(
        f"{what} of run {statement['predicate']['runDetails']['metadata']['invocationId'][:12]}: "
        f"{len(statement['subject'])} subject(s) -> {output}",
        err=True,
    )
