"""Rich results logged with run.log: every kind round trips, identical bytes are stored
once, limits are checked at the call site, encoding happens on the writer thread, and the
sealed record covers them."""

from __future__ import annotations

import io
import json
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image as PILImage

import labledger
from labledger import _limits
from labledger._exceptions import LimitExceededError, UsageError
from labledger.cli import cli
from labledger.store import Batch, MediaItem
from labledger.store._wire import batch_from_wire, batch_to_wire


def _png(data: bytes) -> np.ndarray:
    with PILImage.open(io.BytesIO(data)) as im:
        return np.asarray(im)


def _log_everything(uri: str) -> str:
    img = np.zeros((64, 48, 3), dtype=np.uint8)
    img[10, 20] = (255, 0, 0)
    with labledger.init("media", store=uri, capture=False) as run:
        for s in range(3):
            run.log(
                {"val/samples": labledger.Image(img, caption=f"epoch {s}"), "loss": 1.0 / (s + 1)},
                step=s,
            )
        run.log(
            {
                "cm": labledger.ConfusionMatrix(y_true=[0, 1, 1, 2], y_pred=[0, 1, 2, 2]),
                "pr": labledger.Curve.pr([0, 1, 1, 0], [0.1, 0.9, 0.8, 0.3]),
                "roc": labledger.Curve.roc([0, 1, 1, 0], [0.1, 0.9, 0.2, 0.3]),
                "w": labledger.Histogram(np.arange(100.0), bins=10),
                "note": labledger.Text("héllo"),
                "preds": labledger.Table(
                    rows=[[1, "cat", 0.5], [2, "dog", float("nan")]], columns=["id", "label", "p"]
                ),
            },
            step=3,
        )
        return run.id


def test_every_kind_round_trips(any_store_uri: str) -> None:
    run_id = _log_everything(any_store_uri)
    with labledger.Ledger(any_store_uri) as ledger:
        keys = {k["key"]: k for k in ledger.media_keys(run_id)}
        assert {k: (v["kind"], v["count"]) for k, v in keys.items()} == {
            "cm": ("confusion_matrix", 1),
            "note": ("text", 1),
            "pr": ("curve", 1),
            "preds": ("table", 1),
            "roc": ("curve", 1),
            "val/samples": ("image", 3),
            "w": ("histogram", 1),
        }
        images = ledger.media(run_id, "val/samples")
        assert [(i["step"], i["caption"]) for i in images] == [(s, f"epoch {s}") for s in range(3)]
        assert images[0]["meta"] == {"format": "png", "width": 48, "height": 64}
        pixels = _png(ledger.media_bytes(run_id, images[1]))
        assert pixels.shape == (64, 48, 3) and tuple(pixels[10, 20]) == (255, 0, 0)
        assert len({i["sha256"] for i in images}) == 1  # identical bytes: one blob

        def body(key: str) -> dict:
            return json.loads(ledger.media_bytes(run_id, ledger.media(run_id, key)[0]))

        assert body("cm") == {
            "labels": ["0", "1", "2"],
            "matrix": [[1, 0, 0], [0, 1, 1], [0, 0, 1]],
        }
        assert ledger.media(run_id, "cm")[0]["meta"]["accuracy"] == 0.75
        assert ledger.media(run_id, "pr")[0]["meta"]["auc"] == pytest.approx(1.0)
        assert ledger.media(run_id, "roc")[0]["meta"]["auc"] == pytest.approx(0.75)
        assert body("w")["counts"] == [10] * 10
        assert body("preds") == {
            "columns": ["id", "label", "p"],
            "rows": [[1, "cat", 0.5], [2, "dog", None]],
        }
        assert ledger.media_bytes(run_id, ledger.media(run_id, "note")[0]).decode() == "héllo"
        assert ledger.media(run_id, step=3, limit=2, offset=1)[0]["key"] == "note"
        assert ledger.get(run_id)["summary"]["loss"] == pytest.approx(1 / 3)
        verdict = ledger.store.audit_verify()
        assert verdict["ok"], verdict["problems"]


def test_identical_images_are_stored_once(store_uri: str) -> None:
    img = np.full((32, 32), 7, dtype=np.uint8)
    with labledger.init("media", store=store_uri, capture=False) as run:
        for s in range(20):
            run.log({"a": labledger.Image(img), "b": labledger.Image(img)}, step=s)
    con = sqlite3.connect(store_uri.removeprefix("sqlite:///"))
    assert con.execute("SELECT count(*) FROM media").fetchone()[0] == 40
    assert con.execute("SELECT count(DISTINCT sha256) FROM media").fetchone()[0] == 1


def test_image_inputs(tmp_path: Path, store_uri: str) -> None:
    torch = pytest.importorskip("torch")
    path = tmp_path / "x.png"
    PILImage.new("RGB", (5, 3), (0, 255, 0)).save(path)
    with labledger.init("media", store=store_uri, capture=False) as run:
        run.log({"tensor": labledger.Image(torch.ones(3, 8, 6))}, step=0)  # C x H x W
        run.log({"pil": labledger.Image(PILImage.new("L", (7, 4)))}, step=0)
        run.log({"file": labledger.Image(path)}, step=0)
        run.log({"float": labledger.Image(np.full((2, 2), 0.5))}, step=0)
    with labledger.Ledger(store_uri) as ledger:
        size = {m["key"]: (m["meta"]["width"], m["meta"]["height"]) for m in ledger.media(run.id)}
        assert size == {"tensor": (6, 8), "pil": (7, 4), "file": (5, 3), "float": (2, 2)}
        f = ledger.media(run.id, "file")[0]
        assert ledger.media_bytes(run.id, f) == path.read_bytes()  # a file's bytes as they were
        assert _png(ledger.media_bytes(run.id, ledger.media(run.id, "float")[0]))[0, 0] == 128
    with pytest.raises(UsageError, match="HxW"):
        labledger.Image(np.zeros((2, 2, 2, 2)))
    with pytest.raises(UsageError, match="not a PNG"):
        (tmp_path / "t.txt").write_text("hi")
        labledger.Image(tmp_path / "t.txt")


def test_limits_are_checked_at_the_call_site(
    store_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_limits, "MAX_MEDIA_PER_STEP", 2)
    monkeypatch.setattr(_limits, "MAX_MEDIA_BYTES", 10_000)
    with labledger.init("media", store=store_uri, capture=False) as run:
        run.log({"t": labledger.Text("a")}, step=0)
        run.log({"t": labledger.Text("b")}, step=0)
        with pytest.raises(LimitExceededError, match="per step"):
            run.log({"t": labledger.Text("c")}, step=0)
        with pytest.raises(LimitExceededError, match="bytes"):
            run.log({"big": labledger.Image(np.zeros((100, 101), dtype=np.uint8))}, step=1)
        run.log({"t": labledger.Text("d")}, step=1)
    with labledger.Ledger(store_uri) as ledger:  # nothing already stored is damaged
        got = [(m["step"], m["seq"]) for m in ledger.media(run.id, "t")]
        assert got == [(0, 0), (0, 1), (1, 0)]


def test_encoding_runs_on_the_writer_thread(
    store_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    original = labledger.Image.encode

    def spy(self: labledger.Image) -> tuple[bytes, dict]:
        seen.append(threading.current_thread().name)
        return original(self)

    monkeypatch.setattr(labledger.Image, "encode", spy)
    with labledger.init("media", store=store_uri, capture=False) as run:
        run.log({"img": labledger.Image(np.zeros((4, 4), dtype=np.uint8))})
        assert threading.current_thread().name not in seen
    assert seen and all(name.startswith("labledger-writer-") for name in seen)


def test_a_value_that_fails_to_encode_is_dropped_alone(
    store_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(self: labledger.Text) -> tuple[bytes, dict]:
        raise RuntimeError("cannot encode")

    with labledger.init("media", store=store_uri, capture=False) as run:
        run.log({"img": labledger.Image(np.zeros((4, 4), dtype=np.uint8)), "loss": 1.0})
        monkeypatch.setattr(labledger.Text, "encode", boom)
        run.log({"t": labledger.Text("x"), "loss": 2.0})
    with labledger.Ledger(store_uri) as ledger:
        assert [m["key"] for m in ledger.media(run.id)] == ["img"]
        assert ledger.history(run.id, "loss").values.tolist() == [1.0, 2.0]


def test_sealed_record_covers_rich_results(store_uri: str) -> None:
    with labledger.init("media", store=store_uri, capture=False) as run:
        run.log({"note": labledger.Text("original")})
    con = sqlite3.connect(store_uri.removeprefix("sqlite:///"))
    with labledger.Ledger(store_uri) as ledger:
        assert ledger.store.audit_verify()["ok"]
        con.execute("UPDATE media SET caption = 'forged' WHERE run_id = ?", (run.id,))
        con.commit()
        result = ledger.store.audit_verify()
        assert not result["ok"]
        assert "media" in json.dumps(result["problems"])


def test_a_finished_run_refuses_rich_results(store_uri: str) -> None:
    with labledger.init("media", store=store_uri, capture=False) as run:
        pass
    with labledger.Ledger(store_uri) as ledger:
        item = MediaItem("late", 0, 0, "text", b"x", {}, None, 0.0)
        with pytest.raises(labledger.RunFinishedError):
            ledger.store.write_batch(Batch(run.id, media=[item]))
        assert ledger.media(run.id) == []


def test_wire_format_carries_media() -> None:
    item = MediaItem("k/x", 5, 1, "image", b"\x89PNG..", {"width": 1}, "cap", 2.5)
    back = batch_from_wire("r" * 32, batch_to_wire(Batch("r" * 32, media=[item], id="b1")))
    assert back.media == [item]
    with pytest.raises(UsageError):
        batch_from_wire("r" * 32, {"id": "b", "media": [{"key": "k"}]})


def test_cli_media_ls_get_and_show(store_uri: str, tmp_path: Path) -> None:
    run_id = _log_everything(store_uri)
    runner = CliRunner()
    out = runner.invoke(cli, ["media", "ls", run_id[:8], "--store", store_uri, "--json"])
    assert out.exit_code == 0, out.output
    assert {k["key"]: k["count"] for k in json.loads(out.output)}["val/samples"] == 3
    shown = runner.invoke(cli, ["show", run_id, "--store", store_uri, "--json"])
    media = {m["key"]: (m["kind"], m["count"]) for m in json.loads(shown.output)["media"]}
    assert media["cm"] == ("confusion_matrix", 1)
    got = runner.invoke(
        cli,
        [
            "media",
            "get",
            run_id,
            "val/samples",
            "--step",
            "1",
            "-o",
            str(tmp_path / "o"),
            "--store",
            store_uri,
        ],
    )
    assert got.exit_code == 0, got.output
    assert [p.name for p in (tmp_path / "o" / "val" / "samples").iterdir()] == ["step-1.png"]
    missing = runner.invoke(
        cli, ["media", "get", run_id, "nope", "-o", str(tmp_path / "o"), "--store", store_uri]
    )
    assert isinstance(missing.exception, labledger.NotFoundError)
    assert "no rich result 'nope'" in str(missing.exception)


def test_export_carries_references_to_rich_results(store_uri: str, tmp_path: Path) -> None:
    run_id = _log_everything(store_uri)
    with labledger.Ledger(store_uri) as ledger:
        path = ledger.export(tmp_path / "runs.json", "json")
        last = ledger.media(run_id, "val/samples", step=2)[0]["sha256"]
    rows = json.loads(Path(path).read_text())
    row = next(r for r in rows if r["id"] == run_id)
    assert row["media.val/samples"] == f"sha256:{last}"
    assert row["media.cm"].startswith("sha256:") and row["summary.loss"] == pytest.approx(1 / 3)


def test_rich_results_survive_a_broken_store_through_the_spill(
    store_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess
    import sys
    import warnings

    import sqlalchemy as sa

    from labledger.store.sql import SqlStore

    spool = tmp_path / "spool"
    monkeypatch.setenv("LABLEDGER_SPOOL_DIR", str(spool))
    run = labledger.init("p", store=store_uri, capture=False)
    run.log({"note": labledger.Text("before")}, step=0)
    assert run.flush(30)
    admin = SqlStore(store_uri)
    with admin._tx() as conn:
        conn.execute(sa.text("ALTER TABLE media RENAME TO media_away"))
    run.log({"note": labledger.Text("while broken"), "x": 1.0}, step=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run.finish(timeout=1.0)
    assert any("were saved to" in str(w.message) for w in caught)
    with admin._tx() as conn:
        conn.execute(sa.text("ALTER TABLE media_away RENAME TO media"))
    admin.close()
    root = Path(__file__).resolve().parents[2]
    synced = subprocess.run(
        [sys.executable, "-m", "labledger.cli", "sync", "--spool-dir", str(spool)],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root / "src"), "HOME": str(tmp_path)},
        timeout=120,
    )
    assert synced.returncode == 0, synced.stdout + synced.stderr
    with labledger.Ledger(store_uri) as ledger:
        texts = [ledger.media_bytes(run.id, m).decode() for m in ledger.media(run.id, "note")]
        assert texts == ["before", "while broken"]
        assert ledger.get(run.id)["status"] == "finished"
        verdict = ledger.store.audit_verify()
        assert verdict["ok"], verdict["problems"]
