"""The workspace most conversation tests start from: an owner, two agents and a viewer with tokens, a chatbot,
conversations walked through the state machine, and a subscriber on the live hub. Test modules import
``client`` and ``team`` as their fixtures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import anyio
import pytest
from litestar.testing import TestClient

from accounts_support import account_settings, add_user, bearer, login, open_client
from chatsupport.domain import conversations as states
from chatsupport.store import conversations as store

UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/118.0.0.0 "
      "Safari/537.36")


class Team:
    def __init__(self, client: TestClient, name: str = "Acme"):
        self.client = client
        self.db = client.app.state.services.db
        slug = name.lower()
        self.owner = add_user(client, name, f"owner@{slug}.example", "owner", name="Olive Owner")
        self.agent = add_user(client, name, f"agent@{slug}.example", "agent", name="Sarah Johnson")
        self.other = add_user(client, name, f"other@{slug}.example", "agent", name="Omar Other")
        self.viewer = add_user(client, name, f"viewer@{slug}.example", "viewer", name="Vic Viewer")
        self.ws = self.owner["workspace_id"]
        self.owner_h, self.agent_h, self.other_h, self.viewer_h = (
            bearer(login(client, u["email"])) for u in (self.owner, self.agent, self.other, self.viewer))
        bot = client.post("/api/v1/chatbots", json={"name": f"{name} Bot"}, headers=self.owner_h)
        assert bot.status_code == 201, bot.text
        self.bot = bot.json()["id"]

    def conversation(self, *, status: str = "active", customer: str | None = "John Doe", bot: str | None = None,
                     text: str = "I need help resetting my password") -> str:
        """A conversation walked to ``status`` through the state machine, with a customer message."""
        path = {"active": [], "waiting": ["ai_replied"], "escalated": ["escalate"], "resolved": ["resolve"],
                "abandoned": ["ai_replied", "abandon"], "archived": ["resolve", "archive"]}[status]

        def write(conn: Any) -> str:
            customer_id = store.create_customer(conn, self.ws, visitor_id="v_1", name=customer,
                                                email="john@example.com", metadata={"company": "Acme Inc"}) \
                if customer else None
            conv = states.start(conn, self.ws, bot or self.bot, customer_id,
                                {"page_url": "https://shop.example/pricing", "referrer": "https://google.com",
                                 "user_agent": UA})
            store.add_message(conn, conv, "customer", text, sender_id=customer_id, sender_name=customer)
            for event in path:
                states.transition(conn, self.ws, conv, event, reason="user_request" if event == "escalate" else None)
            return conv

        return self.db.write(write)

    def status(self, conversation_id: str) -> dict[str, Any]:
        return store.details(self.db.reader(), self.ws, conversation_id)  # type: ignore[return-value]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with open_client(account_settings(tmp_path / "data")) as test_client:
        yield test_client


@pytest.fixture
def team(client: TestClient) -> Team:
    return Team(client)


class Listener:
    """A subscriber on the app's own hub (the same event loop the TestClient's requests run on)."""

    def __init__(self, client: TestClient, channels: list[str]):
        self.portal = client.blocking_portal
        self._cm = client.app.state.hub.subscribe(channels)
        self.sub = self.portal.call(self._cm.__aenter__)

    def take(self, count: int, timeout: float = 3.0) -> list[dict[str, Any]]:
        async def collect() -> list[dict[str, Any]]:
            frames: list[dict[str, Any]] = []
            with anyio.fail_after(timeout):
                async for raw in self.sub.iter_events():
                    frames.append(json.loads(raw))
                    if len(frames) == count:
                        break
            return frames

        return self.portal.call(collect)

    def pending(self) -> int:
        async def size() -> int:
            await anyio.sleep(0.05)
            return self.sub.qsize

        return self.portal.call(size)

    def close(self) -> None:
        self.portal.call(self._cm.__aexit__, None, None, None)
