"""Notebooks: the executed cells are the run's code, and runs render as escaped HTML."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import labledger

from .conftest import ROOT

SESSION = textwrap.dedent(
    """
    import sys
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.user_ns["__vsc_ipynb_file__"] = sys.argv[2]  # what VS Code's kernel sets
    cells = [
        "%config Completer.use_jedi = False",
        "import sys, labledger\\nEVIL = '<script>alert(1)</script>'",
        "run = labledger.init('nb', store=sys.argv[1], name=EVIL, config={'lr': 0.1})\\nrun.log({'acc': 0.5})",
        "html = run._repr_html_()\\nrun.finish()",
    ]
    for cell in cells:
        result = shell.run_cell(cell, store_history=True)
        assert result.success, result.error_in_exec
    print(shell.user_ns["html"])
    """
)


def test_a_run_started_in_ipython_stores_the_cells_as_its_code(tmp_path: Path) -> None:
    pytest.importorskip("IPython")
    store = f"sqlite:///{tmp_path / 's.db'}"
    (tmp_path / "session.py").write_text(SESSION)
    notebook = tmp_path / "analysis.ipynb"
    notebook.write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    out = subprocess.run(
        [sys.executable, "session.py", store, str(notebook)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src"), "LABLEDGER_CAPTURE": "on"},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "<script>" not in out.stdout and "&lt;script&gt;" in out.stdout
    with labledger.Ledger(store) as L:
        rec = L.runs(project="nb")[0]
        env = L.get(rec["id"])["env"]
        nb = env["notebook"]
        assert nb["origin"] == "history" and nb["cells"] >= 3
        assert nb["path"] == str(notebook)
        snapshot = json_blob(L, env["code_snapshot"]["sha256"])  # outside git: the code of the run
        assert "labledger.init('nb'" in snapshot["notebook.py"]
        assert env["code_snapshot"]["notebook"] is True
        # the entry point is the re-runnable export of the executed cells, not the kernel
        cmd = env["command"]
        assert cmd["entry_point"] == "notebook.py" and cmd["argv"] == ["notebook.py"]
        assert cmd["notebook"] == str(notebook)
        assert "# %config Completer.use_jedi = False" in snapshot["notebook.py"]
    export = tmp_path / "export"
    export.mkdir()
    code = snapshot["notebook.py"].replace("run.finish()", "run.finish()\nprint('rerun-ok')")
    (export / "notebook.py").write_text(code)
    rerun = subprocess.run(
        [sys.executable, "notebook.py", store],
        cwd=export,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src"), "LABLEDGER_CAPTURE": "off"},
    )
    assert rerun.returncode == 0 and "rerun-ok" in rerun.stdout, rerun.stderr[-2000:]


def json_blob(ledger: labledger.Ledger, digest: str) -> dict[str, str]:
    import json

    data = ledger.store.get_blob(digest)
    assert data is not None
    return dict(json.loads(data))


def test_ledger_results_render_as_escaped_html_tables(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 's.db'}"
    with labledger.init(
        "h<t>ml",
        store=store,
        name="a&b",
        config={"x": "<img src=x>"},
        group='"quoted"',
        capture=False,
    ) as run:
        run.log({"<b>acc</b>": 1.0})
    with labledger.Ledger(store) as L:
        table = L.runs()._repr_html_()
        one = L.get(run.id)._repr_html_()
        assert isinstance(L.runs(), list) and isinstance(L.get(run.id), dict)
    for html in (table, one):
        assert "<img" not in html and "<b>acc" not in html and "h<t>ml" not in html
        assert "&lt;b&gt;acc&lt;/b&gt;" in html and "a&amp;b" in html
    assert "&lt;img src=x&gt;" in one and "&quot;quoted&quot;" in one
    assert table.startswith("<table") and table.count("<tr>") == 2
