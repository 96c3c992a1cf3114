"""Who is talking through the chat widget, and from where (docs/widget-protocol.md): the widget token, the identity
signature, the origin check, the frame's start-up configuration and the visitor's customer.

The token is ``<payload>.<signature>``: URL-safe base64 of a small JSON object and its HMAC-SHA256 under a key
derived from the instance secret for this one purpose, so no other token the instance signs (API access tokens,
CSRF values) can ever pass as a widget token, nor the other way round.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

import apsw

from chatsupport.domain.chatbot_schema import DEFAULTS
from chatsupport.domain.chatbots import merge
from chatsupport.domain.widget_limits import MAX_MESSAGE_LENGTH
from chatsupport.errors import AppError
from chatsupport.llm.escalation import is_open
from chatsupport.store import widget as store
from chatsupport.store.db import Row

TOKEN_SECONDS = 3600
REFRESH_GRACE_SECONDS = 24 * 3600   # a laptop waking from a night's sleep can still trade its token
VISITOR_ID = re.compile(r"^v_[A-Za-z0-9_-]{8,64}$")
ORIGIN = re.compile(r"^https?://[a-z0-9.-]+(:[0-9]{1,5})?$")
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
ATTACHMENT_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf")


@dataclass(frozen=True)
class Visitor:
    """The claims of a valid widget token."""

    workspace_id: str
    chatbot_id: str
    visitor_id: str
    origin: str
    user_id: str | None = None
    expires: int = 0

    def identified(self, user_id: str) -> "Visitor":
        return replace(self, user_id=user_id)


# --- the token --------------------------------------------------------------------------------------------------
def _key(secret: str) -> bytes:
    return hmac.new(secret.encode(), b"chatsupport widget token v1", hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue_token(secret: str, visitor: Visitor, now: float | None = None) -> tuple[str, str]:
    """(token, expiry as ISO-8601) for one hour from ``now``."""
    expires = int(now if now is not None else time.time()) + TOKEN_SECONDS
    claims = {"w": visitor.workspace_id, "b": visitor.chatbot_id, "v": visitor.visitor_id, "o": visitor.origin,
              "u": visitor.user_id, "exp": expires}
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signature = _b64(hmac.new(_key(secret), payload.encode(), hashlib.sha256).digest())
    return f"{payload}.{signature}", iso(expires)


def read_token(secret: str, token: str | None, now: float | None = None, grace: int = 0) -> Visitor:
    """The token's claims; ``widget_token_invalid`` when forged, malformed or expired (``grace`` seconds late are
    still accepted: the refresh endpoint's allowance)."""
    payload, _, signature = (token or "").partition(".")
    try:
        expected = hmac.new(_key(secret), payload.encode(), hashlib.sha256).digest()
        if not payload or not hmac.compare_digest(expected, _unb64(signature)):
            raise ValueError("bad signature")
        claims = json.loads(_unb64(payload))
        visitor = Visitor(claims["w"], claims["b"], claims["v"], claims["o"], claims.get("u"), int(claims["exp"]))
    except (ValueError, KeyError, TypeError, UnicodeError):
        raise AppError("widget_token_invalid") from None
    if visitor.expires + grace < (now if now is not None else time.time()):
        raise AppError("widget_token_invalid")
    return visitor


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


# --- identity and origin ----------------------------------------------------------------------------------------
def signature_valid(identity_secret: str, user_id: str, signature: str) -> bool:
    """The host site's server signs ``user_id`` with the chatbot's identity secret (hex HMAC-SHA256)."""
    expected = hmac.new(identity_secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, (signature or "").strip().lower())


def normalise_origin(origin: str | None) -> str | None:
    """``scheme://host[:port]`` in lower case, or None when it is not an http(s) origin."""
    value = (origin or "").strip().rstrip("/").lower()
    return value if ORIGIN.match(value) else None


def origin_allowed(bot: Row, origin: str) -> bool:
    """An empty allowed-origins list allows any site (the default, with a console hint to set it)."""
    allowed = {normalise_origin(o) for o in bot["allowed_origins"]}
    return not allowed or origin in allowed


def check_bot(bot: Row | None, origin: str) -> Row:
    """The frame's rules: unknown or archived → 404, inactive or another site → 403."""
    if bot is None or bot["status"] == "archived":
        raise AppError("not_found", "This chat does not exist.")
    if bot["status"] != "active":
        raise AppError("chatbot_unavailable")
    if not origin_allowed(bot, origin):
        raise AppError("origin_not_allowed")
    return bot


# --- what the frame starts with ---------------------------------------------------------------------------------
def chatbot_config(bot: Row, now: datetime | None = None) -> dict[str, Any]:
    """The public part of a chatbot's settings: what the frame shows (cs-config.chatbot, config:updated)."""
    settings = merge(DEFAULTS, bot["settings"])
    hours = settings["business_hours"]
    return {"name": bot["name"], "status": bot["status"], "greeting_message": settings["greeting_message"],
            "personality": settings["personality"], "widget_settings": settings["widget_settings"],
            "data_collection": settings["data_collection"],
            "business_open": is_open(hours, now or datetime.now(timezone.utc)),
            "offline_message": hours.get("offline_message"),
            "show_typing_indicator": bool(settings["behavior_settings"].get("show_typing_indicator", True))}


def frame_config(bot: Row, visitor: Visitor, token: str, expires_at: str, base_url: str,
                 conversation_id: str | None) -> dict[str, Any]:
    ws_base = "wss://" + base_url[len("https://"):] if base_url.startswith("https://") else \
        "ws://" + base_url.removeprefix("http://")
    return {"token": token, "token_expires_at": expires_at, "ws_url": f"{ws_base}/ws/widget",
            "api_base": f"{base_url}/widget/api", "host_origin": visitor.origin, "visitor_id": visitor.visitor_id,
            "conversation_id": conversation_id, "chatbot": chatbot_config(bot),
            "limits": {"max_message_length": MAX_MESSAGE_LENGTH, "max_attachment_bytes": MAX_ATTACHMENT_BYTES,
                       "attachment_types": list(ATTACHMENT_TYPES)},
            "source_url": f"{base_url}/source"}


# --- the visitor's customer -------------------------------------------------------------------------------------
def customer_of(conn: apsw.Connection, visitor: Visitor) -> str | None:
    """A verified user is found by their user id (their chats follow them across devices); anyone else by the
    visitor id, among customers no identity has claimed."""
    if visitor.user_id is not None:
        return store.identified_customer(conn, visitor.workspace_id, visitor.user_id)
    return store.anonymous_customer(conn, visitor.workspace_id, visitor.visitor_id)


def ensure_customer(conn: apsw.Connection, visitor: Visitor) -> str:
    """On a writer connection: the visitor's customer, created on first need."""
    return customer_of(conn, visitor) or store.create_customer(conn, visitor.workspace_id, visitor.visitor_id,
                                                               visitor.user_id)


def identify(conn: apsw.Connection, visitor: Visitor, user_id: str) -> str:
    """On a writer connection, after the signature was checked: the user's customer, taking over the chats this
    browser had before signing in (they were the same person a moment ago)."""
    identified = store.identified_customer(conn, visitor.workspace_id, user_id)
    anonymous = store.anonymous_customer(conn, visitor.workspace_id, visitor.visitor_id) \
        if visitor.user_id is None else None
    if identified is None and anonymous is not None:
        conn.execute("UPDATE customers SET external_id = ? WHERE id = ?", (user_id, anonymous))
        return anonymous
    if identified is None:
        return store.create_customer(conn, visitor.workspace_id, visitor.visitor_id, user_id)
    if anonymous is not None:
        store.move_conversations(conn, visitor.workspace_id, anonymous, identified)
    return identified


def latest_conversation(conn: apsw.Connection, visitor: Visitor) -> str | None:
    customer_id = customer_of(conn, visitor)
    row = store.latest_conversation(conn, visitor.chatbot_id, customer_id) if customer_id else None
    return row["id"] if row else None
