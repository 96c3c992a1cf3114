"""Integration settings through the API: the console's SMTP server replaces the environment's for every email,
the customer gets a transcript when their conversation is resolved, and Slack hears about new and escalated
conversations with a link to the inbox. Real SMTP (aiosmtpd) and HTTP servers on 127.0.0.1."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from accounts_support import add_user, audit_rows, bearer, error_code, login, open_client
from test_mail import Inbox, smtp  # noqa: F401  (the fixture)
from test_webhooks import Receiver, receiver, start_chat, wait_for, widget  # noqa: F401  (fixtures)
from widget_support import Site, widget_settings


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    settings = widget_settings(tmp_path / "data", OUTBOUND_ALLOWLIST="127.0.0.1", RUN_WORKER="true",
                               WEBHOOK_RETRY_BASE="0.2", PUBLIC_URL="https://support.acme.example")
    with open_client(settings) as client:
        yield Site(client)


def smtp_body(port: int, **extra: Any) -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": port, "starttls": False, "sender": "Acme Help <help@acme.example>", **extra}


def test_smtp_saved_in_the_console_carries_the_next_email(site: Site, smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    client, headers = site.client, site.headers
    before = client.get("/api/v1/integrations", headers=headers).json()
    assert before["smtp"]["source"] == "none" and before["transcript_email"] is False
    assert client.post("/api/v1/integrations/smtp/test", json={}, headers=headers).json()["error"]["code"] == \
        "mail_not_configured"

    saved = client.put("/api/v1/integrations/smtp", json=smtp_body(port, username="", password="s3cret-pass"),
                       headers=headers)
    assert saved.status_code == 200, saved.text
    assert saved.json()["smtp"] == {"source": "console", "host": "127.0.0.1", "port": port, "username": "",
                                    "sender": "Acme Help <help@acme.example>", "starttls": False,
                                    "password_set": True, "updated_at": saved.json()["smtp"]["updated_at"]}
    assert "s3cret-pass" not in saved.text
    stored = site.db.query_one("SELECT password_enc FROM smtp_settings")["password_enc"]
    assert b"s3cret-pass" not in stored
    changes = json.loads(audit_rows(client, "integrations.smtp_updated")[0]["changes"])
    assert changes["password"] == "changed" and "s3cret-pass" not in json.dumps(changes)

    # a mail sent by another feature (password reset, through the job queue) now goes out through it
    add_user(client, "Acme", "mila@acme.example", "agent")
    assert client.post("/api/v1/auth/forgot-password", json={"email": "mila@acme.example"}).status_code == 200
    wait_for(lambda: inbox.messages)
    assert inbox.messages[0]["to"] == "mila@acme.example"
    assert inbox.messages[0]["from"] == "Acme Help <help@acme.example>"
    requested = audit_rows(client, "user.password_reset_requested")
    assert json.loads(requested[0]["metadata"]) == {"mailed": True}

    tested = client.post("/api/v1/integrations/smtp/test", json={"to": "ops@acme.example"}, headers=headers)
    assert tested.status_code == 200 and tested.json() == {"sent_to": "ops@acme.example", "host": "127.0.0.1",
                                                           "source": "console"}
    assert inbox.messages[-1]["subject"] == "ChatSupport test email" and inbox.messages[-1]["to"] == "ops@acme.example"

    # omitting the password keeps it; "" removes it
    kept = client.put("/api/v1/integrations/smtp", json=smtp_body(port), headers=headers)
    assert kept.json()["smtp"]["password_set"] is True
    removed = client.put("/api/v1/integrations/smtp", json=smtp_body(port, password=""), headers=headers)
    assert removed.json()["smtp"]["password_set"] is False

    cleared = client.delete("/api/v1/integrations/smtp", headers=headers)
    assert cleared.status_code == 200 and cleared.json()["smtp"]["source"] == "none"


def test_smtp_errors_are_explained(site: Site, smtp: tuple[Inbox, int]) -> None:
    _, port = smtp
    bad = site.client.put("/api/v1/integrations/smtp", json=smtp_body(port, host="smtp example", sender="nobody"),
                          headers=site.headers)
    assert bad.status_code == 422
    assert {d["field"] for d in bad.json()["error"]["details"]} == {"host", "sender"}
    unreachable = site.client.put("/api/v1/integrations/smtp", json=smtp_body(1), headers=site.headers)
    assert unreachable.status_code == 200
    failed = site.client.post("/api/v1/integrations/smtp/test", json={}, headers=site.headers)
    assert failed.status_code == 502 and error_code(failed) == "integration_failed"
    assert "The mail server said" in failed.json()["error"]["message"]


def test_environment_smtp_is_the_default_and_the_console_overrides_it(tmp_path: Path,
                                                                     smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    settings = widget_settings(tmp_path / "data", SMTP_HOST="127.0.0.1", SMTP_PORT="1", SMTP_STARTTLS="false")
    with open_client(settings) as client:
        site = Site(client)
        shown = client.get("/api/v1/integrations", headers=site.headers).json()["smtp"]
        assert (shown["source"], shown["port"], shown["password_set"]) == ("environment", 1, False)
        assert client.post("/api/v1/integrations/smtp/test", json={}, headers=site.headers).status_code == 502
        client.put("/api/v1/integrations/smtp", json=smtp_body(port), headers=site.headers)
        sent = client.post("/api/v1/integrations/smtp/test", json={}, headers=site.headers)
        assert sent.status_code == 200 and sent.json()["sent_to"] == site.owner["email"]
        assert [m["to"] for m in inbox.messages] == [site.owner["email"]]


def test_the_customer_gets_the_transcript_when_the_conversation_is_resolved(site: Site,
                                                                           smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    client, headers = site.client, site.headers
    client.put("/api/v1/integrations/smtp", json=smtp_body(port), headers=headers)
    token, quiet = start_chat(site)
    client.post(f"/api/v1/conversations/{quiet}/resolve", json={}, headers=headers)  # setting off: no email

    enabled = client.patch("/api/v1/integrations", json={"transcript_email": True}, headers=headers)
    assert enabled.status_code == 200 and enabled.json()["transcript_email"] is True
    _, conversation_id = start_chat(site, token)
    client.post(f"/api/v1/conversations/{conversation_id}/messages", json={"content": "Your refund is on its way."},
                headers=headers)
    client.post(f"/api/v1/conversations/{conversation_id}/notes", json={"content": "VIP, be nice"}, headers=headers)
    assert client.post(f"/api/v1/conversations/{conversation_id}/resolve", json={"tags": ["refund"]},
                       headers=headers).status_code == 200
    [mail] = wait_for(lambda: inbox.messages)
    assert mail["to"] == "noor@shop.example"
    assert mail["subject"] == f"Your conversation with {site.bot['name']}"
    assert mail["body"].startswith("Hello Noor,")
    assert "Your refund is on its way." in mail["body"]
    assert "VIP" not in mail["body"] and "Tags" not in mail["body"], "staff notes and tags stay inside"


def test_slack_hears_new_and_escalated_conversations(site: Site, receiver: Receiver) -> None:
    client, headers = site.client, site.headers
    assert client.post("/api/v1/integrations/slack/test", headers=headers).status_code == 409
    url = receiver.url + "/services/T000/B000/XXXXsecretXXXX"
    connected = client.put("/api/v1/integrations/slack", json={"webhook_url": url}, headers=headers)
    assert connected.status_code == 200, connected.text
    assert connected.json()["slack"] == {"configured": True, "hint": "127.0.0.1 …XXXX"}
    assert "secretXXXX" not in connected.text and "secretXXXX" not in client.get("/api/v1/integrations",
                                                                                  headers=headers).text

    tested = client.post("/api/v1/integrations/slack/test", headers=headers)
    assert tested.status_code == 200 and tested.json() == {"status": 200}
    assert "ChatSupport is connected" in json.loads(receiver.requests[0]["raw"])["text"]

    token, conversation_id = start_chat(site)
    widget(site, token, "conversation:request_human", {"conversation_id": conversation_id})
    wait_for(lambda: len(receiver.requests) >= 3)
    posts = [json.loads(r["raw"])["text"] for r in receiver.requests[1:]]
    link = f"<https://support.acme.example/inbox/{conversation_id}|Open in the ChatSupport inbox>"
    assert any(p.startswith("*New conversation* — Noor") and p.endswith(link) for p in posts), posts
    assert any(p.startswith("*Conversation escalated* — Noor") and "user_request" in p and p.endswith(link)
               for p in posts), posts
    assert all(r["path"] == "/services/T000/B000/XXXXsecretXXXX" for r in receiver.requests)

    assert client.delete("/api/v1/integrations/slack", headers=headers).json()["slack"]["configured"] is False
    start_chat(site, token)
    time.sleep(0.5)
    assert len(receiver.requests) == 3


def test_slack_refuses_private_addresses_unless_allowed(tmp_path: Path) -> None:
    with open_client(widget_settings(tmp_path / "data")) as client:
        site = Site(client)
        for url in ("http://127.0.0.1:9/x", "http://192.168.0.10/hook", "file:///etc/passwd"):
            response = client.put("/api/v1/integrations/slack", json={"webhook_url": url}, headers=site.headers)
            assert response.status_code == 422, url
            assert error_code(response) in ("url_not_allowed", "validation_error")
        assert client.get("/api/v1/integrations", headers=site.headers).json()["slack"]["configured"] is False


def test_integration_settings_are_for_owners_and_admins(site: Site) -> None:
    client = site.client
    admin = bearer(login(client, add_user(client, "Acme", "admin@acme.example", "admin")["email"]))
    assert client.get("/api/v1/integrations", headers=admin).status_code == 200
    for role in ("agent", "viewer"):
        headers = bearer(login(client, add_user(client, "Acme", f"{role}@acme.example", role)["email"]))
        assert client.get("/api/v1/integrations", headers=headers).status_code == 403
        assert client.put("/api/v1/integrations/smtp", json=smtp_body(25), headers=headers).status_code == 403
        assert client.patch("/api/v1/integrations", json={"transcript_email": True},
                            headers=headers).status_code == 403
    assert client.get("/api/v1/integrations", headers=site.headers).json()["transcript_email"] is False
