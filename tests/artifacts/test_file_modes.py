"""`labledger artifacts get` writes files with the mode a plain copy would have (umask
respected, not mkstemp's 0600), still atomically (no partial files left behind)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import labledger

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640)])
def test_artifacts_get_respects_the_umask(
    store_uri: str, tmp_path: Path, umask: int, mode: int
) -> None:
    src = tmp_path / "ckpt"
    (src / "shards").mkdir(parents=True)
    (src / "config.json").write_text('{"layers": 12}')
    (src / "shards" / "00.bin").write_bytes(b"\x00\x01" * 5000)
    with labledger.init("modes", store=store_uri, capture=False) as run:
        run.log_artifact(src, name="ckpt")

    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABLEDGER_")}
    env.update({"PYTHONPATH": str(ROOT / "src"), "LABLEDGER_CONSOLE": "off"})
    args = ["artifacts", "get", "modes/ckpt", "-o", str(out), "--store", store_uri]
    proc = subprocess.run(
        [sys.executable, "-m", "labledger.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=lambda: os.umask(umask),  # the child's umask only
    )
    assert proc.returncode == 0, proc.stderr
    files = sorted(p for p in out.rglob("*") if p.is_file())
    assert [p.relative_to(out).as_posix() for p in files] == ["config.json", "shards/00.bin"]
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in files} == {oct(mode)}
    assert (out / "shards" / "00.bin").read_bytes() == b"\x00\x01" * 5000
