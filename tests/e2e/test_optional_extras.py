"""A command whose optional extra is not installed says which extra to install."""

from __future__ import annotations

import pytest

from .conftest import Cli


@pytest.mark.parametrize(
    ("blocked", "args", "extra"),
    [
        ("fastapi", ("ui", "--port", "0"), "server"),
        ("uvicorn", ("server", "--port", "0"), "server"),
        ("pandas", ("export", "-o", "runs.csv"), "analysis"),
    ],
)
def test_missing_optional_extra_is_one_line_error_naming_the_extra(
    cli: Cli, blocked: str, args: tuple[str, ...], extra: str
) -> None:
    out = cli(*args, block=(blocked,))
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: this needs the optional package {blocked!r}, which is not installed: "
        f"pip install 'labledger[{extra}]'"
    ]


def test_unknown_missing_module_still_raises(cli: Cli) -> None:
    # only optional extras are translated; a broken install must stay visible
    out = cli("ls", block=("labledger.cli.runs",))
    assert out.returncode == 1
    assert "ModuleNotFoundError" in out.stderr
