"""Datasets are found by content: the recorded path, the repository, --data, the artifact store."""

from __future__ import annotations

from pathlib import Path

from labledger.artifacts import open_blob_store
from labledger.capture.data import fingerprint
from labledger.repro._core import _artifact_fetcher
from labledger.repro._data import find_datasets
from labledger.store import open_store


def _recorded(path: Path) -> dict[str, object]:
    fp = fingerprint(path)
    return {
        "name": "digits",
        "path": fp["path"],
        "sha256": fp["sha256"],
        "size": fp["size"],
        "files": 1,
    }


def test_data_is_found_by_sha256_in_order(tmp_path: Path, store_uri: str) -> None:
    old_root = tmp_path / "deleted-clone"
    (old_root / "data").mkdir(parents=True)
    original = old_root / "data" / "digits.csv"
    original.write_text("1,2,3\n4,5,6\n")
    rec = _recorded(original)
    content = original.read_bytes()
    original.unlink()

    clone = tmp_path / "clone"
    (clone / "data").mkdir(parents=True)
    (clone / "data" / "digits.csv").write_bytes(content)
    elsewhere = tmp_path / "downloads" / "nested"
    elsewhere.mkdir(parents=True)
    (elsewhere / "renamed.csv").write_bytes(content)
    (elsewhere / "other.csv").write_text("9,9,9\n")

    (hit,) = find_datasets([rec], recorded_root=str(old_root), roots=[clone])
    assert (hit.status, hit.source, hit.rel) == ("ok", "repository", "data/digits.csv")
    assert hit.found == str(clone / "data" / "digits.csv")

    # not in the repository: any file with the same bytes under --data, whatever its name
    (hit,) = find_datasets([rec], recorded_root=str(old_root), data_dirs=[tmp_path / "downloads"])
    assert (hit.status, hit.source, hit.found) == ("ok", "--data", str(elsewhere / "renamed.csv"))

    # nowhere on disk: the artifact store holds a blob with that sha256
    (hit,) = find_datasets([rec], artifact=_artifact_fetcher(open_store(store_uri)))
    assert hit.status == "missing" and hit.found is None
    blobs = open_blob_store(None, store_uri)
    blobs.put_file(elsewhere / "renamed.csv", str(rec["sha256"]), len(content))
    (hit,) = find_datasets([rec], artifact=_artifact_fetcher(open_store(store_uri)))
    assert (hit.status, hit.source) == ("ok", "artifact store")
    assert hit.found is not None and Path(hit.found).read_bytes() == content

    # other bytes at the same relative path are a changed dataset, not a match
    (clone / "data" / "digits.csv").write_text("0,0,0\n")
    (hit,) = find_datasets([rec], recorded_root=str(old_root), roots=[clone])
    assert hit.status == "changed" and hit.found is None
