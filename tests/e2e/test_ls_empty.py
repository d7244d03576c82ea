"""``labledger ls`` with a project or filter that matches nothing, on a store with runs."""

from __future__ import annotations

import json

from labledger import init

from .conftest import Cli


def test_ls_that_matches_nothing_says_so_instead_of_no_runs_yet(cli: Cli, store_uri: str) -> None:
    with init("vision", config={"lr": 0.1}, store=store_uri, capture=False) as run:
        run.log({"acc": 0.5})
    out = cli("ls", "--project", "nlp", "--store", store_uri)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "no runs match project 'nlp'"
    out = cli("ls", "-p", "vision", "-f", "config.lr > 1", "--store", store_uri)
    assert out.stdout.strip() == "no runs match project 'vision' and filter 'config.lr > 1'"
    out = cli("ls", "-f", "config.lr > 1", "--json", "--store", store_uri)
    assert json.loads(out.stdout) == []
    # an empty store still points a new user to a first run
    from labledger.store import open_store

    empty_uri = store_uri.replace(".db", "-empty.db")
    open_store(empty_uri).close()  # reading never creates a store: make an empty one
    empty = cli("ls", "--store", empty_uri)
    assert empty.stdout.startswith("no runs yet"), empty.stdout
