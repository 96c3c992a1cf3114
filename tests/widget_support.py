"""Helpers for the widget tests: an instance with an owner and a chatbot made through the API, the frame loaded the
way the loader loads it (its cs-config read from the HTML), and WebSocket reading with a deadline."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Iterator

from litestar.testing import TestClient

from accounts_support import account_settings, add_user, bearer, login, open_client
from chatsupport.config import Settings
from chatsupport.retrieval.embedder import DEFAULT_CACHE

ORIGIN = "https://shop.example"
OTHER_ORIGIN = "https://evil.example"


def widget_settings(data_dir: Path, **extra: str) -> Settings:
    return account_settings(data_dir, MODEL_CACHE_DIR=str(DEFAULT_CACHE), **extra)


class Site:
    """One workspace with an owner and a chatbot (typing delay 0), seen from a host page on ``ORIGIN``."""

    def __init__(self, client: TestClient, name: str = "Acme", **bot: Any):
        self.client = client
        self.owner = add_user(client, name, f"owner@{name.lower()}.example", "owner")
        self.headers = bearer(login(client, self.owner["email"]))
        body = {"name": f"{name} Helper", "behavior_settings": {"response_delay": 0}, **bot}
        response = client.post("/api/v1/chatbots", json=body, headers=self.headers)
        assert response.status_code == 201, response.text
        self.bot = response.json()

    @property
    def db(self) -> Any:
        return self.client.app.state.services.db

    def frame(self, visitor: str | None = None, origin: str = ORIGIN, **headers: str) -> Any:
        visitor = visitor or new_visitor()
        return self.client.get("/widget/frame", params={"key": self.bot["public_key"], "visitor": visitor,
                                                        "origin": origin}, headers=headers)

    def config(self, visitor: str | None = None, origin: str = ORIGIN) -> dict[str, Any]:
        response = self.frame(visitor, origin)
        assert response.status_code == 200, response.text
        return cs_config(response.text)

    def update(self, **fields: Any) -> dict[str, Any]:
        response = self.client.patch(f"/api/v1/chatbots/{self.bot['id']}", json=fields, headers=self.headers)
        assert response.status_code == 200, response.text
        return response.json()

    def index(self, pages: dict[str, str] | None = None) -> None:
        from answer_support import PAGES, index_pages

        services = self.client.app.state.services
        index_pages(services.db, services.embedder, self.bot["id"], pages or PAGES)

    def sign(self, user_id: str) -> str:
        secret = self.bot["identity_secret"]
        return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()

    @contextmanager
    def socket(self, token: str, **headers: str) -> Iterator["Socket"]:
        with self.client.websocket_connect(f"/ws/widget?token={token}", headers=headers or None) as ws:
            yield Socket(ws)


def new_visitor() -> str:
    return "v_" + secrets.token_urlsafe(16)[:22]


class _Config(HTMLParser):
    def __init__(self, html: str):
        super().__init__()
        self.inside = False
        self.text = ""
        self.scripts: list[dict[str, str | None]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.scripts.append(dict(attrs))
            self.inside = dict(attrs).get("id") == "cs-config"

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self.inside = False

    def handle_data(self, data: str) -> None:
        if self.inside:
            self.text += data


def cs_config(html: str) -> dict[str, Any]:
    return json.loads(_Config(html).text)


def scripts(html: str) -> list[dict[str, str | None]]:
    return _Config(html).scripts


class Socket:
    """A widget WebSocket: ``send(event, data)``, ``until(event)`` keeps what it read on the way in ``seen``."""

    def __init__(self, ws: Any):
        self.ws = ws
        self.seen: list[dict[str, Any]] = []

    def send(self, event: str, data: dict[str, Any] | None = None) -> None:
        self.ws.send_json({"event": event, "data": data or {}})

    def next(self, timeout: float = 10) -> dict[str, Any]:
        message = self.ws.receive(timeout=timeout)
        if message["type"] == "websocket.close":
            raise ConnectionError(f"closed with {message.get('code')}")
        frame = json.loads(message.get("text") or message.get("bytes"))
        self.seen.append(frame)
        return frame

    def until(self, event: str, timeout: float = 30, **match: Any) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            frame = self.next(timeout=max(0.1, deadline - time.monotonic()))
            if frame["event"] == event and all(frame["data"].get(k) == v for k, v in match.items()):
                return frame["data"]
        raise TimeoutError(f"no {event} {match} within {timeout}s; saw {[f['event'] for f in self.seen]}")

    def events(self, name: str) -> list[dict[str, Any]]:
        return [f["data"] for f in self.seen if f["event"] == name]


@contextmanager
def widget_client(data_dir: Path, **extra: str) -> Iterator[TestClient]:
    with open_client(widget_settings(data_dir, **extra)) as client:
        yield client
