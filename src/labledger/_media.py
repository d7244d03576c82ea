"""Rich results: values ``run.log`` takes beside scalars.

``Image``, ``Table``, ``ConfusionMatrix``, ``Curve``, ``Histogram`` and ``Text`` each
take a snapshot of their input when built (a copy, so training may change its arrays
afterwards) and say how big it is, so ``log()`` checks the limits at the call site
(``_limits.check_media``). The costly part, :meth:`Media.encode` (PNG through Pillow,
JSON for tables, curves and histograms), runs on the run's writer thread, never on the
training thread. numpy and Pillow are imported there, on first use.

One small class per kind: adding a kind is adding a class with ``kind``, ``nbytes`` and
``encode``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any, ClassVar

from ._exceptions import MissingDependencyError, UsageError

__all__ = [
    "KINDS",
    "ConfusionMatrix",
    "Curve",
    "Histogram",
    "Image",
    "Media",
    "Pending",
    "Table",
    "Text",
]


def _array(value: Any) -> Any:
    """A numpy copy of an array-like (torch tensors moved to the CPU first)."""
    import numpy as np

    if hasattr(value, "detach") and hasattr(value, "cpu"):  # torch.Tensor
        value = value.detach().cpu().numpy()
    return np.array(value, copy=True)


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), allow_nan=False, default=_plain).encode()


def _plain(value: Any) -> Any:
    # numpy scalars and other number-likes in tables
    if hasattr(value, "item"):
        return value.item()
    return str(value)


_PIL: list[bool] = []


def _need_pillow() -> None:
    """Pillow encodes images: say so at the call site, not later on the writer thread."""
    if not _PIL:
        import importlib.util

        _PIL.append(importlib.util.find_spec("PIL") is not None)
    if not _PIL[0]:
        raise MissingDependencyError("pillow", "media")


def _finite(values: Any) -> list[Any]:
    return [None if v != v or v in (float("inf"), float("-inf")) else v for v in values]


class Media:
    """A rich result: built on the training thread (a snapshot), encoded on the writer's."""

    kind: ClassVar[str] = ""
    caption: str | None = None
    # ``Run.log`` tells a rich result from a number by this flag, so that a script that
    # logs only scalars never imports this module
    _labledger_media: ClassVar[bool] = True

    def nbytes(self) -> int:
        """About how many bytes the stored value takes (checked against the limits)."""
        raise NotImplementedError

    def encode(self) -> tuple[bytes, dict[str, Any]]:
        """The stored bytes and the metadata row (width, columns, AUC, ...)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        cap = f", caption={self.caption!r}" if self.caption else ""
        return f"{type(self).__name__}(~{self.nbytes():,} bytes{cap})"


class Pending:
    """A rich result in the run's buffer, with its position among the values logged under
    its key at its step (``seq``): what the writer thread encodes into a ``MediaItem``."""

    __slots__ = ("media", "seq")

    def __init__(self, media: Media, seq: int) -> None:
        self.media = media
        self.seq = seq


class Image(Media):
    """An image: a numpy array (HxW grey, HxWx3 RGB, HxWx4 RGBA; floats in [0, 1] or
    integers in [0, 255]), a torch tensor (CxHxW too), a PIL image, or a file path
    (PNG, JPEG, GIF or WebP bytes kept as they are). Stored as PNG."""

    kind = "image"

    def __init__(self, data: Any, caption: str | None = None) -> None:
        self.caption = None if caption is None else str(caption)
        self._file: bytes | None = None
        self._format = "png"
        self._pil: Any = None
        self._arr: Any = None
        if isinstance(data, (str, os.PathLike)):
            path = os.fspath(data)
            with open(path, "rb") as fh:
                self._file = fh.read()
            self._format = _image_format(self._file, path)
        elif type(data).__module__.startswith("PIL."):
            self._pil = data.copy()
        else:
            _need_pillow()
            arr = _array(data)
            if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[2] not in (1, 3, 4):
                arr = arr.transpose(1, 2, 0)  # CxHxW (torch) -> HxWxC
            if arr.ndim == 3 and arr.shape[2] == 1:
                arr = arr[:, :, 0]
            if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
                raise UsageError(
                    f"Image takes HxW, HxWx3 or HxWx4 data, got shape {tuple(arr.shape)}"
                )
            if arr.size == 0:
                raise UsageError("Image data is empty")
            self._arr = arr

    def nbytes(self) -> int:
        if self._file is not None:
            return len(self._file)
        if self._pil is not None:
            w, h = self._pil.size
            return int(w * h * len(self._pil.getbands()))
        return int(self._arr.size)  # one byte per channel value once encoded, at most

    def encode(self) -> tuple[bytes, dict[str, Any]]:
        import io

        if self._file is not None:
            meta: dict[str, Any] = {"format": self._format}
            try:
                from PIL import Image as PILImage

                with PILImage.open(io.BytesIO(self._file)) as im:
                    meta["width"], meta["height"] = im.size
            except Exception:
                pass
            return self._file, meta
        from PIL import Image as PILImage

        if self._pil is not None:
            im = self._pil
            if im.mode not in ("L", "RGB", "RGBA", "LA", "P", "1", "I;16"):
                im = im.convert("RGBA")
        else:
            import numpy as np

            arr = self._arr
            if arr.dtype.kind == "f":
                arr = np.clip(np.nan_to_num(arr) * 255.0 + 0.5, 0, 255)
            elif arr.dtype.kind == "b":
                arr = arr * 255
            im = PILImage.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
        buf = io.BytesIO()
        im.save(buf, format="PNG")
        return buf.getvalue(), {"format": "png", "width": im.size[0], "height": im.size[1]}


def _image_format(head: bytes, path: str) -> str:
    if head.startswith(b"\x89PNG"):
        return "png"
    if head.startswith(b"\xff\xd8"):
        return "jpeg"
    if head.startswith(b"GIF8"):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    raise UsageError(f"Image({path!r}): not a PNG, JPEG, GIF or WebP file")


class Table(Media):
    """A table: a pandas DataFrame (``data``), or ``rows`` (sequences) with ``columns``.
    Stored as JSON ``{"columns": [...], "rows": [[...], ...]}``."""

    kind = "table"

    def __init__(
        self,
        data: Any = None,
        rows: Sequence[Sequence[Any]] | None = None,
        columns: Sequence[Any] | None = None,
        caption: str | None = None,
    ) -> None:
        self.caption = None if caption is None else str(caption)
        if data is not None:
            if rows is not None:
                raise UsageError("Table takes data= or rows=, not both")
            if hasattr(data, "to_dict") and hasattr(data, "columns"):  # a DataFrame
                cols = [str(c) for c in data.columns]
                body = data.to_numpy(dtype=object).tolist()
            else:
                body = [list(r) for r in data]
                cols = [str(c) for c in columns] if columns is not None else []
        else:
            body = [list(r) for r in (rows or [])]
            cols = [str(c) for c in columns] if columns is not None else []
        width = max((len(r) for r in body), default=len(cols))
        if not cols:
            cols = [str(i) for i in range(width)]
        for r in body:
            if len(r) != len(cols):
                raise UsageError(f"Table: a row has {len(r)} values for {len(cols)} columns")
        self.columns = cols
        self.rows = body
        self._size = len(json.dumps([cols, body], separators=(",", ":"), default=_plain))

    def nbytes(self) -> int:
        return self._size

    def encode(self) -> tuple[bytes, dict[str, Any]]:
        rows = [_finite(r) for r in self.rows]
        return _json({"columns": self.columns, "rows": rows}), {
            "columns": self.columns,
            "n_rows": len(rows),
        }


class ConfusionMatrix(Media):
    """The confusion matrix of ``y_true`` against ``y_pred`` (labels: the sorted union of
    both, or ``labels``). Stored as JSON ``{"labels", "matrix"}`` (rows: true labels)."""

    kind = "confusion_matrix"

    def __init__(
        self,
        y_true: Any = None,
        y_pred: Any = None,
        labels: Sequence[Any] | None = None,
        *,
        matrix: Any = None,
        caption: str | None = None,
    ) -> None:
        self.caption = None if caption is None else str(caption)
        self.labels = None if labels is None else list(labels)
        self._matrix = None if matrix is None else _array(matrix)
        if self._matrix is None:
            if y_true is None or y_pred is None:
                raise UsageError("ConfusionMatrix takes y_true= and y_pred= (or matrix=)")
            self._true = _array(y_true).ravel()
            self._pred = _array(y_pred).ravel()
            if len(self._true) != len(self._pred):
                raise UsageError(
                    f"ConfusionMatrix: {len(self._true)} true labels, {len(self._pred)} predictions"
                )

    def nbytes(self) -> int:
        if self._matrix is not None:
            return int(self._matrix.size) * 8
        n = len(self.labels) if self.labels is not None else 64
        return n * n * 8

    def encode(self) -> tuple[bytes, dict[str, Any]]:
        import numpy as np

        labels: list[Any]
        if self._matrix is not None:
            m = self._matrix.astype(np.int64)
            labels = self.labels or [str(i) for i in range(m.shape[0])]
        else:
            if self.labels is not None:
                labels = self.labels
            else:
                labels = sorted(set(self._true.tolist()) | set(self._pred.tolist()), key=str)
            index = {v: i for i, v in enumerate(labels)}
            m = np.zeros((len(labels), len(labels)), dtype=np.int64)
            for t, p in zip(self._true.tolist(), self._pred.tolist(), strict=True):
                i, j = index.get(t), index.get(p)
                if i is not None and j is not None:
                    m[i, j] += 1
        names = [str(v) for v in labels]
        total = int(m.sum())
        accuracy = float(np.trace(m)) / total if total else None
        return _json({"labels": names, "matrix": m.tolist()}), {
            "labels": names,
            "total": total,
            "accuracy": accuracy,
        }


_MAX_CURVE_POINTS = 2_000


class Curve(Media):
    """A precision-recall or ROC curve from binary ``y_true`` and ``scores`` (higher means
    positive); ``Curve.pr(...)`` / ``Curve.roc(...)``. Stored as JSON ``{"x", "y"}`` with
    the area under it (average precision for PR, ROC AUC for ROC) in the metadata."""

    kind = "curve"

    def __init__(self, which: str, y_true: Any, scores: Any, caption: str | None = None) -> None:
        if which not in ("pr", "roc"):
            raise UsageError(f"Curve is 'pr' or 'roc', not {which!r}")
        self.which = which
        self.caption = None if caption is None else str(caption)
        self._true = _array(y_true).ravel()
        self._scores = _array(scores).ravel().astype(float)
        if len(self._true) != len(self._scores):
            raise UsageError(f"Curve: {len(self._true)} labels, {len(self._scores)} scores")

    @classmethod
    def pr(cls, y_true: Any, scores: Any, caption: str | None = None) -> Curve:
        return cls("pr", y_true, scores, caption)

    @classmethod
    def roc(cls, y_true: Any, scores: Any, caption: str | None = None) -> Curve:
        return cls("roc", y_true, scores, caption)

    def nbytes(self) -> int:
        return min(len(self._true), _MAX_CURVE_POINTS) * 48

    def encode(self) -> tuple[bytes, dict[str, Any]]:
        x, y, area = curve_points(self.which, self._true, self._scores)
        return _json({"which": self.which, "x": x, "y": y}), {"which": self.which, "auc": area}


def curve_points(which: str, y_true: Any, scores: Any) -> tuple[list[float], list[float], float]:
    """(x, y, area): recall/precision and average precision, or FPR/TPR and ROC AUC."""
    import numpy as np

    truth = np.asarray(y_true).astype(bool)
    order = np.argsort(-np.asarray(scores, dtype=float), kind="stable")
    s = np.asarray(scores, dtype=float)[order]
    t = truth[order]
    # one point per distinct threshold
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1] if len(s) else np.array([], dtype=int)
    tp = np.cumsum(t)[last].astype(float)
    fp = (last + 1 - tp).astype(float)
    pos = float(t.sum())
    neg = float(len(t) - pos)
    if which == "roc":
        fpr = np.r_[0.0, fp / neg if neg else np.zeros_like(fp)]
        tpr = np.r_[0.0, tp / pos if pos else np.zeros_like(tp)]
        area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
        xs, ys = fpr, tpr
    else:
        precision = np.r_[1.0, tp / np.maximum(tp + fp, 1)]
        recall = np.r_[0.0, tp / pos if pos else np.zeros_like(tp)]
        area = float(np.sum(np.diff(recall) * precision[1:]))
        xs, ys = recall, precision
    if len(xs) > _MAX_CURVE_POINTS:
        keep = np.unique(np.linspace(0, len(xs) - 1, _MAX_CURVE_POINTS).astype(int))
        xs, ys = xs[keep], ys[keep]
    return [round(float(v), 6) for v in xs], [round(float(v), 6) for v in ys], area


class Histogram(Media):
    """The distribution of ``values`` (weights, activations) in ``bins`` bins; logged at
    every few steps it shows how a distribution moves. Stored as JSON ``{"edges",
    "counts"}``; non-finite values are left out and counted in the metadata."""

    kind = "histogram"

    def __init__(self, values: Any, bins: int = 64, caption: str | None = None) -> None:
        if isinstance(bins, bool) or not isinstance(bins, int) or not 1 <= bins <= 10_000:
            raise UsageError(f"Histogram bins must be an int in 1..10000, got {bins!r}")
        self.caption = None if caption is None else str(caption)
        self.bins = bins
        self._values = _array(values).ravel()

    def nbytes(self) -> int:
        return self.bins * 32

    def encode(self) -> tuple[bytes, dict[str, Any]]:
        import numpy as np

        v = self._values.astype(float)
        finite = v[np.isfinite(v)]
        counts: Any = []
        edges: Any = []
        if len(finite):
            counts, edges = np.histogram(finite, bins=self.bins)
        meta: dict[str, Any] = {
            "bins": self.bins,
            "count": len(finite),
            "nonfinite": len(v) - len(finite),
        }
        if len(finite):
            meta.update(min=float(finite.min()), max=float(finite.max()))
            meta["mean"] = float(finite.mean())
        body = {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}
        return _json(body), meta


class Text(Media):
    """A piece of text (a generated sample, a report). Stored as UTF-8."""

    kind = "text"

    def __init__(self, text: str, caption: str | None = None) -> None:
        if not isinstance(text, str):
            raise UsageError(f"Text takes a str, not {type(text).__name__}")
        self.text = text
        self.caption = None if caption is None else str(caption)
        self._data = text.encode("utf-8", "surrogatepass")

    def nbytes(self) -> int:
        return len(self._data)

    def encode(self) -> tuple[bytes, dict[str, Any]]:
        return self._data, {"chars": len(self.text)}


KINDS = frozenset(c.kind for c in (Image, Table, ConfusionMatrix, Curve, Histogram, Text))
