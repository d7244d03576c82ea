"""Progress bars of the long commands (``export``, ``importance``, ``artifacts get``).

The commands run in real subprocesses with stderr on a pseudo-terminal (what a user's
terminal is): the bar is drawn there, with counts of runs or bytes, while stdout stays
clean JSON. With stderr not a terminal, or LABLEDGER_CONSOLE=off, nothing is drawn.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path
from typing import Any

import pytest
from _qhelpers import insert, make_run
from click.testing import CliRunner

from labledger import Ledger
from labledger.artifacts import download_artifact
from labledger.cli import cli
from labledger.store import open_store

ROOT = Path(__file__).resolve().parents[2]
N_RUNS = 240
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABLEDGER_")}
    env.update(PYTHONPATH=str(ROOT / "src"), TERM="xterm-256color", COLUMNS="120", **extra)
    env.pop("CI", None)
    return env


def _labledger(*args: str, tty: bool, cwd: Path, **extra: str) -> tuple[int, str, str]:
    """Run the CLI; stderr on a pseudo-terminal when ``tty``. Returns (rc, stdout, stderr)."""
    cmd = [sys.executable, "-m", "labledger.cli", *args]
    if not tty:
        p = subprocess.run(
            cmd, cwd=cwd, env=_env(**extra), capture_output=True, text=True, timeout=120
        )
        return p.returncode, p.stdout, p.stderr
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=_env(**extra), stdout=subprocess.PIPE, stderr=slave, text=True
        )
        os.close(slave)
        out, _ = proc.communicate(timeout=120)
        reader.join(timeout=10)
    finally:
        os.close(master)
    return proc.returncode, out, b"".join(chunks).decode("utf-8", "replace")


@pytest.fixture
def filled(store_uri: str) -> str:
    st = open_store(store_uri)
    try:
        insert(
            st,
            [
                make_run(
                    config={"lr": 10 ** -(1 + i % 4), "depth": i % 7, "noise": (i * 37) % 11},
                    summary={"val_acc": 0.5 + 0.1 * (i % 4) + 0.001 * (i % 7)},
                    created_at=1_700_000_000.0 + i,
                )
                for i in range(N_RUNS)
            ],
        )
    finally:
        st.close()
    return store_uri


def _plain(text: str) -> str:
    return ANSI.sub("", text)


def test_export_draws_a_run_count_bar_on_a_terminal_and_keeps_stdout_clean(
    filled: str, tmp_path: Path
) -> None:
    out_file = tmp_path / "runs.csv"
    rc, out, err = _labledger(
        "export", "-o", str(out_file), "--json", "--store", filled, tty=True, cwd=tmp_path
    )
    assert rc == 0, err
    assert json.loads(out) == {"path": str(out_file), "format": "csv", "runs": N_RUNS}
    assert "\x1b" not in out
    text = _plain(err)
    assert f"{N_RUNS}/{N_RUNS} runs" in text, text
    assert "reading runs" in text and "writing csv" in text
    assert "━" in text  # the bar itself
    assert len(out_file.read_text().splitlines()) == N_RUNS + 1


def test_no_bar_when_stderr_is_not_a_terminal_or_console_is_off(
    filled: str, tmp_path: Path
) -> None:
    rc, out, err = _labledger(
        "export", "-o", str(tmp_path / "a.json"), "--store", filled, tty=False, cwd=tmp_path
    )
    assert rc == 0, err
    assert err == "" and "━" not in out and "\x1b" not in out
    assert f"wrote {N_RUNS} runs" in out
    rc, out, err = _labledger(
        "export",
        "-o",
        str(tmp_path / "b.json"),
        "--store",
        filled,
        tty=True,
        cwd=tmp_path,
        LABLEDGER_CONSOLE="off",
    )
    assert rc == 0, err
    assert "━" not in err and "runs" not in _plain(err)


def test_importance_draws_loading_and_reading_bars(filled: str, tmp_path: Path) -> None:
    rc, out, err = _labledger(
        "importance", "--metric", "val_acc", "--json", "--store", filled, tty=True, cwd=tmp_path
    )
    assert rc == 0, err
    items = json.loads(out)
    assert items[0]["key"] == "lr"
    text = _plain(err)
    # one line for the runs loaded, one for their configs read (its description then
    # follows the model-fitting stages)
    assert re.search(rf"loading runs +━+ {N_RUNS}/{N_RUNS} runs", text), text
    assert re.search(rf"importance of 3 config keys +━+ {N_RUNS}/{N_RUNS} runs", text), text
    rc, _, err = _labledger(
        "importance", "--metric", "val_acc", "--store", filled, tty=False, cwd=tmp_path
    )
    assert rc == 0 and "━" not in err and "\x1b" not in err


def test_importance_reads_runs_page_by_page_with_the_same_result(
    filled: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command pages through the runs to count them; the answer equals the read API's."""
    from labledger.cli import query
    from labledger.cli._output import ProgressBar

    monkeypatch.setattr(query, "PAGE", 50)
    seen: list[tuple[int | None, int | None]] = []

    class Recorder:
        def __init__(self, *a: Any, **k: Any) -> None:
            pass

        def __enter__(self) -> Any:
            bar = ProgressBar()
            bar.update = lambda completed=None, total=None, description=None: seen.append(  # type: ignore[method-assign]
                (completed, total)
            )
            return bar

        def __exit__(self, *exc: object) -> None:
            return None

    monkeypatch.setattr(query, "progress", Recorder)
    res = CliRunner().invoke(
        cli, ["importance", "--metric", "val_acc", "--json", "--store", filled]
    )
    assert res.exit_code == 0, res.output
    with Ledger(filled) as ledger:
        expected = ledger.importance("val_acc")
    assert json.loads(res.output) == json.loads(json.dumps(expected))
    loaded = [c for c, t in seen if t == N_RUNS and c is not None]
    assert loaded[:6] == [0, 50, 100, 150, 200, 240]  # counted page by page


def test_download_reports_bytes_as_they_arrive(store_uri: str, tmp_path: Path) -> None:
    big = tmp_path / "model.bin"
    big.write_bytes(os.urandom(3 * 8 * 1024 * 1024 + 12345))  # several 8 MiB copy chunks
    small = tmp_path / "vocab.txt"
    small.write_text("a b c\n")
    import labledger

    with labledger.init("p", store=store_uri, console=False) as run:
        run.log_artifact(str(big), name="model").wait(60)
    st = open_store(store_uri)
    try:
        calls: list[tuple[int, int]] = []
        version, paths = download_artifact(
            st, "p", "model:latest", tmp_path / "out", on_progress=lambda d, t: calls.append((d, t))
        )
    finally:
        st.close()
    total = big.stat().st_size
    assert version["size"] == total and paths[0].read_bytes() == big.read_bytes()
    assert {t for _, t in calls} == {total}
    done = [d for d, _ in calls]
    assert done == sorted(done) and done[-1] == total
    assert len({d for d in done if 0 < d < total}) >= 3  # progress within the file


def test_artifacts_get_draws_a_byte_bar(store_uri: str, tmp_path: Path) -> None:
    data = os.urandom(2 * 1024 * 1024)
    (tmp_path / "w.bin").write_bytes(data)
    import labledger

    with labledger.init("p", store=store_uri, console=False) as run:
        run.log_artifact(str(tmp_path / "w.bin"), name="weights").wait(60)
    rc, out, err = _labledger(
        "artifacts",
        "get",
        "weights:latest",
        "-p",
        "p",
        "-o",
        str(tmp_path / "got"),
        "--json",
        "--store",
        store_uri,
        tty=True,
        cwd=tmp_path,
    )
    assert rc == 0, err
    doc = json.loads(out)
    assert Path(doc["paths"][0]).read_bytes() == data
    text = _plain(err)
    assert "downloading weights:latest" in text and "━" in text
    assert re.search(r"2\.1/2\.1 MB", text), text
    rc, out, err = _labledger(
        "artifacts",
        "get",
        "weights:latest",
        "-p",
        "p",
        "-o",
        str(tmp_path / "got2"),
        "--store",
        store_uri,
        tty=False,
        cwd=tmp_path,
    )
    assert rc == 0 and err == "" and "\x1b" not in out
