"""The service's pages: the web page at / (with its script and style), the sentiment index's page at
/index (with `serve --index`; its charts drawn by the vendored uPlot) and the Swagger UI at /docs,
all served from the installed packages (no CDN), each with the headers a page needs.

Every page forbids being framed (X-Frame-Options and CSP frame-ancestors) and runs under a Content
Security Policy that allows only what the page itself loads: its own script and style from this
server, requests to this server. Swagger UI's page has one inline script (its start-up call), which
its CSP allows by the script's sha256 and nothing else inline.
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, Response
from swagger_ui_bundle import swagger_ui_path

STATIC_FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "dom.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    # The sentiment index's page at /index (serve --index), with uPlot vendored (uPlot.SOURCE.txt).
    "index-page.html": "text/html; charset=utf-8",
    "index-page.js": "text/javascript; charset=utf-8",
    "index-charts.js": "text/javascript; charset=utf-8",
    "index-page.css": "text/css; charset=utf-8",
    "uPlot.iife.min.js": "text/javascript; charset=utf-8",
    "uPlot.min.css": "text/css; charset=utf-8",
}
# Swagger UI for /docs, from the swagger-ui-bundle package (ReDoc has no such package: off).
SWAGGER_FILES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
FRAMING = {"x-frame-options": "DENY"}
_PAGE_POLICY = (
    "default-src 'none'; script-src 'self'{scripts}; style-src 'self'; img-src 'self'{images}; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def content_security_policy(html: str, data_images: bool = False) -> str:
    """The CSP of one page: its own scripts and styles, plus each inline script by its sha256."""
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii") + "'"
        for script in _INLINE_SCRIPT.findall(html)
    ]
    return _PAGE_POLICY.format(scripts="".join(" " + h for h in hashes), images=" data:" if data_images else "")


def page_headers(html: str, data_images: bool = False) -> dict[str, str]:
    return {**FRAMING, "content-security-policy": content_security_policy(html, data_images)}


def add_pages(app: FastAPI, index_page: bool = False) -> None:
    """GET / (the web page), /static/NAME, /docs (Swagger UI over /openapi.json), /docs/static/NAME,
    and with `index_page` GET /index (the sentiment index's page, over GET /v1/index)."""
    files = {name: resources.files("stocksent.serving").joinpath("static", name).read_bytes() for name in STATIC_FILES}
    html_headers = {name: page_headers(files[name].decode("utf-8")) for name in STATIC_FILES if name.endswith(".html")}
    docs_html = get_swagger_ui_html(
        openapi_url="/openapi.json",
        title=f"{app.title} API",
        swagger_js_url="/docs/static/swagger-ui-bundle.js",
        swagger_css_url="/docs/static/swagger-ui.css",
        swagger_favicon_url="/docs/static/favicon-32x32.png",
        swagger_ui_parameters={"validatorUrl": None},  # no badge fetched from validator.swagger.io
    ).body
    # swagger-ui.css draws its icons from data: URIs
    docs_headers = page_headers(docs_html.decode("utf-8"), data_images=True)

    def page(name: str) -> Response:
        return Response(files[name], media_type=STATIC_FILES[name], headers=html_headers[name])

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        return page("index.html")

    if index_page:

        @app.get("/index", include_in_schema=False)
        async def sentiment_index() -> Response:
            return page("index-page.html")

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        if name not in files:
            raise HTTPException(404)
        headers = {"Cache-Control": "no-cache", **html_headers.get(name, {})}
        return Response(files[name], media_type=STATIC_FILES[name], headers=headers)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Response:
        return Response(docs_html, media_type="text/html; charset=utf-8", headers=docs_headers)

    @app.get("/docs/static/{name}", include_in_schema=False)
    async def docs_static(name: str) -> Response:
        if name not in SWAGGER_FILES:
            raise HTTPException(404)
        return FileResponse(Path(str(swagger_ui_path), name), media_type=SWAGGER_FILES[name])
