"""Read-only commands in a directory with no store say so in one line and create nothing."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import Cli


def test_read_commands_in_an_empty_directory_create_no_store(cli: Cli, tmp_path: Path) -> None:
    expected = (
        f"no labledger store at {tmp_path.resolve() / '.labledger' / 'ledger.db'} yet: "
        "start a run with labledger.init(), or set LABLEDGER_URI"
    )
    out = cli("ls")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == expected and out.stderr == ""
    out = cli("ls", "--json")
    assert out.returncode == 0 and json.loads(out.stdout) == []
    for args in (
        ("show", "abc"),
        ("best", "-m", "loss"),
        ("gc",),
        ("artifacts", "versions"),
        ("env", "abc"),
    ):
        out = cli(*args)
        assert out.returncode == 1, (args, out.stdout, out.stderr)
        assert out.stderr.strip() == f"error: {expected}", (args, out.stderr)
    assert not (tmp_path / ".labledger").exists()
    assert not list(tmp_path.rglob("ledger.db*"))
