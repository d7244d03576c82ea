"""``labledger env diff`` does not report drift between two names of one interpreter."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from labledger.capture.diff import env_diff


def test_python_and_python3_in_one_venv_are_not_drift(tmp_path: Path) -> None:
    bindir = tmp_path / "venv" / "bin"
    bindir.mkdir(parents=True)
    (bindir / "python3").symlink_to(sys.executable)
    (bindir / "python").symlink_to("python3")
    a = {"python": {"version": "3.11.7", "executable": str(bindir / "python")}}
    b = {"python": {"version": "3.11.7", "executable": str(bindir / "python3")}}
    assert env_diff(a, b)["python"] == {}
    assert env_diff(a, b)["same"] is True


def test_another_venv_is_still_drift(tmp_path: Path) -> None:
    one, two = tmp_path / "one" / "bin", tmp_path / "two" / "bin"
    for d in (one, two):
        d.mkdir(parents=True)
        (d / "python").symlink_to(sys.executable)
    a = {"python": {"executable": str(one / "python")}}
    b = {"python": {"executable": str(two / "python")}}
    assert env_diff(a, b)["python"] == {
        "executable": {"a": str(one / "python"), "b": str(two / "python")}
    }
    assert os.path.samefile(one / "python", two / "python")  # same file, other venv
