"""``labledger server`` (serve, db upgrade, token create/revoke/list, policy) and ``labledger sync``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ._output import emit_json, fmt_time

__all__ = ["server", "sync"]

_ROLES = click.Choice(["read", "write", "admin"])


def _backend(ctx: click.Context, value: str | None) -> str:
    """The SQL store URI: the option, else the group's, else LABLEDGER_URI, else the embedded default."""
    from .._exceptions import UsageError
    from ..store import Location

    value = value or (ctx.obj or {}).get("backend_uri")
    location = Location.of(value or None)
    uri = location.uri
    if location.is_remote:
        raise UsageError(
            "the server's --backend-uri must be sqlite:///PATH or postgresql://…, not a server URL"
        )
    return uri


_backend_option = click.option(
    "--backend-uri",
    "backend_uri",
    default=None,
    envvar="LABLEDGER_SERVER_BACKEND_URI",
    help="SQL store: postgresql://… (team) or sqlite:///PATH. Default: LABLEDGER_URI, else the embedded store.",
)


@click.group(invoke_without_command=True)
@_backend_option
@click.option(
    "--artifacts-uri",
    default=None,
    envvar="LABLEDGER_ARTIFACTS_URI",
    help="Artifact store: a directory or s3://bucket/prefix (AWS_ENDPOINT_URL honoured).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port",
    default=5000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on.",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 256),
    help="uvicorn worker processes (each is stateless).",
)
@click.option(
    "--heartbeat-timeout",
    default=None,
    type=click.FloatRange(min=0.1),
    help="Seconds without a heartbeat before a running run is marked crashed (default 300).",
)
@click.option("--no-ui", is_flag=True, help="Serve the API only, without the web pages.")
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    help="Log level of the server (uvicorn).",
)
@click.pass_context
def server(
    ctx: click.Context,
    backend_uri: str | None,
    artifacts_uri: str | None,
    host: str,
    port: int,
    workers: int,
    heartbeat_timeout: float | None,
    no_ui: bool,
    log_level: str,
) -> None:
    """Run the team tracking server (FastAPI under uvicorn); API docs at /docs.

    Without a subcommand it serves: migrations run at start-up (safe with several
    replicas on one PostgreSQL). Subcommands: `db upgrade`, `token create|revoke|list`, `policy`.
    """
    ctx.obj = {"backend_uri": backend_uri}
    if ctx.invoked_subcommand is not None:
        return
    from ..server import serve

    uri = _backend(ctx, backend_uri)
    click.echo(
        f"labledger server on http://{host}:{port} (store {_redact(uri)}, {workers} worker(s))",
        err=True,
    )
    serve(
        uri,
        artifacts_uri,
        host=host,
        port=port,
        workers=workers,
        heartbeat_timeout=heartbeat_timeout,
        ui=not no_ui,
        log_level=log_level,
    )


@server.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
@_backend_option
@click.pass_context
def db_upgrade(ctx: click.Context, backend_uri: str | None) -> None:
    """Apply pending migrations now (the server also does it at start-up)."""
    from ..store.sql import SqlStore

    uri = _backend(ctx, backend_uri)
    store = SqlStore(uri, migrate=False)
    try:
        before = store.applied_revisions() or set()
        store.ensure_schema()
        after = store.applied_revisions() or set()
    finally:
        store.close()
    new = sorted(after - before)
    click.echo(f"applied {', '.join(new)}" if new else f"up to date ({', '.join(sorted(after))})")


@server.group()
def token() -> None:
    """API tokens and per-project roles (read < write < admin)."""


def _registry(ctx: click.Context, backend_uri: str | None) -> Any:
    from ..server.tokens import TokenRegistry
    from ..store.sql import SqlStore

    return TokenRegistry(SqlStore(_backend(ctx, backend_uri)))


@token.command("create")
@_backend_option
@click.option("--user", required=True, help="User name (created when new).")
@click.option(
    "--project", required=True, help="Project the role applies to; '*' for every project."
)
@click.option("--role", required=True, type=_ROLES, help="read < write < admin.")
@click.option("--note", default=None, help="A reminder of what the token is for.")
@click.option("--json", "as_json", is_flag=True, help="Print the new token as JSON.")
@click.pass_context
def token_create(
    ctx: click.Context,
    backend_uri: str | None,
    user: str,
    project: str,
    role: str,
    note: str | None,
    as_json: bool,
) -> None:
    """Grant USER the ROLE on PROJECT and print a new token (shown this once only)."""
    reg = _registry(ctx, backend_uri)
    try:
        token_id, text = reg.create_token(user, project, role, note)
    finally:
        reg.store.close()
    if as_json:
        emit_json({"id": token_id, "user": user, "project": project, "role": role, "token": text})
        return
    click.echo(text)
    click.echo(
        f"token {token_id} for {user} ({role} on {project}); it is not stored and will not be shown again",
        err=True,
    )


@token.command("revoke")
@_backend_option
@click.argument("token_id")
@click.pass_context
def token_revoke(ctx: click.Context, backend_uri: str | None, token_id: str) -> None:
    """Revoke a token by its id (see `token list`) or its full text."""
    from .._exceptions import NotFoundError

    reg = _registry(ctx, backend_uri)
    try:
        done = reg.revoke(token_id)
    finally:
        reg.store.close()
    if not done:
        raise NotFoundError(f"no active token {token_id!r}")
    click.echo(f"revoked {token_id}")


@token.command("list")
@_backend_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of tokens.")
@click.pass_context
def token_list(ctx: click.Context, backend_uri: str | None, as_json: bool) -> None:
    """Tokens (never their text) with their user's roles."""
    reg = _registry(ctx, backend_uri)
    try:
        rows = reg.list_tokens()
    finally:
        reg.store.close()
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        roles = ", ".join(f"{p}:{role}" for p, role in sorted(r["roles"].items())) or "-"
        state = "active" if r["active"] else f"revoked {fmt_time(r['revoked_at'])}"
        click.echo(
            f"{r['id']}  {r['user']:<16} {state:<20} created {fmt_time(r['created_at'])}  {roles}"
        )


@server.command("policy")
@_backend_option
@click.argument("project")
@click.option(
    "--require",
    "require",
    multiple=True,
    type=click.Choice(["git", "seed", "dataset"]),
    help="What every finished run of PROJECT must carry (repeat). Replaces the policy.",
)
@click.option("--clear", is_flag=True, help="Remove the policy (runs need nothing).")
@click.option("--json", "as_json", is_flag=True, help="Print the policy as JSON.")
@click.pass_context
def policy(
    ctx: click.Context,
    backend_uri: str | None,
    project: str,
    require: tuple[str, ...],
    clear: bool,
    as_json: bool,
) -> None:
    """Show or set PROJECT's run policy, enforced by the server (admin: needs the database).

    A run that finishes without what the policy requires (a git commit, a seed, a
    dataset fingerprint) is recorded as failed, with what was missing, instead of
    finished. Without --require or --clear, prints the current policy. Over HTTP:
    ``PUT /api/v1/projects/{project}/policy`` with an admin token.
    """
    from ..store import REQUIREMENTS, Actor, WriteCore
    from ..store.sql import SqlStore

    store = SqlStore(_backend(ctx, backend_uri))
    try:
        rules = WriteCore(store)
        if require or clear:
            if require and clear:
                raise click.UsageError("give --require or --clear, not both")
            # whoever reaches the database directly administers it
            current = rules.set_policy(Actor.local_user(), project, list(require))
        else:
            current = rules.policy(project)
    finally:
        store.close()
    if as_json:
        emit_json({"project": project, "require": current})
        return
    if not current:
        click.echo(f"project {project!r}: no policy (runs need nothing to finish)")
        return
    click.echo(f"project {project!r}: a finished run must carry")
    for r in current:
        click.echo(f"  {r:<8} {REQUIREMENTS[r]}")


@click.command()
@click.option(
    "--uri", default=None, help="Server to upload to (default: the one each request was meant for)."
)
@click.option(
    "--token", default=None, envvar="LABLEDGER_TOKEN", help="API token (default LABLEDGER_TOKEN)."
)
@click.option(
    "--spool-dir",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="Spool folder (default LABLEDGER_SPOOL_DIR or ~/.cache/labledger/spool).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the upload report as JSON.")
def sync(uri: str | None, token: str | None, spool_dir: Path | None, as_json: bool) -> None:
    """Upload runs and batches left in the offline spool by clients that could not reach the server.

    Spooled artifacts go after the runs and batches: each file is checked against the
    sha256 recorded when it was logged (a file that is gone or changed is refused into
    the spool's rejected/ with the reason), its blobs uploaded, then its version
    registered. A request the server refuses for good (a 4xx other than 401/403/408/429)
    is reported once with its reason and moved to rejected/, never retried. The same
    outbox holds runs and points of SQLite/PostgreSQL stores (a run killed before its
    store answered, points spilled when the store stopped accepting writes): they are
    written into that store (also the older ``<spool dir>-local`` folders). Sessions of
    clients still running are skipped (they upload their own). Exits 1 when something
    could not be uploaded yet.
    """
    from ..remote import replay_local
    from ..remote.http import replay_folder_counts
    from ..remote.spool import default_spool_dir, locked_sessions, read_entries

    root = spool_dir or default_spool_dir()
    uploaded = rejected = left = artifacts = 0
    reasons: list[str] = []
    refusals: list[str] = []
    with locked_sessions(root) as sessions:
        for folder in sessions:
            counts = replay_folder_counts(folder, uri=uri, token=token)
            refusals.extend(counts.refusals)
            uploaded, rejected = uploaded + counts.uploaded, rejected + counts.rejected
            left, artifacts = left + counts.left, artifacts + counts.artifacts
            if counts.reason:
                reasons.append(counts.reason)
    with locked_sessions(Path(str(root) + "-local")) as sessions:  # before the one outbox
        for folder in sessions:
            up, rej, rest, reason, refused = replay_local(read_entries(folder))
            uploaded, rejected, left = uploaded + up, rejected + rej, left + rest
            refusals.extend(refused)
            if reason:
                reasons.append(reason)
    if as_json:
        emit_json(
            {
                "uploaded": uploaded,
                "rejected": rejected,
                "left": left,
                "artifacts": artifacts,
                "errors": reasons[:5],
                "refused": refusals,
                "spool_dir": str(root),
            }
        )
    else:
        for line in refusals:  # each refused request once, with its reason; never retried
            click.echo(f"refused {line}", err=True)
        click.echo(
            f"uploaded {uploaded} request(s) from {root}"
            + (f" ({artifacts} artifact version(s))" if artifacts else "")
            + (
                f"; {rejected} refused (kept with the reason in {root / 'rejected'})"
                if rejected
                else ""
            )
            + (f"; {left} left: {reasons[0]}" if left else "")
        )
    if left:
        raise SystemExit(1)


def _redact(uri: str) -> str:
    if "@" in uri and "://" in uri:
        scheme, rest = uri.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        if ":" in creds:
            return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
    return uri
