"""Loading the widget: the loader, the frame's static files, the frame page with its cs-config and CSP, the origin
and chatbot checks, widget sightings on the chatbot API, the widget token and its refresh, and /source."""

from __future__ import annotations

import io
import tarfile
import time
from pathlib import Path
from typing import Iterator

import pytest
from litestar.testing import TestClient

from accounts_support import Page
from chatsupport.domain import widget
from chatsupport.errors import AppError
from widget_support import ORIGIN, OTHER_ORIGIN, Site, cs_config, new_visitor, scripts, widget_client


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with widget_client(tmp_path_factory.mktemp("frame") / "data") as client:
        yield Site(client)


def test_loader_is_served_as_short_cached_javascript(site: Site) -> None:
    response = site.client.get("/widget.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/javascript")
    assert response.headers["cache-control"] == "public, max-age=300"
    assert response.content == (Path(__file__).parents[1] / "widget" / "loader.js").read_bytes()
    assert site.bot["embed_code"].count("/widget.js") == 1


def test_static_files_are_whitelisted(site: Site) -> None:
    assert site.client.get("/widget/static/loader.js").status_code == 200
    for name in ("README.md", "..%2Fpyproject.toml", "%2e%2e%2fchatsupport%2fconfig.py", ".hidden.js", "x.html",
                 "loader.js.map", "missing.js"):
        assert site.client.get(f"/widget/static/{name}").status_code == 404, name
    assert site.client.get("/widget/static/../pyproject.toml").status_code == 404


def test_frame_embeds_its_config(site: Site) -> None:
    visitor = new_visitor()
    response = site.frame(visitor)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    config = cs_config(response.text)
    assert config["visitor_id"] == visitor and config["host_origin"] == ORIGIN
    assert config["ws_url"].endswith("/ws/widget") and config["ws_url"].startswith("ws://")
    assert config["api_base"].endswith("/widget/api") and config["source_url"].endswith("/source")
    assert config["conversation_id"] is None
    assert config["chatbot"]["name"] == "Acme Helper" and config["chatbot"]["business_open"] is True
    assert set(config["chatbot"]) >= {"greeting_message", "personality", "widget_settings", "data_collection",
                                      "offline_message", "show_typing_indicator"}
    assert config["limits"] == {"max_message_length": 4000, "max_attachment_bytes": 10485760,
                                "attachment_types": ["image/png", "image/jpeg", "image/gif", "image/webp",
                                                     "application/pdf"]}
    claims = widget.read_token(site.client.app.state.services.secret_key, config["token"])
    assert (claims.chatbot_id, claims.visitor_id, claims.origin, claims.user_id) == (site.bot["id"], visitor, ORIGIN,
                                                                                       None)
    assert "frame-ancestors *" in response.headers["content-security-policy"]
    assert "x-frame-options" not in response.headers


def test_frame_ancestors_name_exactly_the_allowed_origins(site: Site) -> None:
    site.update(allowed_origins=[ORIGIN, "https://www.shop.example"])
    try:
        response = site.frame()
        assert response.status_code == 200
        csp = response.headers["content-security-policy"]
        assert "frame-ancestors https://shop.example https://www.shop.example" in csp
        refused = site.frame(origin=OTHER_ORIGIN)
        assert refused.status_code == 403 and refused.headers["content-type"].startswith("text/html")
        assert "cs-config" not in refused.text and Page(refused.text).texts
        assert refused.headers["x-frame-options"] == "DENY"
        # the loader's claim must match what the browser says it came from
        assert site.frame(origin=ORIGIN, referer=f"{OTHER_ORIGIN}/page").status_code == 403
        assert site.frame(origin=ORIGIN, referer=f"{ORIGIN}/pricing?x=1").status_code == 200
    finally:
        site.update(allowed_origins=[])


def test_unknown_archived_and_inactive_chatbots(site: Site) -> None:
    response = site.client.get("/widget/frame", params={"key": "pk_nope", "visitor": new_visitor(),
                                                        "origin": ORIGIN})
    assert response.status_code == 404
    assert site.client.get("/widget/frame", params={"key": site.bot["public_key"], "visitor": "bad",
                                                    "origin": ORIGIN}).status_code == 400
    assert site.client.get("/widget/frame", params={"key": site.bot["public_key"], "visitor": new_visitor(),
                                                    "origin": "javascript:alert(1)"}).status_code == 400
    site.update(status="inactive")
    try:
        assert site.frame().status_code == 403
    finally:
        site.update(status="active")


def test_archived_chatbot_is_404(tmp_path: Path) -> None:
    with widget_client(tmp_path / "data") as client:
        other = Site(client, "Gone")
        client.delete(f"/api/v1/chatbots/{other.bot['id']}", headers=other.headers)
        assert other.frame().status_code == 404


def test_script_in_chatbot_name_and_greeting_stays_text(site: Site) -> None:
    evil = "</script><script>alert(1)</script>"
    site.update(greeting_message=f"Hi {evil}")
    site.db.write(lambda conn: conn.execute("UPDATE chatbots SET name = ? WHERE id = ?",
                                            (f"Bot {evil}", site.bot["id"])))
    site.client.app.state.widget.forget_bot(site.bot["id"])
    try:
        response = site.frame()
        assert response.status_code == 200
        config = cs_config(response.text)
        assert config["chatbot"]["name"] == f"Bot {evil}"
        assert config["chatbot"]["greeting_message"] == f"Hi {evil}"
        # only the page's own two scripts: the config and the frame's code
        assert [s.get("id") or s.get("src", "").split("?")[0] for s in scripts(response.text)] == \
            ["cs-config", "/widget/static/frame.js"]
    finally:
        site.db.write(lambda conn: conn.execute("UPDATE chatbots SET name = 'Acme Helper' WHERE id = ?",
                                                (site.bot["id"],)))


def test_sightings_show_on_the_chatbot_api(site: Site) -> None:
    site.frame(origin="https://blog.example:8443")
    bot = site.client.get(f"/api/v1/chatbots/{site.bot['id']}", headers=site.headers).json()
    seen = {s["origin"]: s for s in bot["widget_detected"]}
    assert "https://blog.example:8443" in seen and ORIGIN in seen
    assert seen[ORIGIN]["first_seen_at"] <= seen[ORIGIN]["last_seen_at"]


def test_token_is_bound_signed_and_short_lived(site: Site) -> None:
    secret = site.client.app.state.services.secret_key
    visitor = widget.Visitor("w", site.bot["id"], new_visitor(), ORIGIN)
    token, expires_at = widget.issue_token(secret, visitor, now=1_000_000)
    assert expires_at == widget.iso(1_000_000 + 3600)
    assert widget.read_token(secret, token, now=1_000_000 + 3599).visitor_id == visitor.visitor_id
    for bad in (token + "x", token.replace(".", ".A"), "", "abc", token.split(".")[0]):
        with pytest.raises(AppError):
            widget.read_token(secret, bad, now=1_000_000)
    with pytest.raises(AppError):
        widget.read_token(secret, token, now=1_000_000 + 3601)
    with pytest.raises(AppError):
        widget.read_token("another instance", token, now=1_000_000)
    assert widget.read_token(secret, token, now=1_000_000 + 3600 + 86000, grace=86400)


def test_refresh_trades_a_recently_expired_token(site: Site) -> None:
    secret = site.client.app.state.services.secret_key
    visitor = widget.Visitor(site.bot["workspace_id"], site.bot["id"], new_visitor(), ORIGIN)
    stale, _ = widget.issue_token(secret, visitor, now=time.time() - 3600 - 20 * 3600)
    response = site.client.post("/widget/api/token", headers={"Authorization": f"Bearer {stale}"})
    assert response.status_code == 200, response.text
    fresh = widget.read_token(secret, response.json()["token"])
    assert fresh.visitor_id == visitor.visitor_id and fresh.expires > time.time() + 3500
    too_old, _ = widget.issue_token(secret, visitor, now=time.time() - 3600 - 25 * 3600)
    refused = site.client.post("/widget/api/token", headers={"Authorization": f"Bearer {too_old}"})
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "widget_token_invalid"
    assert site.client.post("/widget/api/token").status_code == 401


def test_source_is_downloadable(site: Site) -> None:
    response = site.client.get("/source")
    assert response.status_code == 200 and "attachment" in response.headers["content-disposition"]
    with tarfile.open(fileobj=io.BytesIO(response.content)) as tar:
        names = tar.getnames()
    assert any(n.endswith("chatsupport/app.py") for n in names)
    assert any(n.endswith("widget/loader.js") for n in names)
    assert not any("__pycache__" in n for n in names)


def test_widget_routes_are_public(site: Site) -> None:
    client: TestClient = site.client
    paths = {route.path for route in client.app.routes}
    assert {"/widget.js", "/widget/frame", "/ws/widget", "/widget/api/messages", "/widget/api/events",
            "/widget/api/token", "/widget/api/attachments"} <= paths
