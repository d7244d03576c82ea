"""``labledger artifacts ls|versions|get|alias|rm|verify`` and ``labledger gc``."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from .._settings import setting
from .._values import fmt_size
from ._output import console, emit_json, fmt_time, progress, store_option

__all__ = ["artifacts", "gc"]


def _default_project() -> str:
    from ..store import default_root

    return setting("LABLEDGER_PROJECT") or default_root().parent.name or "default"


@contextmanager
def _store(uri: str | None) -> Iterator[Any]:
    from ..store import existing_store_uri, open_store

    store = open_store(existing_store_uri(uri))  # these commands never create a store
    try:
        yield store
    finally:
        store.close()


def _artifacts_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--artifacts",
        "artifacts_uri",
        envvar="LABLEDGER_ARTIFACTS_URI",
        default=None,
        help="Artifact storage: a directory or s3://bucket/prefix (default: LABLEDGER_ARTIFACTS_URI, "
        "else where each version was written, else artifacts/ beside the store).",
    )(fn)


def _project_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--project",
        "-p",
        default=None,
        help="Project of references without one (default: LABLEDGER_PROJECT, else the repository name).",
    )(fn)


def _versions_table(title: str, versions: list[dict[str, Any]], *, used: bool = False) -> Any:
    from rich.table import Table

    t = Table(title=title, title_justify="left", header_style="bold")
    for col in (
        "reference",
        "kind",
        "aliases",
        "version digest",
        "size",
        "files",
        "used" if used else "created",
    ):
        t.add_column(col, overflow="fold")
    for v in versions:
        when = v.get("used_at") if used else v.get("created_at")
        t.add_row(
            v["uri"],
            v["kind"],
            ", ".join(v["aliases"]),
            v["sha256"][:16],
            fmt_size(v["size"]),
            str(v["file_count"]),
            fmt_time(when),
        )
    return t


@click.group()
def artifacts() -> None:
    """Artifacts: files and models stored by content, versioned, with lineage."""


@artifacts.command("ls")
@click.argument("run_ref", metavar="RUN")
@click.option(
    "--json", "as_json", is_flag=True, help="Print {produced: [...], consumed: [...]} as JSON."
)
@store_option
def ls_cmd(run_ref: str, as_json: bool, store: str | None) -> None:
    """List the artifacts RUN produced and consumed. RUN is an id, prefix or name."""
    with _store(store) as st:
        run_id = st.resolve_run_id(run_ref)
        found = st.list_run_artifacts(run_id)
    if as_json:
        emit_json({"run_id": run_id, **found})
        return
    c = console()
    if not found["produced"] and not found["consumed"]:
        c.print(f"run {run_id[:8]} has no artifacts")
        return
    if found["produced"]:
        c.print(_versions_table("produced", found["produced"]))
    if found["consumed"]:
        c.print(_versions_table("consumed", found["consumed"], used=True))


@artifacts.command("versions")
@click.argument("name", required=False)
@_project_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of versions.")
@store_option
def versions_cmd(name: str | None, project: str | None, as_json: bool, store: str | None) -> None:
    """List artifact versions (of NAME, or all) of a project, with the runs that used them."""
    proj = project or _default_project()
    with _store(store) as st:
        found = st.list_artifact_versions(proj, name)
        for v in found:
            v["consumers"] = st.artifact_consumers(v["id"])
    if as_json:
        emit_json(found)
        return
    if not found:
        console().print(f"project {proj!r} has no artifacts" + (f" named {name!r}" if name else ""))
        return
    from rich.table import Table

    t = Table(header_style="bold")
    for col in ("reference", "kind", "aliases", "size", "produced by", "used by"):
        t.add_column(col, overflow="fold")
    for v in found:
        t.add_row(
            v["uri"],
            v["kind"],
            ", ".join(v["aliases"]),
            fmt_size(v["size"]),
            (v["run_id"] or "")[:8],
            ", ".join(r[:8] for r in v["consumers"]),
        )
    console().print(t)


@artifacts.command("get")
@click.argument("ref", metavar="REF")
@click.option(
    "--output",
    "-o",
    "output",
    required=True,
    type=click.Path(file_okay=False),
    help="Directory to write the artifact's files into.",
)
@_project_option
@_artifacts_option
@click.option(
    "--json", "as_json", is_flag=True, help="Print the version and written paths as JSON."
)
@store_option
def get_cmd(
    ref: str,
    output: str,
    project: str | None,
    artifacts_uri: str | None,
    as_json: bool,
    store: str | None,
) -> None:
    """Download artifact REF (name, name:v3, name:alias, project/name:alias) into DIR, verified."""
    from ..artifacts import download_artifact

    # a bar of bytes on stderr only (a terminal); --json output on stdout stays clean
    with progress(f"downloading {ref}", unit="bytes") as bar, _store(store) as st:
        version, paths = download_artifact(
            st, project or _default_project(), ref, output, artifacts_uri, on_progress=bar.update
        )
    if as_json:
        emit_json({"version": version, "paths": [str(p) for p in paths]})
        return
    console().print(
        f"{version['uri']}: {len(paths)} file(s), {fmt_size(version['size'])} verified -> {output}"
    )


@artifacts.command("alias")
@click.argument("ref", metavar="REF")
@click.argument("alias")
@_project_option
@click.option("--json", "as_json", is_flag=True, help="Print the version as JSON.")
@store_option
def alias_cmd(ref: str, alias: str, project: str | None, as_json: bool, store: str | None) -> None:
    """Point ALIAS (e.g. best, production) at version REF; it moves off any other version."""
    with _store(store) as st:
        v = st.get_artifact_version(project or _default_project(), ref)
        v = st.set_artifact_alias(v["project"], v["name"], v["version"], alias)
    if as_json:
        emit_json(v)
        return
    console().print(f"{v['project']}/{v['name']}:{alias} -> v{v['version']}")


@artifacts.command("rm")
@click.argument("ref", metavar="REF")
@_project_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@store_option
def rm_cmd(ref: str, project: str | None, yes: bool, store: str | None) -> None:
    """Forget version REF; its bytes are removed by the next `labledger gc --yes` if nothing else uses them."""
    with _store(store) as st:
        v = st.get_artifact_version(project or _default_project(), ref)
        if not yes:
            click.confirm(f"forget {v['uri']} ({fmt_size(v['size'])})?", abort=True)
        st.delete_artifact_version(v["project"], v["uri"])
    console().print(f"forgot {v['uri']}")


def _blob_store(st: Any, artifacts_uri: str | None) -> Any:
    from ..artifacts import open_blob_store

    return open_blob_store(artifacts_uri, st.uri)


@artifacts.command("verify")
@_artifacts_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@store_option
def verify_cmd(artifacts_uri: str | None, as_json: bool, store: str | None) -> None:
    """Re-hash every stored blob (artifact files and rich results); report damaged and
    missing ones (exit 1 when any)."""
    from ..artifacts import verify_blobs

    with _store(store) as st:
        blobs = _blob_store(st, artifacts_uri)
        expected = {
            f["sha256"]
            for v in st.list_artifact_versions()
            if v.get("storage") in (None, blobs.uri)
            for f in v["files"]
        }
        # rich results (images, tables, ...) keep their bytes there too
        if hasattr(st, "media_blob_shas") and st.media_blobs_uri() == blobs.uri:
            expected |= st.media_blob_shas()
    report = verify_blobs(blobs, expected)
    if as_json:
        emit_json(report)
    else:
        c = console()
        c.print(
            f"{report['store']}: {report['checked']} blob(s), {fmt_size(report['bytes'])} re-hashed"
        )
        for d in report["damaged"]:
            c.print(f"[red]damaged[/] {d['sha256']} (content hashes to {d['actual'][:16]}…)")
        for sha in report["missing"]:
            c.print(f"[red]missing[/] {sha}")
        if report["ok"]:
            c.print("[green]all blobs intact[/]")
    if not report["ok"]:
        sys.exit(1)


@click.command()
@click.option("--yes", is_flag=True, help="Delete (without it, only list what would be deleted).")
@click.option(
    "--min-age",
    default=3600.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Keep unreferenced blobs younger than this many seconds (uploads still registering).",
)
@_artifacts_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@store_option
def gc(
    yes: bool, min_age: float, artifacts_uri: str | None, as_json: bool, store: str | None
) -> None:
    """Remove blobs that no artifact version and no rich result references (dry run unless --yes)."""
    from ..artifacts import collect_garbage

    with _store(store) as st:
        blobs = _blob_store(st, artifacts_uri)
        referenced = st.referenced_blob_shas()
    report = collect_garbage(blobs, referenced, min_age=min_age, delete=yes)
    if as_json:
        emit_json(report)
        return
    verb = "deleted" if yes else "would delete"
    console().print(
        f"{report['store']}: {verb} {report['count']} unreferenced blob(s), {fmt_size(report['bytes'])}"
    )
    if not yes and report["count"]:
        console().print("run `labledger gc --yes` to delete them")
