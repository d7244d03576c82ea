"""MLflow's rich results as labledger's: files the MLflow client uploads for
``log_image``, ``log_table``, ``log_figure`` and ``log_dict`` also become rich results of
the run (the file itself stays an artifact, so MLflow lists and downloads it as before).

- ``log_image(image, key=K, step=S)`` uploads ``images/K+step+S+timestamp+T+UUID.png``
  (``/`` in K written ``~``; older clients used ``%``) and a ``+compressed.webp`` preview,
  which is skipped: an image of key K at step S.
- ``log_image(image, artifact_file=F)`` and ``log_figure(fig, F)``: a PNG, JPEG, GIF or
  WebP file F is an image of key F (extension dropped) at step 0.
- ``log_table(data, artifact_file=F)``: JSON ``{"columns", "data"}``, a table.
- ``log_dict(d, F)``: any other JSON or YAML file, a text (its content as written).
"""

from __future__ import annotations

import io
import json
import posixpath
import re
import time
from typing import Any

from ..._limits import MAX_KEY_LENGTH, MAX_MEDIA_BYTES
from ...store import MediaItem

__all__ = ["maybe_media", "media_item"]

_LOGGED_IMAGE = re.compile(
    r"images/(?P<key>[^/]+?)[+%]step[+%](?P<step>\d+)[+%]timestamp[+%](?P<ts>\d+)[+%][0-9a-f-]+\.png\Z"
)
_IMAGE_EXT = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".gif": "gif", ".webp": "webp"}
_TEXT_EXT = {".json", ".yaml", ".yml"}  # log_dict's formats


def maybe_media(rest: list[str], size: int) -> bool:
    """Whether an upload at ``rest`` (the path under the run's artifacts) may be a rich result."""
    if not rest or size > MAX_MEDIA_BYTES or rest[0] == "table_images":
        return False
    name = rest[-1].lower()
    if "+compressed" in name or "%compressed" in name:
        return False
    ext = posixpath.splitext(name)[1]
    return ext in _IMAGE_EXT or ext in _TEXT_EXT


def _image_meta(data: bytes, fmt: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"format": fmt, "source": "mlflow"}
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as im:
            meta["width"], meta["height"] = im.size
    except Exception:
        pass
    return meta


def media_item(rest: list[str], data: bytes) -> MediaItem | None:
    """The rich result an MLflow upload stands for, or None (``seq`` 0: the caller places it)."""
    rel = "/".join(rest)
    m = _LOGGED_IMAGE.match(rel)
    if m:
        key = m["key"].replace("~", "/").replace("#", "/")
        meta = _image_meta(data, "png")
        return MediaItem(key, int(m["step"]), 0, "image", data, meta, None, int(m["ts"]) / 1000)
    stem, ext = posixpath.splitext(rel)
    ext = ext.lower()
    key = stem[:MAX_KEY_LENGTH]
    now = time.time()
    if ext in _IMAGE_EXT:
        return MediaItem(key, 0, 0, "image", data, _image_meta(data, _IMAGE_EXT[ext]), None, now)
    if ext not in _TEXT_EXT:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if ext == ".json":
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
        if isinstance(doc, dict) and set(doc) == {"columns", "data"}:  # log_table's format
            cols = [str(c) for c in doc["columns"] or []]
            rows = doc["data"] or []
            body = json.dumps({"columns": cols, "rows": rows}, separators=(",", ":")).encode()
            meta = {"columns": cols, "n_rows": len(rows), "source": "mlflow"}
            return MediaItem(key, 0, 0, "table", body, meta, None, now)
    return MediaItem(key, 0, 0, "text", data, {"chars": len(text), "source": "mlflow"}, None, now)
