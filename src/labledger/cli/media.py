"""``labledger media ls|get``: a run's rich results (images, tables, confusion matrices,
curves, histograms, texts)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click

from .._values import fmt_size
from ._output import console, emit_json, open_ledger, store_option

__all__ = ["file_name", "media"]

_EXT = {"text": "txt"}


def file_name(item: dict[str, Any]) -> str:
    """Where ``media get`` writes an item, under its key's folder: ``step-S[-seq].EXT``."""
    if item["kind"] == "image":
        ext = str((item.get("meta") or {}).get("format") or "png")
    else:
        ext = _EXT.get(item["kind"], "json")
    seq = f"-{item['seq']}" if item["seq"] else ""
    return f"step-{item['step']}{seq}.{ext}"


def _folder(key: str) -> str:
    # a key's "/" make folders; anything a file system may refuse becomes "_"
    parts = [re.sub(r"[^A-Za-z0-9._=+-]", "_", p) or "_" for p in key.split("/")]
    return "/".join("_" if p in (".", "..") else p for p in parts)


@click.group("media")
def media() -> None:
    """A run's rich results: images, tables, confusion matrices, curves, histograms, texts."""


@media.command("ls")
@click.argument("run_ref")
@click.option("--key", default=None, help="List the values of one key (steps, sizes, captions).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@store_option
def ls(run_ref: str, key: str | None, as_json: bool, store: str | None) -> None:
    """List RUN's rich-result keys with their kind and count (or, with --key, its values)."""
    from rich.table import Table

    with open_ledger(store) as ledger:
        rows = ledger.media(run_ref, key) if key is not None else ledger.media_keys(run_ref)
    if as_json:
        emit_json(rows)
        return
    if not rows:
        console().print("no rich results" + (f" under {key!r}" if key else ""), markup=False)
        return
    if key is None:
        t = Table(header_style="bold")
        for col in ("key", "kind", "count", "steps", "first step", "last step"):
            t.add_column(col, overflow="fold")
        for r in rows:
            t.add_row(
                r["key"], r["kind"], str(r["count"]), str(r["steps"]),
                str(r["first_step"]), str(r["last_step"]),
            )  # fmt: skip
    else:
        t = Table(header_style="bold")
        for col in ("step", "seq", "kind", "size", "sha256", "caption"):
            t.add_column(col, overflow="fold")
        for r in rows:
            t.add_row(
                str(r["step"]), str(r["seq"]), r["kind"], fmt_size(r["size"]),
                r["sha256"][:16], r.get("caption") or "",
            )  # fmt: skip
    console().print(t)


@media.command("get")
@click.argument("run_ref")
@click.argument("key")
@click.option("--step", type=click.IntRange(min=0), default=None, help="Only this step.")
@click.option(
    "-o",
    "--output",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder to write into (KEY's '/' become sub-folders).",
)
@store_option
def get(run_ref: str, key: str, step: int | None, out: Path, store: str | None) -> None:
    """Write KEY's rich results of RUN (every step, or --step S) as files into a folder:
    images as PNG (or their logged format), texts as .txt, the rest as JSON."""
    from .._exceptions import NotFoundError

    with open_ledger(store) as ledger:
        items = ledger.media(run_ref, key, step=step)
        if not items:
            at = f" at step {step}" if step is not None else ""
            raise NotFoundError(f"run {run_ref} has no rich result {key!r}{at}")
        folder = out / _folder(key)
        folder.mkdir(parents=True, exist_ok=True)
        total = 0
        for item in items:
            path = folder / file_name(item)
            data = ledger.media_bytes(run_ref, item)
            path.write_bytes(data)
            total += len(data)
    click.echo(f"wrote {len(items)} file(s), {fmt_size(total)}, to {folder}")
