"""The interactive API documentation: Swagger UI 5, served by the service itself."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, Router, get
from litestar.openapi.plugins import OpenAPIRenderPlugin

DOCS_ASSETS = "/docs-assets"
INIT_SCRIPT = "swagger-init.js"
# Swagger UI loads its own files and the document from this service, and nothing else; nothing
# on the page is inline (its components style elements through the DOM, which CSP allows).
DOCS_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
# Read by the page: the document's address comes from a data attribute, so the script is static.
INIT_JS = """\
"use strict";
window.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: false,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
"""


@get(f"/{INIT_SCRIPT}", media_type="text/javascript", sync_to_thread=False)
def _init_script() -> str:
    return INIT_JS


class SwaggerPage(OpenAPIRenderPlugin):
    """Swagger UI 5 (it reads OpenAPI 3.1) from /docs-assets, started by a script of ours."""

    def __init__(self, path: str = "/swagger") -> None:
        super().__init__(path=path, favicon="", style="")

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        """Return the page: Swagger UI's files and the address of the document, nothing inline."""
        title = openapi_schema["info"]["title"]
        spec = self.get_openapi_json_route(request)
        base = spec.rsplit("/", 1)[0]  # the script is served beside the document
        return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · API</title>
<link rel="icon" href="{DOCS_ASSETS}/favicon-32x32.png">
<link rel="stylesheet" href="{DOCS_ASSETS}/swagger-ui.css">
<script src="{DOCS_ASSETS}/swagger-ui-bundle.js" defer></script>
<script src="{base}/{INIT_SCRIPT}" defer></script>
</head>
<body>
<div id="swagger-ui" data-spec-url="{spec}"></div>
</body>
</html>
""".encode()

    def receive_router(self, router: Router) -> None:
        """Serve the start-up script beside the page."""
        router.register(_init_script)


def docs_headers(response: Response[object]) -> Response[object]:
    """Lock the documentation pages down to what Swagger UI needs."""
    response.headers["Content-Security-Policy"] = DOCS_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def docs_router(path: str = "/schema") -> Router:
    """The router that serves the OpenAPI document and its pages, with their headers."""
    return Router(path, route_handlers=[], include_in_schema=False, after_request=docs_headers)
