"""The interactive API docs page (``/docs``), served from vendored Swagger UI files.

FastAPI's built-in docs pages load Swagger UI / ReDoc from a CDN and start them with an
inline script, so they are blank offline and need a Content-Security-Policy exception.
This page loads ``static/vendor/swagger-ui`` (pinned, see ``static/vendor/VENDORED.md``)
and a small start-up script from this server, so the dashboard's strict policy applies to
it unchanged. ReDoc is not offered (one docs page, one vendored library).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from .ui import CONTENT_SECURITY_POLICY

__all__ = ["ASSETS_PREFIX", "install"]

_STATIC = Path(__file__).resolve().parent / "static"
_VENDOR = _STATIC / "vendor" / "swagger-ui"
_INIT_JS = _STATIC / "docs" / "swagger-init.js"

#: Where the vendored Swagger UI files are served (also without the dashboard).
ASSETS_PREFIX = "/docs/assets"

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} - API docs</title>
<link rel="icon" type="image/png" href="{assets}/favicon-32x32.png">
<link rel="stylesheet" href="{assets}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi}"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{assets}/swagger-init.js"></script>
</body>
</html>
"""


def install(app: FastAPI) -> None:
    """Serve ``GET /docs`` and its assets; create the app with ``docs_url=None, redoc_url=None``."""
    import html

    openapi = app.openapi_url or "/openapi.json"
    page = _PAGE.format(
        title=html.escape(app.title),
        assets=ASSETS_PREFIX,
        openapi=html.escape(openapi, quote=True),
    ).encode("utf-8")
    # the same strict policy as the dashboard, also when the server runs without it
    headers = {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "Cache-Control": "no-store"}

    @app.api_route("/docs", methods=["GET", "HEAD"], include_in_schema=False)
    def docs_page() -> HTMLResponse:
        return HTMLResponse(page, headers=headers)

    @app.get(f"{ASSETS_PREFIX}/swagger-init.js", include_in_schema=False)
    def docs_init() -> Response:
        return FileResponse(_INIT_JS, media_type="text/javascript")

    app.mount(ASSETS_PREFIX, StaticFiles(directory=_VENDOR), name="docs-assets")
