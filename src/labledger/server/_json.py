"""JSON responses that keep NaN and infinities exact (strict JSON has neither)."""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.responses import Response

from .._values import encode_json

__all__ = ["BINARY_BODY", "LedgerJSONResponse", "series_values"]


class LedgerJSONResponse(Response):
    """Non-finite floats are written as ``{"$float": "NaN"}`` (labledger._values.encode_json)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json.dumps(
            encode_json(content), allow_nan=False, separators=(",", ":"), default=str
        ).encode()


def series_values(values: list[float]) -> list[float | str]:
    """Series values for JSON: non-finite ones as the strings "NaN", "Infinity", "-Infinity"
    (JavaScript's ``Number()`` reads them back)."""
    return [
        v if math.isfinite(v) else ("NaN" if v != v else ("Infinity" if v > 0 else "-Infinity"))
        for v in values
    ]


# OpenAPI description of a raw request body (blob uploads stream it; no JSON schema);
# an empty body is an empty blob
BINARY_BODY: dict[str, Any] = {
    "requestBody": {
        "required": False,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}
