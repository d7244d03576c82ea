"""`ls --sort` with a bad key says "invalid sort key" (not "invalid filter"); `ls --columns`
naming a column no run has warns once on stderr and still prints the table."""

from __future__ import annotations

from labledger import init

from .conftest import Cli


def test_bad_sort_key_is_reported_as_a_sort_key(cli: Cli, store_uri: str) -> None:
    with init("vision", config={"lr": 0.1}, store=store_uri, capture=False) as run:
        run.log({"acc": 0.5})
    out = cli("ls", "--sort", "nope.x", "--store", store_uri)
    assert out.returncode == 1, out.stderr
    assert out.stderr.startswith("error: invalid sort key 'nope.x': unknown field 'nope'")
    assert "invalid filter" not in out.stderr
    out = cli("ls", "--sort", "-tags", "--store", store_uri)
    assert out.stderr.strip() == "error: invalid sort key '-tags': tags cannot be sorted on"

    out = cli("ls", "--columns", "nope,config.lr", "--store", store_uri)
    assert out.returncode == 0, out.stderr
    assert out.stderr.splitlines() == [
        "warning: column 'nope' matched no run (columns are id, project, name, author, "
        "status, group, created, ended, runtime, repro, tags, seed, config.KEY or summary.KEY)"
    ]
    assert run.id[:8] in out.stdout and "config.lr" in out.stdout and "0.1" in out.stdout
    quiet = cli("ls", "--columns", "config.lr", "--store", store_uri)
    assert quiet.returncode == 0 and quiet.stderr == ""
