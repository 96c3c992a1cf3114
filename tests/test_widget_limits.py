"""The widget's limits (issue 6 item 7): each refusal is an ``error`` frame with a code and ``retry_after``."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from chatsupport.domain.widget_limits import MESSAGES, Connections, Limiter, Window, ip_windows
from widget_support import Site, new_visitor, widget_client


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with widget_client(tmp_path_factory.mktemp("limits") / "data") as client:
        yield Site(client)


def test_the_limiter_counts_a_sliding_window() -> None:
    now = [1000.0]
    limiter = Limiter(clock=lambda: now[0])
    windows = (Window(2, 60), Window(3, 3600))
    assert limiter.check("k", windows) is None
    limiter.hit("k", windows)
    now[0] += 10
    limiter.hit("k", windows)
    assert limiter.check("k", windows) == 50  # the first hit leaves the minute window in 50 s
    now[0] += 51
    assert limiter.check("k", windows) is None
    limiter.hit("k", windows)
    assert limiter.check("k", windows) == 3600 - 61  # three an hour
    assert limiter.check("other", windows) is None
    assert ip_windows(0) == () and limiter.check("ip", ip_windows(0)) is None
    limiter.hit("ip", ip_windows(0))
    connections = Connections(cap=1)
    assert connections.acquire("w") and not connections.acquire("w")
    connections.release("w")
    assert connections.acquire("w") and connections.count("w") == 1
    assert MESSAGES == (Window(10, 60), Window(100, 3600))


def test_ten_messages_a_minute_then_rate_limited(site: Site) -> None:
    with site.socket(site.config()["token"]) as sock:
        sock.send("conversation:start", {})
        conversation_id = sock.until("conversation:started")["conversation_id"]
        sock.send("conversation:request_human", {"conversation_id": conversation_id})  # no AI answers to wait for
        sock.until("conversation:escalated")
        for n in range(10):
            sock.send("message:send", {"client_id": f"m-{n}", "conversation_id": conversation_id, "content": f"#{n}"})
            sock.until("message:ack", client_id=f"m-{n}")
        sock.send("message:send", {"client_id": "m-10", "conversation_id": conversation_id, "content": "one more"})
        error = sock.until("error")
        assert error["code"] == "rate_limited" and error["client_id"] == "m-10"
        assert 0 < error["retry_after"] <= 60 and "seconds" in error["message"]
        # a resend of a stored message is still acknowledged: it stores nothing
        sock.send("message:send", {"client_id": "m-3", "conversation_id": conversation_id, "content": "#3"})
        assert sock.until("message:ack")["client_id"] == "m-3"
    count = site.db.query_one("SELECT count(*) AS n FROM messages WHERE conversation_id = ? AND sender_type ="
                              " 'customer'", (conversation_id,))["n"]
    assert count == 10


def test_message_length(site: Site) -> None:
    with site.socket(site.config()["token"]) as sock:
        sock.send("conversation:start", {})
        conversation_id = sock.until("conversation:started")["conversation_id"]
        sock.send("conversation:request_human", {"conversation_id": conversation_id})
        sock.until("conversation:escalated")
        sock.send("message:send", {"client_id": "long", "conversation_id": conversation_id, "content": "x" * 4001})
        error = sock.until("error")
        assert (error["code"], error["client_id"]) == ("message_too_long", "long")
        sock.send("message:send", {"client_id": "max", "conversation_id": conversation_id, "content": "y" * 4000})
        assert sock.until("message:ack")["client_id"] == "max"
        sock.send("message:send", {"client_id": "empty", "conversation_id": conversation_id, "content": "  "})
        assert sock.until("error")["code"] == "validation_error"


def test_five_new_conversations_an_hour_per_visitor(site: Site) -> None:
    with site.socket(site.config()["token"]) as sock:
        for _ in range(5):
            sock.send("conversation:start", {})
            sock.until("conversation:started")
        sock.send("conversation:start", {})
        error = sock.until("error")
        assert error["code"] == "rate_limited" and error["retry_after"] > 3000
        sock.send("message:send", {"client_id": "n", "conversation_id": None, "content": "hello"})
        assert sock.until("error")["code"] == "rate_limited"


def test_new_conversations_per_client_ip(tmp_path: Path) -> None:
    with widget_client(tmp_path / "data", WIDGET_IP_LIMIT="2") as client:
        site = Site(client)
        for n in range(3):
            with site.socket(site.config(new_visitor())["token"]) as sock:
                sock.send("conversation:start", {})
                frame = sock.until("error") if n == 2 else sock.until("conversation:started")
        assert frame["code"] == "rate_limited"
        # the HTTP fallback answers the same way
        token = site.config()["token"]
        response = client.post("/widget/api/messages", headers={"Authorization": f"Bearer {token}"},
                               json={"event": "conversation:start", "data": {}})
        assert response.status_code == 200
        assert response.json()["events"][0]["data"]["code"] == "rate_limited"
