"""Settings → Integrations as a browser sees it (HTML parsed): the mail server saved through the form carries the
next email and the test button, Slack connect/test/disconnect, webhooks created with their secret shown once,
edited, revealed and deleted (behind a confirmation), the delivery log with redeliver, errors in words, roles,
another workspace's webhook 404, and no inline code (CSP)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest
from litestar.testing import TestClient

from accounts_support import Page, add_user, open_client
from test_knowledge_console import Elements, console_login
from test_mail import Inbox, smtp  # noqa: F401  (the fixture)
from test_webhooks import EVENTS, Receiver, receiver, start_chat, wait_for  # noqa: F401  (fixtures)
from widget_support import Site, widget_settings

BASE = "/settings/integrations"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    settings = widget_settings(tmp_path / "data", OUTBOUND_ALLOWLIST="127.0.0.1", RUN_WORKER="true",
                               WEBHOOK_RETRY_BASE="0.2")
    with open_client(settings) as client:
        yield Site(client)


def page(client: TestClient, path: str = BASE) -> tuple[Page, Elements, str]:
    response = client.get(path)
    assert response.status_code == 200, response.text
    return Page(response.text), Elements(response.text), response.text


def submit(client: TestClient, form_id: str, path: str = BASE, **fields: Any) -> Any:
    form = page(client, path)[0].form(form_id)
    return client.post(form["action"], data={"csrf_token": form["fields"]["csrf_token"], **fields})


def test_mail_server_form_and_test_button(site: Site, smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    client = site.client
    console_login(client, site.owner["email"])
    shown, elements, html = page(client)
    assert "No mail server yet" in shown.texts["smtp-source"]
    assert elements.attrs["tab-integrations"]["aria-current"] == "page"
    assert shown.inline_styles == 0 and all(script.get("src") for script in shown.scripts)

    bad = submit(client, "smtp-form", host="", port="99999", sender="nobody")
    assert bad.status_code == 422
    assert set(Page(bad.text).field_errors) == {"host", "port", "sender"}

    saved = submit(client, "smtp-form", host="127.0.0.1", port=str(port), username="", password="pw-123456",
                   sender="Acme Help <help@acme.example>")
    assert saved.status_code == 200 and "Mail server saved" in " ".join(Page(saved.text).alerts)
    after = Page(saved.text)
    assert after.form("smtp-form")["fields"]["host"] == "127.0.0.1"
    assert after.form("smtp-form")["fields"]["password"] == "", "the password is never shown back"
    assert "pw-123456" not in saved.text and "Saved here" in after.texts["smtp-source"]

    tested = submit(client, "smtp-test-form", to="ops@acme.example")
    assert tested.status_code == 200
    assert "Test email sent to ops@acme.example through 127.0.0.1." in Page(tested.text).alerts
    assert [(m["to"], m["from"]) for m in inbox.messages] == [("ops@acme.example", "Acme Help <help@acme.example>")]

    on = submit(client, "transcripts-form", transcript_email="1")
    assert "Transcript email setting saved." in Page(on.text).alerts
    assert json.loads(client.get("/api/v1/integrations", headers=site.headers).text)["transcript_email"] is True

    assert page(client)[1].attrs["smtp-clear-form"]["data-confirm"]
    cleared = submit(client, "smtp-clear-form")
    assert "No mail server yet" in Page(cleared.text).texts["smtp-source"]
    failed = client.post(f"{BASE}/smtp/test", data={"csrf_token": page(client)[0].form("smtp-test-form")["fields"]
                                                     ["csrf_token"], "to": "ops@acme.example"})
    assert failed.status_code == 409 and any("No mail server" in alert for alert in Page(failed.text).alerts)


def test_slack_connect_test_and_disconnect(site: Site, receiver: Receiver) -> None:
    client = site.client
    console_login(client, site.owner["email"])
    assert "Not connected" in page(client)[0].texts["slack-status"]
    refused = submit(client, "slack-form", webhook_url="http://10.1.2.3/hook")
    assert refused.status_code == 422 and Page(refused.text).field_errors["webhook_url"]

    connected = submit(client, "slack-form", webhook_url=receiver.url + "/services/T/B/zzzz")
    assert "Slack connected." in Page(connected.text).alerts
    assert "127.0.0.1 …zzzz" in Page(connected.text).texts["slack-status"] and "/services/T/B" not in connected.text
    tested = submit(client, "slack-test-form")
    assert "Test message posted to Slack." in Page(tested.text).alerts and len(receiver.requests) == 1

    receiver.statuses = [404]
    broken = submit(client, "slack-test-form")
    assert broken.status_code == 502 and any("HTTP 404" in alert for alert in Page(broken.text).alerts)

    assert page(client)[1].attrs["slack-remove-form"]["data-confirm"]
    removed = submit(client, "slack-remove-form")
    assert "Not connected" in Page(removed.text).texts["slack-status"]


def test_webhooks_from_the_console(site: Site, receiver: Receiver) -> None:
    client = site.client
    console_login(client, site.owner["email"])
    assert page(client)[0].texts["webhooks-empty"].startswith("No webhooks yet")

    missing = submit(client, "webhook-form", url=receiver.url + "/h", description="CRM", enabled="1")
    assert missing.status_code == 422 and "events" in Page(missing.text).field_errors
    assert Page(missing.text).form("webhook-form")["fields"]["url"] == receiver.url + "/h", "what was typed stays"

    created = submit(client, "webhook-form", url=receiver.url + "/h", description="CRM", enabled="1",
                     events=["conversation.created", "conversation.resolved"])
    assert created.status_code == 201
    card = Elements(created.text).attrs["new-secret"]
    assert card["value"].startswith("whsec_") and "readonly" in card
    hook_id = site.db.query_one("SELECT id FROM webhooks")["id"]
    listed = page(client)[0]
    assert f"webhook-{hook_id}" in listed.texts and "whsec_" not in page(client)[2]

    start_chat(site)
    wait_for(lambda: receiver.requests)
    detail = f"{BASE}/webhooks/{hook_id}"
    shown, elements, html = wait_for(lambda: (p := page(client, detail)) and "succeeded" in p[2] and p)
    rows = [key for key in elements.attrs if key.startswith("delivery-")]
    assert len(rows) == 1 and "conversation.created" in shown.texts[rows[0]]

    revealed = submit(client, "reveal-form", detail)
    assert Elements(revealed.text).attrs["hook-secret"]["value"] == card["value"]
    assert site.db.query("SELECT action FROM audit_logs WHERE action = 'webhook.secret_revealed'")

    again_form = [f for f in Page(page(client, detail)[2]).forms if (f["action"] or "").endswith("/redeliver")]
    assert len(again_form) == 1
    again = client.post(again_form[0]["action"], data={"csrf_token": again_form[0]["fields"]["csrf_token"]})
    assert "Delivery queued again." in Page(again.text).alerts
    wait_for(lambda: len(receiver.requests) == 2)

    edited = submit(client, "webhook-edit-form", detail, url=receiver.url + "/h2", description="CRM v2",
                    events=["message.created"])
    assert "Webhook saved." in Page(edited.text).alerts
    hook = client.get(f"/api/v1/webhooks/{hook_id}", headers=site.headers).json()
    assert (hook["url"], hook["events"], hook["enabled"]) == (receiver.url + "/h2", ["message.created"], False)

    assert page(client, detail)[1].attrs["webhook-delete-form"]["data-confirm"]
    deleted = submit(client, "webhook-delete-form", detail)
    assert "Webhook deleted." in Page(deleted.text).alerts and "webhooks-empty" in Page(deleted.text).texts


def test_roles_and_workspaces(site: Site) -> None:
    client = site.client
    hook = client.post("/api/v1/webhooks", json={"url": "https://hooks.example/x", "events": EVENTS[:1]},
                       headers=site.headers).json()
    for role in ("agent", "viewer"):
        user = add_user(client, "Acme", f"{role}@acme.example", role)
        console_login(client, user["email"])
        assert client.get(BASE).status_code == 403
        assert client.get(f"{BASE}/webhooks/{hook['id']}").status_code == 403
    admin = add_user(client, "Acme", "admin@acme.example", "admin")
    console_login(client, admin["email"])
    assert client.get(f"{BASE}/webhooks/{hook['id']}").status_code == 200
    other = add_user(client, "Globex", "owner@globex.example", "owner")
    console_login(client, other["email"])
    assert client.get(f"{BASE}/webhooks/{hook['id']}").status_code == 404
    token = page(client)[0].form("webhook-form")["fields"]["csrf_token"]
    assert client.post(f"{BASE}/webhooks/{hook['id']}/delete", data={"csrf_token": token}).status_code == 404
    assert client.get(f"/api/v1/webhooks/{hook['id']}", headers=site.headers).status_code == 200
