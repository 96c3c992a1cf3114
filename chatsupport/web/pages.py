"""Pages outside the console proper: the start page and the local API browser."""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.response import Template

from chatsupport import __version__
from chatsupport.web.permissions import public

# Swagger UI sets inline styles on its elements; its own page allows that and nothing else extra.
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


@get("/", sync_to_thread=False, **public())
def index(request: Request[Any, Any, Any]) -> Template:
    return Template("index.html", context={"version": __version__})


@get("/api/docs", sync_to_thread=False, opt={"permission": "public", "csp": DOCS_CSP}, include_in_schema=False)
def api_docs() -> Template:
    """Swagger UI served from vendored files: no CDN, works air-gapped."""
    return Template("api_docs.html")
