"""The widget WebSocket end to end on the real app: every visitor → server event and its answer, the server →
visitor events (agent-side ones driven through the state machine and the hub), dedupe, resume, identity, close codes."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from litestar.exceptions import WebSocketDisconnect

from chatsupport import live
from chatsupport.domain import conversation_payloads as payloads
from chatsupport.domain import conversations as states
from chatsupport.domain import widget
from widget_support import ORIGIN, OTHER_ORIGIN, Site, new_visitor, widget_client

QUESTION = "How long do refunds take?"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with widget_client(tmp_path_factory.mktemp("socket") / "data") as client:
        site = Site(client, data_collection={"collect_name": True, "collect_email": True, "custom_fields": [
            {"name": "order_number", "label": "Order number"}]})
        site.index()
        yield site


def rows(site: Site, sql: str, *params: Any) -> list[dict[str, Any]]:
    return site.db.query(sql, params)


def start(sock: Any, **data: Any) -> dict[str, Any]:
    sock.send("conversation:start", data)
    return sock.until("conversation:started")


def test_ping_and_malformed_frames_keep_the_connection(site: Site) -> None:
    with site.socket(site.config()["token"]) as sock:
        sock.send("ping")
        assert sock.until("pong") == {}
        sock.ws.send_text("not json")
        assert sock.until("error")["code"] == "bad_request"
        sock.send("no:such-event")
        assert sock.until("error")["code"] == "bad_request"
        sock.ws.send_text(json.dumps(["event", "ping"]))
        assert sock.until("error")["code"] == "bad_request"
        sock.send("ping")
        assert sock.until("pong") == {}


def test_a_conversation_with_a_streamed_answer(site: Site) -> None:
    config = site.config()
    ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Version/17.0 Mobile Safari/604.1"
    with site.socket(config["token"]) as sock:
        started = start(sock, fields={"name": "Emma", "email": "emma@example.com", "order_number": "A-1",
                                      "ignored": "x"},
                        metadata={"page_url": f"{ORIGIN}/help", "referrer": "https://search.example/",
                                  "user_agent": ua, "locale": "en-GB"})
        conversation_id = started["conversation_id"]
        assert started["status"] == "active" and started["messages"] == []
        sock.send("message:send", {"client_id": "c-1", "conversation_id": conversation_id, "content": QUESTION,
                                   "attachments": []})
        ack = sock.until("message:ack")
        assert ack["client_id"] == "c-1" and ack["conversation_id"] == conversation_id and ack["timestamp"]
        mine = sock.until("message:receive", message_id=ack["message_id"])
        assert mine["sender"]["type"] == "customer" and mine["client_id"] == "c-1"
        typing = sock.until("typing:start")
        assert typing["sender"] == {"type": "bot", "name": "Acme Helper"}
        reply = _bot_reply(sock)
        chunks = [s for s in sock.events("message:streaming") if s["message_id"] == reply["message_id"]]
        assert chunks and "".join(c["chunk"] for c in chunks if not c.get("reset")).strip()
        assert "14 days" in reply["content"] and reply["sources"] and reply["sources"][0]["title"]
        assert reply["confidence_score"] is not None
        assert sock.until("conversation:status_changed")["new_status"] in ("waiting", "escalated")
        assert sock.events("typing:stop")
    # sender first: the ack was sent before the answer started streaming
    order = [f["event"] for f in sock.seen]
    assert order.index("message:ack") < order.index("message:streaming")
    customer = rows(site, "SELECT c.name, c.email, c.custom_fields FROM customers c JOIN conversations v"
                          " ON v.customer_id = c.id WHERE v.id = ?", conversation_id)[0]
    assert (customer["name"], customer["email"]) == ("Emma", "emma@example.com")
    assert json.loads(customer["custom_fields"]) == {"order_number": "A-1"}
    context = json.loads(rows(site, "SELECT context FROM conversations WHERE id = ?", conversation_id)[0]["context"])
    assert context["device"] == "mobile" and context["browser"] == "Safari" and context["locale"] == "en-GB"
    assert context["page_url"] == f"{ORIGIN}/help" and context["origin"] == ORIGIN
    stored = rows(site, "SELECT sender_type, intent FROM messages WHERE conversation_id = ? ORDER BY rowid",
                  conversation_id)
    assert [m["sender_type"] for m in stored] == ["customer", "bot"] and stored[0]["intent"]


def _bot_reply(sock: Any) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        data = sock.until("message:receive", timeout=60)
        if data["sender"]["type"] == "bot":
            return data
    raise TimeoutError("no bot reply")


def test_send_without_conversation_starts_one_and_resends_are_not_doubled(site: Site) -> None:
    visitor = new_visitor()
    with site.socket(site.config(visitor)["token"]) as sock:
        sock.send("message:send", {"client_id": "first", "conversation_id": None,
                                   "content": "<img src=x onerror=alert(1)>"})
        started = sock.until("conversation:started")
        ack = sock.until("message:ack")
        conversation_id = started["conversation_id"]
        assert ack["conversation_id"] == conversation_id
        _bot_reply(sock)
        sock.send("message:send", {"client_id": "first", "conversation_id": conversation_id,
                                   "content": "<img src=x onerror=alert(1)>"})
        again = sock.until("message:ack")
        assert again["message_id"] == ack["message_id"]
    stored = rows(site, "SELECT content FROM messages WHERE conversation_id = ? AND sender_type = 'customer'",
                  conversation_id)
    assert [m["content"] for m in stored] == ["<img src=x onerror=alert(1)>"]  # verbatim, once
    # the frame now starts with that conversation
    assert site.config(visitor)["conversation_id"] == conversation_id


def test_resume_replays_what_was_missed(site: Site) -> None:
    visitor = new_visitor()
    token = site.config(visitor)["token"]
    with site.socket(token) as sock:
        conversation_id = start(sock)["conversation_id"]
        sock.send("message:send", {"client_id": "r-1", "conversation_id": conversation_id, "content": QUESTION})
        ack = sock.until("message:ack")
        reply = _bot_reply(sock)
    with site.socket(token) as sock:  # reconnected: everything after the last message shown
        sock.send("resume", {"conversation_id": conversation_id, "last_message_id": ack["message_id"]})
        done = sock.until("resume:done")
        replayed = sock.events("message:receive")
        assert [m["message_id"] for m in replayed] == [reply["message_id"]]
        assert done["conversation_id"] == conversation_id and done["agent"] is None
        sock.send("resume", {"conversation_id": conversation_id, "last_message_id": None})
        sock.until("resume:done")
        assert [m["message_id"] for m in sock.events("message:receive")][1:] == [ack["message_id"],
                                                                                 reply["message_id"]]


def test_a_visitor_cannot_reach_another_visitors_conversation(site: Site) -> None:
    with site.socket(site.config()["token"]) as owner:
        conversation_id = start(owner)["conversation_id"]
    with site.socket(site.config()["token"]) as stranger:
        for event, data in (("resume", {"conversation_id": conversation_id, "last_message_id": None}),
                            ("message:send", {"client_id": "x", "conversation_id": conversation_id,
                                              "content": "hi"}),
                            ("typing:start", {"conversation_id": conversation_id}),
                            ("conversation:request_human", {"conversation_id": conversation_id}),
                            ("csat:submit", {"conversation_id": conversation_id, "rating": 1})):
            stranger.send(event, data)
            assert stranger.until("error")["code"] == "not_found", event
    assert rows(site, "SELECT count(*) AS n FROM messages WHERE conversation_id = ?", conversation_id)[0]["n"] == 0


def test_typing_is_relayed_to_the_conversation(site: Site) -> None:
    token = site.config()["token"]
    with site.socket(token) as tab1, site.socket(token) as tab2:
        conversation_id = start(tab1)["conversation_id"]
        tab2.send("resume", {"conversation_id": conversation_id, "last_message_id": None})
        tab2.until("resume:done")
        tab1.send("typing:start", {"conversation_id": conversation_id})
        assert tab2.until("typing:start")["sender"]["type"] == "customer"
        tab1.send("typing:stop", {"conversation_id": conversation_id})
        assert tab2.until("typing:stop")["conversation_id"] == conversation_id


def test_request_human_escalates_with_a_notice(site: Site) -> None:
    with site.socket(site.config()["token"]) as sock:
        conversation_id = start(sock)["conversation_id"]
        sock.send("conversation:request_human", {"conversation_id": conversation_id})
        escalated = sock.until("conversation:escalated")
        assert escalated["reason"] == "user_request" and escalated["business_open"] is True
        assert escalated["estimated_wait_time"] is None  # nobody online
        assert "team" in escalated["message"]
        changed = sock.until("conversation:status_changed")
        assert (changed["old_status"], changed["new_status"]) == ("active", "escalated")
        # while waiting for a person the AI stays silent
        sock.send("message:send", {"client_id": "w-1", "conversation_id": conversation_id, "content": QUESTION})
        sock.until("message:ack")
        time.sleep(0.5)
    status = rows(site, "SELECT status, escalation_reason FROM conversations WHERE id = ?", conversation_id)[0]
    assert (status["status"], status["escalation_reason"]) == ("escalated", "user_request")
    senders = [m["sender_type"] for m in rows(site, "SELECT sender_type FROM messages WHERE conversation_id = ?"
                                                    " ORDER BY rowid", conversation_id)]
    assert senders == ["bot", "customer"]


def test_agent_events_reach_the_widget_and_csat_follows_resolve(site: Site) -> None:
    with site.socket(site.config()["token"]) as sock:
        conversation_id = start(sock)["conversation_id"]
        sock.send("csat:submit", {"conversation_id": conversation_id, "rating": 5})
        assert sock.until("error")["code"] == "not_resolved"
        workspace_id = site.bot["workspace_id"]
        agent = {"id": site.owner["id"], "display_name": "Sam"}
        site.db.write(lambda conn: states.transition(conn, workspace_id, conversation_id, "agent_join",
                                                     by_type="user", by_id=agent["id"], agent_id=agent["id"]))
        live.publish("agent:joined", payloads.agent_joined(conversation_id, agent), conversation_id=conversation_id)
        assert sock.until("agent:joined")["agent"]["name"] == "Sam"
        site.db.write(lambda conn: states.transition(conn, workspace_id, conversation_id, "resolve", by_type="user"))
        live.publish("conversation:status_changed", payloads.status_changed(conversation_id, "agent_handling",
                                                                            "resolved", "agent"),
                     conversation_id=conversation_id)
        live.publish("conversation:resolved", payloads.resolved(conversation_id), conversation_id=conversation_id)
        assert sock.until("conversation:status_changed")["new_status"] == "resolved"
        assert sock.until("conversation:resolved")["survey"]["scale"] == 5
        for bad in (0, 6, "5", 4.5, True):
            sock.send("csat:submit", {"conversation_id": conversation_id, "rating": bad})
            assert sock.until("error")["code"] == "validation_error", bad
        sock.send("csat:submit", {"conversation_id": conversation_id, "rating": 4, "comment": "x" * 1001})
        assert sock.until("error")["code"] == "validation_error"
        sock.send("csat:submit", {"conversation_id": conversation_id, "rating": 4, "comment": "Quick, thanks"})
        assert sock.until("csat:received") == {"conversation_id": conversation_id}
    row = rows(site, "SELECT satisfaction_rating, satisfaction_comment, satisfaction_rated_at FROM conversations"
                     " WHERE id = ?", conversation_id)[0]
    assert (row["satisfaction_rating"], row["satisfaction_comment"]) == (4, "Quick, thanks")
    assert row["satisfaction_rated_at"]


def test_agent_shown_on_resume_while_handling(site: Site) -> None:
    token = site.config()["token"]
    with site.socket(token) as sock:
        conversation_id = start(sock)["conversation_id"]
    site.db.write(lambda conn: states.transition(conn, site.bot["workspace_id"], conversation_id, "agent_join",
                                                 by_type="user", agent_id=site.owner["id"]))
    with site.socket(token) as sock:
        sock.send("resume", {"conversation_id": conversation_id, "last_message_id": None})
        done = sock.until("resume:done")
        assert done["status"] == "agent_handling" and done["agent"]["id"] == site.owner["id"]


def test_feedback_on_own_bot_messages_only(site: Site) -> None:
    with site.socket(site.config()["token"]) as sock:
        conversation_id = start(sock)["conversation_id"]
        sock.send("message:send", {"client_id": "f-1", "conversation_id": conversation_id, "content": QUESTION})
        mine = sock.until("message:ack")["message_id"]
        reply = _bot_reply(sock)["message_id"]
        sock.send("message:feedback", {"message_id": reply, "helpful": False})
        assert sock.until("feedback:received") == {"message_id": reply}
        sock.send("message:feedback", {"message_id": mine, "helpful": True})
        assert sock.until("error")["code"] == "not_found"
        sock.send("message:feedback", {"message_id": reply, "helpful": "yes"})
        assert sock.until("error")["code"] == "validation_error"
    assert rows(site, "SELECT feedback FROM messages WHERE id = ?", reply)[0]["feedback"] == "down"
    with site.socket(site.config()["token"]) as stranger:
        stranger.send("message:feedback", {"message_id": reply, "helpful": True})
        assert stranger.until("error")["code"] == "not_found"
    assert rows(site, "SELECT feedback FROM messages WHERE id = ?", reply)[0]["feedback"] == "down"


def test_identity_follows_the_user_and_a_bad_signature_changes_nothing(site: Site) -> None:
    laptop = new_visitor()
    with site.socket(site.config(laptop)["token"]) as sock:
        conversation_id = start(sock)["conversation_id"]
        sock.send("visitor:identify", {"user_id": "user-42", "signature": site.sign("user-43")})
        assert sock.until("error")["code"] == "invalid_signature"
        sock.send("visitor:identify", {"user_id": "user-42", "signature": "00" * 32})
        assert sock.until("error")["code"] == "invalid_signature"
        sock.send("visitor:identify", {"user_id": "user-42", "email": "u42@example.com", "name": "Ada",
                                       "signature": site.sign("user-42").upper()})
        identified = sock.until("visitor:identified")
        assert identified["user_id"] == "user-42" and identified["conversation_id"] == conversation_id
        claims = widget.read_token(site.client.app.state.services.secret_key, identified["token"])
        assert claims.user_id == "user-42"
        sock.send("visitor:metadata", {"metadata": {"plan": "pro", "seats": 3}})
        sock.send("ping")
        sock.until("pong")
    customer = rows(site, "SELECT name, email, external_id, metadata FROM customers c JOIN conversations v"
                          " ON v.customer_id = c.id WHERE v.id = ?", conversation_id)[0]
    assert (customer["name"], customer["email"], customer["external_id"]) == ("Ada", "u42@example.com", "user-42")
    assert json.loads(customer["metadata"]) == {"plan": "pro", "seats": 3}
    # the same browser without the signature no longer sees the signed-in user's chat
    assert site.config(laptop)["conversation_id"] is None
    # another device, signed in as the same user, does
    with site.socket(site.config()["token"]) as phone:
        phone.send("visitor:identify", {"user_id": "user-42", "signature": site.sign("user-42")})
        assert phone.until("visitor:identified")["conversation_id"] == conversation_id
        phone.send("resume", {"conversation_id": conversation_id, "last_message_id": None})
        assert phone.until("resume:done")["conversation_id"] == conversation_id


def test_offline_form_is_stored_for_agents_without_ai(site: Site) -> None:
    with site.socket(site.config()["token"]) as sock:
        started = start(sock, offline=True, message="Please call me back", fields={"email": "late@example.com"})
        assert [m["content"] for m in started["messages"]] == ["Please call me back"]
        sock.send("conversation:start", {"offline": True, "message": "", "fields": {}})
        assert sock.until("error")["code"] == "validation_error"
        sock.send("conversation:start", {"fields": {"email": "not-an-email"}})
        assert sock.until("error")["code"] == "validation_error"
        time.sleep(0.3)
    conversation_id = started["conversation_id"]
    assert [m["sender_type"] for m in rows(site, "SELECT sender_type FROM messages WHERE conversation_id = ?",
                                           conversation_id)] == ["customer"]
    context = json.loads(rows(site, "SELECT context FROM conversations WHERE id = ?", conversation_id)[0]["context"])
    assert context["offline"] is True


def test_config_updates_reach_open_widgets(site: Site) -> None:
    with site.socket(site.config()["token"]) as sock:
        sock.send("ping")
        sock.until("pong")
        site.update(greeting_message="Welcome back!")
        assert sock.until("config:updated", timeout=10)["chatbot"]["greeting_message"] == "Welcome back!"


def test_a_takeover_cancels_the_answer_still_running(tmp_path: Path) -> None:
    with widget_client(tmp_path / "data") as client:
        site = Site(client, "Slow", behavior_settings={"response_delay": 4000})
        site.index({"billing.md": "# Billing\n\nRefunds are issued within 14 days of a charge."})
        with site.socket(site.config()["token"]) as sock:
            conversation_id = start(sock)["conversation_id"]
            sock.send("message:send", {"client_id": "t-1", "conversation_id": conversation_id, "content": QUESTION})
            sock.until("message:ack")
            sock.until("typing:start")
            with client.portal() as portal:
                assert portal.call(_cancel, conversation_id) is True
            sock.until("typing:stop")
            time.sleep(0.5)
        assert [m["sender_type"] for m in site.db.query("SELECT sender_type FROM messages WHERE conversation_id"
                                                        " = ?", (conversation_id,))] == ["customer"]


async def _cancel(conversation_id: str) -> bool:
    return live.cancel_answer(conversation_id)


def test_close_codes(tmp_path: Path) -> None:
    with widget_client(tmp_path / "data", WIDGET_MAX_CONNECTIONS="1") as client:
        site = Site(client)
        token = site.config()["token"]
        for bad in ("nonsense", token[:-2] + "xx"):
            with site.socket(bad) as sock, pytest.raises(WebSocketDisconnect) as closed:
                sock.ws.receive(timeout=5)
            assert closed.value.code == 4401
        with site.socket(token, origin=OTHER_ORIGIN) as sock, pytest.raises(WebSocketDisconnect) as closed:
            sock.ws.receive(timeout=5)
        assert closed.value.code == 4403
        with site.socket(token, origin=ORIGIN) as first:  # the host site's own origin is fine
            first.send("ping")
            first.until("pong")
            with site.socket(token) as second, pytest.raises(WebSocketDisconnect) as closed:
                second.ws.receive(timeout=5)
            assert closed.value.code == 4429
        site.update(allowed_origins=["https://elsewhere.example"])
        client.app.state.widget.forget_bot(site.bot["id"])
        with site.socket(token) as sock, pytest.raises(WebSocketDisconnect) as closed:
            sock.ws.receive(timeout=5)
        assert closed.value.code == 4403
