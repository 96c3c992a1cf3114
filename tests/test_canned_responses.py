"""Canned responses through the real app: create, list with prefix search, update, delete, unique shortcuts per
workspace, validation, roles, 404 before the body, audit rows."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import TestClient

from accounts_support import audit_rows, error_code
from conversation_support import Team, client, team  # noqa: F401 - shared fixtures

URL = "/api/v1/canned-responses"


def create(team: Team, headers: dict[str, str] | None = None, **body: Any) -> Any:
    return team.client.post(URL, headers=headers or team.agent_h, json=body)


def listed(team: Team, **params: Any) -> list[str]:
    response = team.client.get(URL, headers=team.viewer_h, params=params)
    assert response.status_code == 200, response.text
    return [c["shortcut"] for c in response.json()["data"]]


def test_crud(team: Team) -> None:
    made = create(team, shortcut="/refund-policy", title="Refund policy",
                  content="Refunds are issued within **14 days** to the original payment method.")
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["shortcut"] == "refund-policy" and body["title"] == "Refund policy"
    assert body["created_by"] == team.agent["id"] and body["created_at"] == body["updated_at"]
    canned_id = body["id"]
    assert create(team, shortcut="greeting", title="Hello", content="Hi! How can I help?").status_code == 201
    assert create(team, shortcut="2fa", title="Two-factor help", content="Open Settings > Security.").status_code \
        == 201
    assert listed(team) == ["2fa", "greeting", "refund-policy"]

    changed = team.client.patch(f"{URL}/{canned_id}", headers=team.other_h,
                                json={"title": "Refunds", "content": "Within 14 days."})
    assert changed.status_code == 200, changed.text
    assert changed.json()["title"] == "Refunds" and changed.json()["content"] == "Within 14 days."
    assert changed.json()["shortcut"] == "refund-policy" and changed.json()["updated_at"] >= body["updated_at"]
    renamed = team.client.patch(f"{URL}/{canned_id}", headers=team.agent_h, json={"shortcut": "refunds"})
    assert renamed.json()["shortcut"] == "refunds"
    same = team.client.patch(f"{URL}/{canned_id}", headers=team.agent_h, json={"shortcut": "REFUNDS"})
    assert same.status_code == 200                              # its own shortcut, in another case, is fine

    deleted = team.client.delete(f"{URL}/{canned_id}", headers=team.agent_h)
    assert deleted.status_code == 204
    assert listed(team) == ["2fa", "greeting"]
    assert team.client.delete(f"{URL}/{canned_id}", headers=team.agent_h).status_code == 404
    assert [len(audit_rows(team.client, f"canned_response.{verb}")) for verb in ("created", "updated", "deleted")] \
        == [3, 3, 1]
    updated = audit_rows(team.client, "canned_response.updated")[0]
    assert "Within 14 days" not in updated["changes"]            # the audit says a reply changed, not its words


def test_shortcuts_are_unique_per_workspace_ignoring_case(client: TestClient, team: Team) -> None:
    assert create(team, shortcut="thanks", title="Thanks", content="Thank you!").status_code == 201
    taken = create(team, shortcut="/THANKS", title="Again", content="Thanks again")
    assert taken.status_code == 409 and error_code(taken) == "already_exists"
    assert taken.json()["error"]["details"][0]["field"] == "shortcut"
    other = create(team, shortcut="bye", title="Bye", content="Bye!").json()
    clash = team.client.patch(f"{URL}/{other['id']}", headers=team.agent_h, json={"shortcut": "Thanks"})
    assert clash.status_code == 409 and error_code(clash) == "already_exists"
    rival = Team(client, "Rival")
    assert create(rival, shortcut="thanks", title="Thanks", content="Merci").status_code == 201
    assert [c["content"] for c in client.get(URL, headers=rival.viewer_h).json()["data"]] == ["Merci"]


def test_prefix_search_on_shortcut_or_title(team: Team) -> None:
    for shortcut, title in (("refund", "Money back"), ("ref-code", "Referral code"), ("shipping", "Refund of "
                                                                                                   "shipping"),
                            ("hello_world", "Greeting"), ("100pct", "Discount")):
        assert create(team, shortcut=shortcut, title=title, content="x").status_code == 201
    assert listed(team, q="ref") == ["ref-code", "refund", "shipping"]     # "Refund of shipping" by its title
    assert listed(team, q="/REF") == ["ref-code", "refund", "shipping"]
    assert listed(team, q="money") == ["refund"]
    assert listed(team, q="hello_") == ["hello_world"] and listed(team, q="hello%") == []
    assert listed(team, q="_") == [] and listed(team, q="%") == []         # LIKE wildcards are literal
    assert listed(team, q="1") == ["100pct"]
    assert len(listed(team, limit=2)) == 2


@pytest.mark.parametrize(("body", "field"), [
    ({"shortcut": "two words", "title": "t", "content": "c"}, "shortcut"),
    ({"shortcut": "/", "title": "t", "content": "c"}, "shortcut"),
    ({"shortcut": "-dash", "title": "t", "content": "c"}, "shortcut"),
    ({"shortcut": "ok", "title": "   ", "content": "c"}, "title"),
    ({"shortcut": "ok", "title": "t", "content": " \n "}, "content"),
])
def test_invalid_fields_are_422(team: Team, body: dict[str, str], field: str) -> None:
    response = create(team, **body)
    assert response.status_code == 422 and error_code(response) == "validation_error", response.text
    assert response.json()["error"]["details"][0]["field"] == field


def test_length_limits(team: Team) -> None:
    assert create(team, shortcut="s" * 51, title="t", content="c").status_code in (400, 422)
    assert create(team, shortcut="long", title="t" * 101, content="c").status_code in (400, 422)
    assert create(team, shortcut="long", title="t", content="c" * 4001).status_code in (400, 422)
    assert create(team, shortcut="long", title="t", content="c" * 4000).status_code == 201
    canned_id = listed_ids(team)[0]
    empty = team.client.patch(f"{URL}/{canned_id}", headers=team.agent_h, json={"content": "  "})
    assert empty.status_code == 422
    unknown = team.client.patch(f"{URL}/{canned_id}", headers=team.agent_h, json={"colour": "red"})
    assert unknown.status_code in (400, 422)


def listed_ids(team: Team) -> list[str]:
    return [c["id"] for c in team.client.get(URL, headers=team.agent_h).json()["data"]]


def test_roles_and_404_before_the_body(client: TestClient, team: Team) -> None:
    canned_id = create(team, shortcut="hi", title="Hi", content="Hello").json()["id"]
    assert client.get(URL, headers=team.viewer_h).status_code == 200
    assert create(team, team.viewer_h, shortcut="v", title="v", content="v").status_code == 403
    assert client.patch(f"{URL}/{canned_id}", headers=team.viewer_h, json={"title": "x"}).status_code == 403
    assert client.delete(f"{URL}/{canned_id}", headers=team.viewer_h).status_code == 403
    assert client.delete(f"{URL}/missing", headers=team.viewer_h).status_code == 403   # the role check first
    assert client.get(URL).status_code == 401
    rival = Team(client, "Rival")
    for target, headers in (("missing", team.agent_h), (canned_id, rival.owner_h)):
        for kwargs in ({"json": {"title": ""}}, {"content": b"{not json"}):
            response = client.patch(f"{URL}/{target}", headers=headers, **kwargs)
            assert response.status_code == 404 and error_code(response) == "not_found", response.text
        assert client.delete(f"{URL}/{target}", headers=headers).status_code == 404
    assert listed(team) == ["hi"]
