"""``labledger edit``, ``labledger audit verify|head``, ``labledger cite``, ``labledger check``.

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

__all__ = ["audit", "check", "cite", "edit"]


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


@audit.command("verify")
@click.option("--project", "-p", default=None, help="Only this project's chain.")
@click.option(
    "--head",
    "head",
    default=None,
    help="A head hash published earlier (`audit head`): it must still be in the chain.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@store_option
def audit_verify(project: str | None, head: str | None, as_json: bool, store: str | None) -> None:
    """Re-derive every hash; exit 1 naming the run and field of each change or deletion."""
    with open_ledger(store) as ledger:
        result = ledger.store.audit_verify(project=project, head=head)
    if as_json:
        emit_json(result)
    else:
        for p in result["projects"]:
            click.echo(f"{p['project']}: {p['entries']} entries, head {p['head'] or '-'}")
        for prob in result["problems"]:
            where = f"{prob['project']}/{prob['run_id']}" if prob.get("run_id") else prob["project"]
            click.echo(f"TAMPERED {where} field {prob['field']}: {prob['message']}")
        if result["ok"]:
            click.echo("ok: every record and edit matches the audit chain")
    if not result["ok"]:
        sys.exit(1)


@audit.command("head")
@click.option("--project", "-p", default=None, help="Only this project.")
@click.option("--json", "as_json", is_flag=True, help="Print the heads as JSON.")
@store_option
def audit_head(project: str | None, as_json: bool, store: str | None) -> None:
    """Print the head hash of each project's chain: publish it, and `audit verify --head`
    later proves nothing recorded before it was rewritten."""
    with open_ledger(store) as ledger:
        heads = ledger.store.audit_head(project=project)
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
@store_option
def cite(run_ref: str, metric: str | None, amended: bool, store: str | None) -> None:
    """Print a citation of a finished run's result: metric, value, run and record hash.

    The values are the sealed ones, as the run logged them; --amended cites an amendment."""
    from .._cite import cite as make
    from ._output import err

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
