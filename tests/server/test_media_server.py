"""Rich results through the tracking server (HttpStore over PostgreSQL): logged while the
server is down they wait in the client spool and `labledger sync` uploads them; logged
while it is up they are written through the write core and read back through the API."""

from __future__ import annotations

import io
import json
from pathlib import Path

import httpx
import numpy as np
from PIL import Image as PILImage

import labledger
from labledger.store import MediaItem

from .conftest import Server, cli_env
from .conftest import labledger as labledger_cli

SCRIPT = """
import labledger
with labledger.init(project="media", name="offline", capture=False) as run:
    run.log({"note": labledger.Text("written while down", caption="c"), "loss": 1.0}, step=0)
print(run.id)
"""


def test_rich_results_through_the_server_and_the_spool(module_pg: str, tmp_path: Path) -> None:
    from tests.conftest import run_script

    srv = Server(module_pg, tmp_path)  # not started yet: the client spools
    spool = tmp_path / "spool"
    env = cli_env(
        {"LABLEDGER_URI": srv.url, "LABLEDGER_SPOOL_DIR": str(spool), "LABLEDGER_SYNC_TIMEOUT": "1"}
    )
    proc = run_script(SCRIPT, cwd=tmp_path, env=env, timeout=90)
    assert proc.returncode == 0, proc.stderr
    run = {"id": proc.stdout.strip().splitlines()[-1]}
    spooled = [json.loads(p.read_text()) for p in spool.rglob("*.json")]
    assert any(s["kind"] == "batch" and s["body"].get("media") for s in spooled)

    srv.start()
    try:
        synced = labledger_cli("sync", "--spool-dir", str(spool), "--json")
        assert synced.returncode == 0, synced.stderr
        assert json.loads(synced.stdout)["uploaded"] == len(spooled)
        img = np.zeros((8, 8, 3), dtype=np.uint8)
        img[0, 0] = (0, 0, 255)
        with labledger.init("media", store=srv.url, capture=False) as live:
            live.log({"samples": labledger.Image(img, caption="blue"), "loss": 0.5}, step=3)
            live.log({"cm": labledger.ConfusionMatrix(y_true=[1, 0], y_pred=[1, 1])}, step=3)
        with labledger.Ledger(srv.url) as ledger:
            got = ledger.media(run["id"])
            assert [(m["key"], m["caption"]) for m in got] == [("note", "c")]
            assert ledger.media_bytes(run["id"], got[0]) == b"written while down"
            keys = {k["key"]: (k["kind"], k["count"]) for k in ledger.media_keys(live.id)}
            assert keys == {"cm": ("confusion_matrix", 1), "samples": ("image", 1)}
            image = ledger.media(live.id, "samples", step=3)[0]
            with PILImage.open(io.BytesIO(ledger.media_bytes(live.id, image))) as im:
                assert im.size == (8, 8) and im.getpixel((0, 0)) == (0, 0, 255)
        # the UI reads an image by URL with its type; a run without it answers 404
        url = f"{srv.url}/api/v1/runs/{live.id}/media/blob/{image['sha256']}?format=png"
        r = httpx.get(url)
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        other = httpx.get(f"{srv.url}/api/v1/runs/{run['id']}/media/blob/{image['sha256']}")
        assert other.status_code == 404
        # the write core checks the kind: a batch with an unknown one is refused whole
        bad = MediaItem("x", 0, 0, "video", b"..", {}, None, 0.0)
        r = httpx.post(
            f"{srv.url}/api/v1/runs/{run['id']}/batches",
            json={
                "id": "bad1",
                "media": [
                    {"key": "x", "step": 0, "seq": 0, "kind": bad.kind, "data": "AA==", "meta": {}}
                ],
            },
        )
        assert r.status_code in (400, 422), r.text
    finally:
        srv.stop()
