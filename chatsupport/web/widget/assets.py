"""What a host page loads: ``/widget.js`` (the loader), the frame page and its static files, and ``/source``
(AGPL §13: the running program's source, linked from the frame).

The frame is served only to sites the chatbot allows; its CSP ``frame-ancestors`` names exactly those (or ``*``
when the list is empty), and its start-up configuration is embedded as JSON that Jinja's ``tojson`` escapes, so a
``</script>`` in a chatbot's name stays text.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
import tarfile
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from litestar import MediaType, Request, Response, get
from litestar.response import Template

from chatsupport import __version__
from chatsupport.domain import widget
from chatsupport.errors import AppError
from chatsupport.resources import CHECKOUT, PACKAGE, templates_dir, widget_dir
from chatsupport.store import widget as store
from chatsupport.web.client import is_https
from chatsupport.web.permissions import public
from chatsupport.web.security import CONSOLE_CSP, request_id
from chatsupport.web.widget.runtime import runtime_of

TYPES = {".js": "application/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*(\.[a-z0-9_-]+)*\.(js|css|svg)$")
LOADER_CACHE = "public, max-age=300"          # the loader's URL is fixed in customers' pages: changes land in 5 min
HASHED_CACHE = "public, max-age=31536000, immutable"
FRAME_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "
             "connect-src 'self' {ws}; object-src 'none'; base-uri 'none'; form-action 'none'; "
             "frame-ancestors {ancestors}")
# the frame opts out of X-Frame-Options; the exact frame-ancestors comes with each response
FRAMEABLE = {"permission": "public", "frame_ancestors": "*"}


@lru_cache(maxsize=64)
def _read(path: Path, mtime: float) -> tuple[bytes, str]:
    body = path.read_bytes()
    return body, hashlib.sha256(body).hexdigest()[:12]


def widget_file(name: str) -> tuple[bytes, str] | None:
    """(content, short hash) of a file in ``widget/``, re-read when it changes on disk."""
    if not NAME.match(name):
        return None
    path = widget_dir() / name
    try:
        return _read(path, path.stat().st_mtime)
    except (FileNotFoundError, NotADirectoryError):
        return None


def static_url(name: str) -> str:
    found = widget_file(name)
    return f"/widget/static/{name}" + (f"?v={found[1]}" if found else "")


@get("/widget.js", sync_to_thread=False, **public(), include_in_schema=False)
def loader() -> Response[bytes]:
    found = widget_file("loader.js")
    if found is None:
        raise AppError("not_found", "The widget loader is not installed.")
    return Response(found[0], media_type=TYPES[".js"], headers={"Cache-Control": LOADER_CACHE,
                                                                "Cross-Origin-Resource-Policy": "cross-origin"})


@get("/widget/static/{name:str}", sync_to_thread=False, **public(), include_in_schema=False)
def static_file(name: str, v: str | None = None) -> Response[bytes]:
    found = widget_file(name)
    if found is None:
        raise AppError("not_found")
    cache = HASHED_CACHE if v == found[1] else LOADER_CACHE
    return Response(found[0], media_type=TYPES[Path(name).suffix], headers={"Cache-Control": cache})


def base_url(request: Request[Any, Any, Any]) -> str:
    """PUBLIC_URL when set, else the address the browser used (scheme as the trusted proxy reports it)."""
    services = runtime_of(request.app).services
    if services.settings.PUBLIC_URL:
        return services.settings.PUBLIC_URL
    scheme = "https" if is_https(request.scope, services.settings.TRUSTED_PROXIES) else "http"
    return f"{scheme}://{request.headers.get('host') or request.url.netloc}"


def _referred_by(request: Request[Any, Any, Any], origin: str) -> bool:
    """The browser's Origin/Referer, when it sends one, must be the site the loader claims to be on."""
    for header in ("origin", "referer"):
        value = request.headers.get(header)
        if value:
            parts = urlsplit(value)
            return widget.normalise_origin(f"{parts.scheme}://{parts.netloc}") == origin
    return True


@get("/widget/frame", opt=FRAMEABLE, media_type=MediaType.HTML, include_in_schema=False)
async def frame(request: Request[Any, Any, Any], key: str = "", visitor: str = "", origin: str = "") -> Any:
    runtime = runtime_of(request.app)
    host = widget.normalise_origin(origin)
    try:
        if host is None or not widget.VISITOR_ID.match(visitor):
            raise AppError("bad_request", "The chat was loaded without a valid visitor or site.")
        bot = widget.check_bot(await asyncio.to_thread(lambda: store.chatbot_by_key(
            runtime.services.db.reader(), key)), host)
        if not _referred_by(request, host):
            raise AppError("origin_not_allowed")
    except AppError as exc:
        return _error_page(request, exc)
    who = widget.Visitor(bot["workspace_id"], bot["id"], visitor, host)
    await runtime.saw(bot["id"], host)
    conversation_id = await asyncio.to_thread(lambda: widget.latest_conversation(runtime.services.db.reader(), who))
    token, expires_at = widget.issue_token(runtime.secret, who)
    base = base_url(request)
    config = widget.frame_config(bot, who, token, expires_at, base, conversation_id)
    ancestors = " ".join(sorted(filter(None, map(widget.normalise_origin, bot["allowed_origins"])))) or "*"
    ws = config["ws_url"].rsplit("/ws/", 1)[0]
    return Template("widget/frame.html", context={
        "config": config, "frame_js_url": static_url("frame.js"), "frame_css_url": static_url("frame.css"),
        "chatbot_name": bot["name"], "theme": config["chatbot"]["widget_settings"]},
        headers={"Content-Security-Policy": FRAME_CSP.format(ws=ws, ancestors=ancestors),
                 "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


def _error_page(request: Request[Any, Any, Any], exc: AppError) -> Template:
    """A readable page (the frame is a page, whatever it asked to accept) that no other site may frame."""
    error = {**exc.to_dict()["error"], "request_id": request_id(request.scope)}
    return Template("error.html", context={"error": error, "status": exc.status}, status_code=exc.status,
                    headers={"Content-Security-Policy": CONSOLE_CSP, "X-Frame-Options": "DENY",
                             "Cache-Control": "no-store"})


SOURCE_PARTS = ("chatsupport", "templates", "widget", "README.md", "LICENSE", "pyproject.toml")


def source_archive() -> bytes:
    """The running code as a .tar.gz (the package, its templates and widget; no data, no caches)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for part in SOURCE_PARTS:
            path = PACKAGE if part == "chatsupport" else CHECKOUT / part
            if part == "templates":
                path = templates_dir()
            elif part == "widget":
                path = widget_dir()
            if path.exists():
                tar.add(path, arcname=f"chatsupport-{__version__}/{part}",
                        filter=lambda info: None if "__pycache__" in info.name or info.name.endswith(".pyc")
                        else info)
    return out.getvalue()


@get("/source", **public(), include_in_schema=False)
async def source() -> Response[bytes]:
    """AGPL-3.0 §13: users interacting with the program over a network can get its source here."""
    body = await asyncio.to_thread(source_archive)
    return Response(body, media_type="application/gzip", headers={
        "Content-Disposition": f'attachment; filename="chatsupport-{__version__}-source.tar.gz"'})


ROUTES = [loader, static_file, frame, source]
