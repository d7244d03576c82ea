"""Every LABLEDGER_* variable is declared once (``_settings.SETTINGS``), read through it, and documented.

datasette's habit: the documentation table is checked against the code, so neither can
drift from the other (docs/settings.md).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from labledger._settings import SETTINGS, setting

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "src" / "labledger"
NAME = re.compile(r"LABLEDGER_[A-Z0-9_]*[A-Z0-9](?![A-Z0-9_*])")
# a read: os.environ.get / os.getenv / env.get / os.environ["..."] (not an assignment to it)
DIRECT_READ = re.compile(
    r"""(environ\.get|getenv|env\.get)\(\s*["']LABLEDGER_|environ\[\s*["']LABLEDGER_\w*["']\](?!\s*=[^=])"""
)
ROW = re.compile(r"^\| `(LABLEDGER_[A-Z0-9_]+)` \| (`[^`]*`|—) \|")


def _sources() -> list[Path]:
    return sorted(p for p in PKG.rglob("*.py"))


def _documented() -> dict[str, str | None]:
    rows: dict[str, str | None] = {}
    for line in (ROOT / "docs" / "settings.md").read_text().splitlines():
        m = ROW.match(line)
        if m:
            rows[m.group(1)] = None if m.group(2) == "—" else m.group(2).strip("`")
    return rows


def test_every_variable_the_code_names_is_declared() -> None:
    used = {n for p in _sources() for n in NAME.findall(p.read_text())}
    assert used - set(SETTINGS) == set(), "declare these in labledger/_settings.py SETTINGS"
    assert set(SETTINGS) - used == set(), "declared but never used: remove them"


def test_the_docs_table_matches_the_declarations() -> None:
    documented = _documented()
    assert documented == {name: default for name, (default, _help) in SETTINGS.items()}


def test_code_reads_variables_only_through_setting() -> None:
    offenders = [
        f"{p.relative_to(ROOT)}:{i}"
        for p in _sources()
        if p.name != "_settings.py"
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if DIRECT_READ.search(line)
    ]
    assert offenders == []


def test_setting_returns_the_value_else_the_default() -> None:
    assert setting("LABLEDGER_FINISH_TIMEOUT", {}) == "60"
    assert setting("LABLEDGER_FINISH_TIMEOUT", {"LABLEDGER_FINISH_TIMEOUT": "5"}) == "5"
    assert setting("LABLEDGER_URI", {}) is None
    assert setting("LABLEDGER_CONSOLE", {"LABLEDGER_CONSOLE": ""}) == ""  # set, even empty
    with pytest.raises(KeyError):
        setting("LABLEDGER_NOT_A_SETTING", {})
