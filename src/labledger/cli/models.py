"""``labledger models register|ls|show|alias``: the model registry.

Over an SQL store the write core's rules run here as the local user; over a server
(``--store http://...``) the server's core applies them as the token's user.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

import click

from ._output import console, emit_json, fmt_time, store_option

__all__ = ["models"]


class _Registry:
    """The registry as one actor sees it: the local write core, or the server's."""

    def __init__(self, store: Any) -> None:
        from .._author import local_author
        from ..store import Actor, Location, WriteCore

        self.store = store
        self.remote = Location.of(store.uri).is_remote
        if not self.remote:
            self.core = WriteCore(cast("Any", store))
            self.actor = Actor.local_user(local_author())

    def models(self) -> list[dict[str, Any]]:
        if self.remote:
            out: list[dict[str, Any]] = self.store.registered_models()
            return out
        return self.core.readable_models(self.actor)

    def register(self, run: str, artifact: str, name: str, description: str | None) -> Any:
        from .._exceptions import NotFoundError

        if self.remote:
            try:
                self.store.registered_model(name)
            except NotFoundError:
                self.store.create_registered_model(name)
            run_id = self.store.resolve_run_id(run)
            produced = self.store.list_run_artifacts(run_id)["produced"]
            want = [v for v in produced if artifact in (v["name"], f"{v['name']}:v{v['version']}")]
            if not want:
                from .._exceptions import ArtifactNotFoundError

                raise ArtifactNotFoundError(artifact, f"run {run_id[:8]} produced no such artifact")
            best = max(want, key=lambda v: int(v["version"]))
            return self.store.create_model_version(
                name, run_id=run_id, artifact_version_id=best["id"], description=description
            )
        try:
            self.core.readable_model(self.actor, name)
        except NotFoundError:
            self.core.create_registered_model(self.actor, name)
        return self.core.create_model_version(
            self.actor, name, run, artifact=artifact, description=description
        )

    def show(self, name: str) -> dict[str, Any]:
        """The model, its versions (with source run and artifact) and its alias moves."""
        if self.remote:
            return {
                "model": self.store.registered_model(name),
                "versions": self.store.model_versions(name),
                "alias_history": self.store.model_alias_events(name),
            }
        return {
            "model": self.core.shown_models(self.actor, name)[0],
            "versions": self.core.described_versions(self.actor, name),
            "alias_history": self.core.model_alias_history(self.actor, name),
        }

    def alias(self, name: str, alias: str, version: int | None) -> Any:
        if self.remote:
            return self.store.set_model_alias(name, alias, version)
        return self.core.set_model_alias(self.actor, name, alias, version)


@contextmanager
def _registry(uri: str | None) -> Iterator[_Registry]:
    from ..store import existing_store_uri, open_store

    store = open_store(existing_store_uri(uri))
    try:
        yield _Registry(store)
    finally:
        store.close()


@click.group()
def models() -> None:
    """The model registry: named models whose versions are finished runs' artifacts."""


def _common(fn: Callable[..., Any]) -> Callable[..., Any]:
    out: Callable[..., Any] = store_option(fn)
    return out


@models.command("register")
@click.argument("run_ref", metavar="RUN")
@click.argument("artifact")
@click.argument("name")
@click.option("--description", default=None, help="What this version is.")
@click.option("--json", "as_json", is_flag=True, help="Print the new version as JSON.")
@_common
def register(
    run_ref: str,
    artifact: str,
    name: str,
    description: str | None,
    as_json: bool,
    store: str | None,
) -> None:
    """Register RUN's artifact ARTIFACT (name or name:vN) as a new version of model NAME.

    The run must have finished: a version points at its sealed record and its
    content-addressed artifact version, never at a copy."""
    with _registry(store) as reg:
        v = reg.register(run_ref, artifact, name, description)
    if as_json:
        emit_json(v)
        return
    click.echo(
        f"registered {name} version {v['version']}: run {v['run_id'][:8]}, "
        f"artifact version {v['artifact_version_id'][:12]}"
    )


@models.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print the models as JSON.")
@_common
def ls(as_json: bool, store: str | None) -> None:
    """Registered models, their aliases and latest version."""
    with _registry(store) as reg:
        found = reg.models()
    if as_json:
        emit_json(found)
        return
    from rich.table import Table

    table = Table(box=None)
    for col in ("model", "latest", "run", "aliases", "project", "updated"):
        table.add_column(col)
    for m in found:
        latest = m.get("latest_version") or {}
        aliases = " ".join(f"@{a}=v{n}" for a, n in sorted(m["aliases"].items()))
        table.add_row(
            m["name"],
            f"v{latest['version']}" if latest else "-",
            str(latest.get("run_id") or "-")[:8],
            aliases or "-",
            m.get("project") or "-",
            fmt_time(m["updated_at"]),
        )
    console().print(table)


@models.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the model as JSON.")
@_common
def show(name: str, as_json: bool, store: str | None) -> None:
    """Model NAME: its versions (source run, headline facts, artifact digest) and the
    history of its aliases (who moved which, when)."""
    with _registry(store) as reg:
        found = reg.show(name)
    if as_json:
        emit_json(found)
        return
    from rich.table import Table

    m = found["model"]
    click.echo(f"{m['name']}  (project {m.get('project') or '-'})")
    if m.get("description"):
        click.echo(f"  {m['description']}")
    table = Table(box=None)
    for col in ("version", "aliases", "run", "status", "artifact", "sha256", "by", "created"):
        table.add_column(col)
    for v in reversed(found["versions"]):
        run, art = v.get("run") or {}, v.get("artifact") or {}
        status = str(run.get("status") or "-") + (" sealed" if run.get("sealed") else "")
        table.add_row(
            f"v{v['version']}",
            " ".join(f"@{a}" for a in v["aliases"]) or "-",
            str(v["run_id"])[:8],
            status,
            f"{art['name']}:v{art['version']}" if art else "-",
            str(art.get("sha256") or "-")[:16],
            v.get("author") or "-",
            fmt_time(v["created_at"]),
        )
    console().print(table)
    moves = found["alias_history"]
    if moves:
        click.echo("alias history:")
    for e in moves:
        old = "-" if e["old_version"] is None else f"v{e['old_version']}"
        new = "(deleted)" if e["new_version"] is None else f"v{e['new_version']}"
        chained = f"audit #{e['audit_seq']}" if e["audit_seq"] is not None else "not chained"
        click.echo(
            f"  {fmt_time(e['at'])}  @{e['alias']}: {old} -> {new}  by {e['author'] or '?'}"
            f"  ({chained})"
        )


@models.command("alias")
@click.argument("name")
@click.argument("alias")
@click.argument("version", required=False, type=click.IntRange(min=1))
@click.option("--delete", is_flag=True, help="Remove the alias instead.")
@_common
def alias(name: str, alias: str, version: int | None, delete: bool, store: str | None) -> None:
    """Point ALIAS of model NAME at VERSION (an edit event in the audit chain, by you)."""
    if version is None and not delete:
        raise click.UsageError("give a VERSION, or --delete")
    with _registry(store) as reg:
        v = reg.alias(name, alias, None if delete else version)
    if delete:
        click.echo(f"removed {name}@{alias}")
    else:
        click.echo(f"{name}@{alias} -> version {v['version']} (run {v['run_id'][:8]})")
