"""Helpers for the widget's browser tests: Debian's Chromium under Playwright (never `playwright install`), an
instance seeded with chatbots and a small indexed help page, the real server, a customer's site on a second
loopback origin that pastes the embed code, and the agent side through the REST API.

Chromium runs with every host name except 127.0.0.1/localhost mapped to "not found", so nothing leaves the box.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from accounts_support import account_settings, add_user, bearer, login, open_client
from chatsupport.retrieval.embedder import DEFAULT_CACHE

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic",
                 "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost"]
SERVER_ENV = {"ARGON2_MEMORY_KIB": "1024", "RUN_WORKER": "false", "MODEL_CACHE_DIR": str(DEFAULT_CACHE)}
OWNER = "owner@acme.example"
AGENT = "alex@acme.example"
AGENT_NAME = "Alex Agent"
HELP_URL = "https://help.acme.example/refunds"
HELP_PAGES = {"refunds.md": "# Refunds\n\nRefunds are issued within 14 days of a charge, to the original payment "
                            "method. To ask for one, open Settings > Billing and choose Request refund.\n\n"
                            "## Invoices\n\nDownload past invoices from Settings > Billing > Invoices."}
QUESTION = "How long do refunds take?"
FAST = {"behavior_settings": {"response_delay": 0}, "ai_settings": {"model": "extractive"}}
BOTS: dict[str, dict[str, Any] | None] = {
    "main": {"name": "Acme Help", "greeting_message": "Hi! Ask me about **billing**.",
             "data_collection": {"collect_name": True, "collect_email": True, "custom_fields": []},
             "widget_settings": {"button_text": "Chat with Acme", "position": "bottom-left",
                                 "theme": {"primary_color": "#0F766E"}}},
    "fallback": None,  # the same as "main", for the run over the HTTP fallback
    "reconnect": {"name": "Acme Reconnect"},
    "plain": {"name": "Acme Quick"},
    "fresh": {"name": "Acme Fresh"},
    "unread": {"name": "Acme Unread"},
    "theme": {"name": "Acme Theme"},
    "identity": {"name": "Acme Identity"},
    "restricted": {"name": "Acme Private", "allowed_origins": ["https://shop.acme.example"]},
    "offline": {"name": "Acme Night", "business_hours": {"enabled": True, "schedule": {
        day: None for day in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")}}},
}


@dataclass
class Seeded:
    bots: dict[str, dict[str, Any]]   # role → chatbot as the API returned it


def seed(data_dir: Path) -> Seeded:
    """Owner and agent, the chatbots above (extractive answers, no typing delay) and the help page indexed with
    the real embedder into the main and plain chatbots, written before the server starts."""
    from answer_support import index_pages
    from chatsupport.retrieval.embedder import Embedder

    settings = account_settings(data_dir, MODEL_CACHE_DIR=str(DEFAULT_CACHE))
    with open_client(settings) as client:
        add_user(client, "Acme", OWNER, "owner")
        add_user(client, "Acme", AGENT, "agent", name=AGENT_NAME)
        owner = bearer(login(client, OWNER))
        bots = {}
        for role, body in BOTS.items():
            body = body or {**BOTS["main"], "name": "Acme Help Fallback"}
            response = client.post("/api/v1/chatbots", json={**FAST, **body}, headers=owner)
            assert response.status_code == 201, response.text
            bots[role] = response.json()
        embedder = Embedder(cache_dir=DEFAULT_CACHE)
        for role in ("main", "fallback", "reconnect", "plain", "unread"):
            index_pages(client.app.state.services.db, embedder, bots[role]["id"], HELP_PAGES,
                        urls={"refunds.md": HELP_URL})
    return Seeded(bots)


def host_page(embed_code: str, title: str = "Acme shop") -> str:
    """A customer's page: some content of its own (with CSS that would leak into a careless widget) and the
    chatbot's embed code pasted before </body>."""
    return ("<!doctype html><html><head><title>" + title + "</title>"
            "<style>button { background: red !important; font-size: 40px; } * { color: purple; }</style></head>"
            "<body><h1>Welcome to the shop</h1><p><a href='#top' id='shop-link'>Shop link</a></p>"
            + embed_code + "</body></html>")


class AgentApi:
    """The agent's side over the REST API of the live server."""

    def __init__(self, base_url: str, email: str = AGENT):
        self.http = httpx.Client(base_url=base_url, timeout=30)
        response = self.http.post("/api/v1/auth/login", json={"email": email, "password": "Secret#123"})
        assert response.status_code == 200, response.text
        self.http.headers.update(bearer(response.json()))

    def conversations(self, chatbot_id: str) -> list[dict[str, Any]]:
        response = self.http.get("/api/v1/conversations", params={"chatbot_id": chatbot_id})
        assert response.status_code == 200, response.text
        return response.json()["data"]

    def only_conversation(self, chatbot_id: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.conversations(chatbot_id)
            if found:
                assert len(found) == 1, found
                return found[0]
            time.sleep(0.2)
        raise TimeoutError("no conversation")

    def conversation(self, conversation_id: str) -> dict[str, Any]:
        response = self.http.get(f"/api/v1/conversations/{conversation_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.http.post(path, json=body or {})
        assert response.status_code in (200, 201), response.text
        return response.json()

    def takeover(self, conversation_id: str) -> dict[str, Any]:
        return self.post(f"/api/v1/conversations/{conversation_id}/takeover")

    def reply(self, conversation_id: str, content: str) -> dict[str, Any]:
        return self.post(f"/api/v1/conversations/{conversation_id}/messages", {"content": content})

    def resolve(self, conversation_id: str) -> dict[str, Any]:
        return self.post(f"/api/v1/conversations/{conversation_id}/resolve")

    def close(self) -> None:
        self.http.close()


def messages_of(conversation: dict[str, Any], sender: str) -> list[str]:
    """Contents of a conversation's messages from one kind of sender, oldest first (PRD detail shape)."""
    out = []
    for message in conversation.get("messages", []):
        kind = message.get("sender_type") or (message.get("sender") or {}).get("type")
        if kind == sender:
            out.append(message["content"])
    return out
