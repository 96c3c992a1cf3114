"""The widget without WebSockets (POST frames, server-sent events) and attachments."""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Iterator

import pytest

from widget_support import Site, widget_client

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200
PDF = b"%PDF-1.4\n" + b"0" * 200


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with widget_client(tmp_path_factory.mktemp("fallback") / "data") as client:
        site = Site(client)
        site.index()
        yield site


def post(site: Site, token: str, event: str, data: dict[str, Any]) -> list[dict[str, Any]]:
    response = site.client.post("/widget/api/messages", headers={"Authorization": f"Bearer {token}"},
                                json={"event": event, "data": data})
    assert response.status_code == 200, response.text
    return response.json()["events"]


def sse(text: str) -> list[dict[str, Any]]:
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields: dict[str, Any] = {}
        for line in block.splitlines():
            name, _, value = line.partition(": ")
            if name in ("event", "data", "id"):
                fields[name] = value
        if "event" in fields:
            events.append({"event": fields["event"], "data": json.loads(fields["data"]), "id": fields.get("id")})
    return events


def test_the_same_conversation_over_http(site: Site) -> None:
    token = site.config()["token"]
    started = post(site, token, "conversation:start", {"fields": {"name": "Noor"}})[0]
    assert started["event"] == "conversation:started"
    conversation_id = started["data"]["conversation_id"]
    stream: list[Any] = []
    listener = threading.Thread(target=lambda: stream.append(site.client.get(
        "/widget/api/events", params={"token": token, "conversation_id": conversation_id, "wait": 6})))
    listener.start()
    time.sleep(1.0)
    answers = post(site, token, "message:send", {"client_id": "h-1", "conversation_id": conversation_id,
                                                 "content": "How long do refunds take?"})
    assert [a["event"] for a in answers] == ["message:ack"]
    again = post(site, token, "message:send", {"client_id": "h-1", "conversation_id": conversation_id,
                                               "content": "How long do refunds take?"})
    assert again[0]["data"]["message_id"] == answers[0]["data"]["message_id"]
    listener.join(30)
    response = stream[0]
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = sse(response.text)
    names = [e["event"] for e in events]
    assert names[0] == "resume:done"
    assert "message:streaming" in names and "typing:start" in names
    bot = [e for e in events if e["event"] == "message:receive" and e["data"]["sender"]["type"] == "bot"]
    assert bot and "14 days" in bot[0]["data"]["content"] and bot[0]["id"] == bot[0]["data"]["message_id"]
    # a reconnect with the last id seen replays nothing older
    replay = sse(site.client.get("/widget/api/events", params={"token": token, "conversation_id": conversation_id,
                                                              "wait": 1},
                                 headers={"Last-Event-ID": answers[0]["data"]["message_id"]}).text)
    assert [e["data"]["message_id"] for e in replay if e["event"] == "message:receive"] == [bot[0]["id"]]
    assert post(site, token, "ping", {}) == [{"event": "pong", "data": {}}]
    assert post(site, token, "nope", {})[0]["data"]["code"] == "bad_request"


def test_fallback_needs_a_valid_token_and_an_own_conversation(site: Site) -> None:
    assert site.client.post("/widget/api/messages", json={"event": "ping", "data": {}}).status_code == 401
    assert site.client.get("/widget/api/events", params={"token": "forged"}).status_code == 401
    owner = site.config()["token"]
    conversation_id = post(site, owner, "conversation:start", {})[0]["data"]["conversation_id"]
    stranger = site.config()["token"]
    response = site.client.get("/widget/api/events", params={"token": stranger, "conversation_id": conversation_id,
                                                             "wait": 1})
    assert response.status_code == 404


def upload(site: Site, token: str, name: str, body: bytes, content_type: str = "application/octet-stream") -> Any:
    return site.client.post("/widget/api/attachments", headers={"Authorization": f"Bearer {token}"},
                            files={"file": (name, body, content_type)})


def test_attachments_are_sniffed_and_served_as_downloads(site: Site) -> None:
    token = site.config()["token"]
    response = upload(site, token, "../../screenshot.png", PNG, "image/png")
    assert response.status_code == 201, response.text
    attachment = response.json()
    assert (attachment["filename"], attachment["content_type"], attachment["size"]) == ("screenshot.png",
                                                                                       "image/png", len(PNG))
    download = site.client.get(attachment["url"], params={"token": token})
    assert download.status_code == 200 and download.content == PNG
    assert download.headers["content-type"] == "image/png"
    assert download.headers["content-disposition"].startswith("attachment")
    assert download.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in download.headers["content-security-policy"]
    assert site.client.get(attachment["url"], params={"token": site.config()["token"]}).status_code == 404
    assert site.client.get(attachment["url"]).status_code == 401
    agent = site.client.get(f"/api/v1/attachments/{attachment['id']}", headers=site.headers)
    assert agent.status_code == 200 and agent.headers["content-disposition"].startswith("attachment")
    assert site.client.get(f"/api/v1/attachments/{attachment['id']}").status_code == 401
    assert upload(site, token, "manual.pdf", PDF).json()["content_type"] == "application/pdf"
    webp = b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 100
    assert upload(site, token, "a.webp", webp).json()["content_type"] == "image/webp"


def test_html_svg_and_unknown_files_are_refused(site: Site) -> None:
    token = site.config()["token"]
    for name, body in (("x.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'),
                       ("x.html", b"<!doctype html><script>alert(1)</script>"),
                       ("photo.png", b"<html><body>not a png</body></html>"),
                       ("a.exe", b"MZ\x90\x00" + b"\x00" * 100)):
        response = upload(site, token, name, body, "image/png")
        assert response.status_code == 415, (name, response.text)
        assert response.json()["error"]["code"] == "unsupported_type"
    assert not list((site.client.app.state.services.settings.data.uploads / "attachments").glob("*.part"))


def test_files_over_ten_megabytes_are_cut_off(site: Site) -> None:
    token = site.config()["token"]
    folder = site.client.app.state.services.settings.data.uploads / "attachments"
    before = set(folder.glob("*")) if folder.exists() else set()
    response = upload(site, token, "big.png", PNG + b"\x00" * (10 * 1024 * 1024))
    assert response.status_code == 413
    assert set(folder.glob("*")) == before


def test_attachments_travel_with_a_message(site: Site) -> None:
    token = site.config()["token"]
    mine = upload(site, token, "receipt.pdf", PDF).json()
    theirs = upload(site, site.config()["token"], "other.pdf", PDF).json()
    conversation_id = post(site, token, "conversation:start", {})[0]["data"]["conversation_id"]
    with site.socket(token) as sock:
        sock.send("resume", {"conversation_id": conversation_id, "last_message_id": None})
        sock.until("resume:done")
        sock.send("message:send", {"client_id": "a-1", "conversation_id": conversation_id, "content": "See file",
                                   "attachments": [mine["id"], theirs["id"]]})
        ack = sock.until("message:ack")
        shown = sock.until("message:receive", message_id=ack["message_id"])
    assert [a["id"] for a in shown["attachments"]] == [mine["id"]]
    assert shown["attachments"][0]["url"] == f"/widget/api/attachments/{mine['id']}"
