"""The public API is exactly what ``labledger.__all__`` says (httpx's exported-members check)."""

from __future__ import annotations

import subprocess
import sys

import labledger


def test_all_names_are_exported_and_sorted() -> None:
    assert labledger.__all__ == sorted(
        labledger.__all__, key=str.lower
    ) or labledger.__all__ == sorted(labledger.__all__)
    for name in labledger.__all__:
        assert getattr(labledger, name) is not None, name


def test_public_members_are_listed_in_all() -> None:
    public = {n for n in dir(labledger) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(labledger, n)).__name__ == "module"}
    assert public - modules - {"annotations"} <= set(labledger.__all__)


def test_contract_names_exist() -> None:
    for name in ("init", "Run", "Ledger", "seed_everything"):
        assert name in labledger.__all__
    for attr in ("log", "finish", "log_artifact", "log_model", "use_artifact", "log_dataset"):
        assert callable(getattr(labledger.Run, attr))


def test_import_does_not_load_heavy_modules() -> None:
    code = (
        "import sys, labledger\n"
        "heavy = [m for m in ('sqlalchemy', 'numpy', 'httpx', 'rich', 'fastapi', 'alembic', 'pandas') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_every_exception_derives_from_the_root() -> None:
    for name in labledger.__all__:
        obj = getattr(labledger, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, labledger.LabledgerError), name


def test_trust_names_exist() -> None:
    assert {"cite", "check"} <= set(labledger.__all__)
    assert isinstance(labledger.Run.notes, property) and labledger.Run.notes.fset is not None
