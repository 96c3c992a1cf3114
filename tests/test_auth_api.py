"""/api/v1/auth/* end to end over HTTP: tokens, rotation and family revocation, throttling, the session cap,
forged and expired tokens, password and email flows, open sign-up."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from itertools import count
from pathlib import Path
from typing import Any, Iterator

import pytest
from litestar.testing import TestClient

from accounts_support import PASSWORD, account_settings, add_user, audit_rows, bearer, error_code, login, open_client
from chatsupport.domain import accounts

_n = count()


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with open_client(account_settings(tmp_path_factory.mktemp("auth") / "data")) as test_client:
        yield test_client


@pytest.fixture
def user(client: TestClient) -> dict[str, Any]:
    """A fresh owner in a fresh workspace, so tests do not share sessions or throttling."""
    n = next(_n)
    return add_user(client, f"Auth WS {n}", f"user{n}@auth.example", "owner", name=f"User {n}")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def forge(claims: dict[str, Any], key: str | None, alg: str = "HS256") -> str:
    """A JWT built here, independently of the code under test."""
    head = _b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = _b64(json.dumps(claims).encode())
    if key is None:
        return f"{head}.{body}."
    sig = hmac.new(key.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(sig)}"


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_login_returns_the_prd_token_structure(client: TestClient, user: dict[str, Any]) -> None:
    response = client.post("/api/v1/auth/login", json={"email": user["email"].upper(), "password": PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "refresh_token", "expires_in", "token_type", "user"}
    assert body["expires_in"] == 900 and body["token_type"] == "Bearer"
    assert body["user"]["id"] == user["id"] and body["user"]["workspace_id"] == user["workspace_id"]
    assert body["user"]["role"] == "owner" and body["user"]["email"] == user["email"]
    claims = claims_of(body["access_token"])
    assert claims["exp"] - claims["iat"] == 900 and claims["workspace_id"] == user["workspace_id"]
    assert "chatbot.create" in claims["permissions"]
    cookie = response.headers["set-cookie"]
    assert "cs_refresh=" in cookie and "HttpOnly" in cookie and "Path=/api/v1/auth" in cookie
    me = client.get("/api/v1/auth/me", headers=bearer(body))
    assert me.status_code == 200
    assert me.json()["user"]["display_name"] == user["display_name"]
    assert me.json()["workspace"]["name"].startswith("Auth WS")
    assert audit_rows(client, "user.login")[-1]["user_id"] == user["id"]


def test_wrong_password_and_unknown_email_are_the_same_401(client: TestClient, user: dict[str, Any]) -> None:
    wrong = client.post("/api/v1/auth/login", json={"email": user["email"], "password": "Nope#1234"})
    unknown = client.post("/api/v1/auth/login", json={"email": "ghost@auth.example", "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 401
    assert error_code(wrong) == error_code(unknown) == "invalid_credentials"
    failed = [row for row in audit_rows(client, "user.login_failed") if row["user_email"] == user["email"]]
    assert failed and failed[-1]["workspace_id"] == user["workspace_id"]


def test_login_is_throttled_after_five_failures_per_ip_and_email(client: TestClient, user: dict[str, Any]) -> None:
    for _ in range(5):
        response = client.post("/api/v1/auth/login", json={"email": user["email"], "password": "Wrong#999"})
        assert response.status_code == 401
    blocked = client.post("/api/v1/auth/login", json={"email": user["email"], "password": PASSWORD})
    assert blocked.status_code == 429 and error_code(blocked) == "too_many_attempts"
    assert 0 < int(blocked.headers["retry-after"]) <= 900
    # another email from the same client is not affected
    other = add_user(client, "Throttle other", f"other{next(_n)}@auth.example", "agent")
    assert client.post("/api/v1/auth/login", json={"email": other["email"], "password": PASSWORD}).status_code == 200


def test_missing_and_malformed_bodies(client: TestClient) -> None:
    assert error_code(client.post("/api/v1/auth/login", json={"email": "a@b.c"})) == "validation_error"
    bad = client.post("/api/v1/auth/login", content=b"{nope", headers={"content-type": "application/json"})
    assert bad.status_code == 400 and error_code(bad) == "malformed_json"
    huge = client.post("/api/v1/auth/login", json={"email": "a" * 400 + "@b.c", "password": "x"})
    assert huge.status_code == 422


def test_refresh_rotates_and_reuse_revokes_the_family(client: TestClient, user: dict[str, Any]) -> None:
    first = login(client, user["email"])
    second = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    second = second.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert client.get("/api/v1/auth/me", headers=bearer(second)).status_code == 200
    # the rotated token comes back: someone holds a copy, so the whole family dies
    reused = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reused.status_code == 401 and error_code(reused) == "invalid_token"
    assert client.post("/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]}).status_code == 401
    assert client.get("/api/v1/auth/me", headers=bearer(second)).status_code == 401
    assert any(row["user_id"] == user["id"] for row in audit_rows(client, "session.reuse_detected"))


def test_refresh_from_the_http_only_cookie(client: TestClient, user: dict[str, Any]) -> None:
    client.cookies.clear()
    login(client, user["email"])
    response = client.post("/api/v1/auth/refresh")
    assert response.status_code == 200
    assert client.get("/api/v1/auth/me", headers=bearer(response.json())).status_code == 200
    client.cookies.clear()
    assert error_code(client.post("/api/v1/auth/refresh")) == "invalid_token"
    assert error_code(client.post("/api/v1/auth/refresh", json={"refresh_token": "made-up"})) == "invalid_token"


def test_logout_ends_access_and_refresh_tokens(client: TestClient, user: dict[str, Any]) -> None:
    tokens = login(client, user["email"])
    response = client.post("/api/v1/auth/logout", headers=bearer(tokens))
    assert response.status_code == 200
    assert client.get("/api/v1/auth/me", headers=bearer(tokens)).status_code == 401
    assert client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}).status_code == 401
    assert any(row["user_id"] == user["id"] for row in audit_rows(client, "user.logout"))
    # by refresh token alone (an expired access token cannot be presented)
    other = login(client, user["email"])
    client.cookies.clear()
    assert client.post("/api/v1/auth/logout", json={"refresh_token": other["refresh_token"]}).status_code == 200
    assert client.get("/api/v1/auth/me", headers=bearer(other)).status_code == 401


def test_at_most_five_sessions_the_oldest_is_revoked(client: TestClient, user: dict[str, Any]) -> None:
    sessions = [login(client, user["email"]) for _ in range(6)]
    assert client.get("/api/v1/auth/me", headers=bearer(sessions[0])).status_code == 401
    refused = client.post("/api/v1/auth/refresh", json={"refresh_token": sessions[0]["refresh_token"]})
    assert refused.status_code == 401
    for tokens in sessions[1:]:
        assert client.get("/api/v1/auth/me", headers=bearer(tokens)).status_code == 200
    live = client.app.state.services.db.query_one(
        "SELECT count(DISTINCT family_id) AS n FROM refresh_tokens WHERE user_id = ? AND revoked_at IS NULL",
        (user["id"],))
    assert live["n"] == 5


def test_forged_and_expired_access_tokens_are_refused(client: TestClient, user: dict[str, Any]) -> None:
    tokens = login(client, user["email"])
    claims = claims_of(tokens["access_token"])
    secret = client.app.state.services.secret_key
    cases = {
        "alg none": forge({**claims, "role": "owner"}, None, alg="none"),
        "wrong key": forge(claims, "not-the-instance-secret"),
        "expired": forge({**claims, "iat": int(time.time()) - 4000, "exp": int(time.time()) - 3000}, secret),
        "tampered": tokens["access_token"][:-4] + ("AAAA" if not tokens["access_token"].endswith("AAAA") else "BBBB"),
        "garbage": "not.a.jwt",
        "other audience": forge({**claims, "aud": "someone-else"}, secret),
    }
    for name, token in cases.items():
        response = client.get("/api/v1/auth/me", headers=bearer(token))
        assert response.status_code == 401, name
        assert error_code(response) == "invalid_token", name
    assert client.get("/api/v1/auth/me", headers=bearer(forge(claims, secret))).status_code == 200
    assert error_code(client.get("/api/v1/auth/me", headers={"Authorization": "Basic abc"})) == "unauthorized"
    client.cookies.clear()
    assert error_code(client.get("/api/v1/auth/me")) == "unauthorized"


def test_change_password_revokes_every_session(client: TestClient, user: dict[str, Any]) -> None:
    other_device = login(client, user["email"])
    tokens = login(client, user["email"])
    wrong = client.post("/api/v1/auth/change-password", headers=bearer(tokens),
                        json={"current_password": "Wrong#123", "new_password": "Better#456"})
    assert wrong.status_code == 403 and error_code(wrong) == "wrong_password"
    weak = client.post("/api/v1/auth/change-password", headers=bearer(tokens),
                       json={"current_password": PASSWORD, "new_password": "weakpass"})
    assert weak.status_code == 422 and weak.json()["error"]["details"][0]["field"] == "new_password"
    changed = client.post("/api/v1/auth/change-password", headers=bearer(tokens),
                          json={"current_password": PASSWORD, "new_password": "Better#456"})
    assert changed.status_code == 200
    assert client.get("/api/v1/auth/me", headers=bearer(other_device)).status_code == 401
    assert client.get("/api/v1/auth/me", headers=bearer(tokens)).status_code == 401
    assert client.get("/api/v1/auth/me", headers=bearer(changed.json())).status_code == 200
    assert client.post("/api/v1/auth/login", json={"email": user["email"], "password": PASSWORD}).status_code == 401
    login(client, user["email"], "Better#456")
    assert any(row["user_id"] == user["id"] for row in audit_rows(client, "user.password_changed"))


def test_forgot_and_reset_password(client: TestClient, user: dict[str, Any]) -> None:
    session = login(client, user["email"])
    for email in (user["email"], "nobody@auth.example"):
        response = client.post("/api/v1/auth/forgot-password", json={"email": email})
        assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert any(row["user_id"] == user["id"] for row in audit_rows(client, "user.password_reset_requested"))
    # without SMTP an owner or admin hands the link over
    link = client.post(f"/api/v1/users/{user['id']}/reset-link", headers=bearer(session))
    assert link.status_code == 201
    token = link.json()["url"].split("token=", 1)[1]
    assert link.json()["url"].startswith("http://127.0.0.1:")
    weak = client.post("/api/v1/auth/reset-password", json={"token": token, "password": "short"})
    assert weak.status_code == 422
    done = client.post("/api/v1/auth/reset-password", json={"token": token, "password": "Reset#7890"})
    assert done.status_code == 200
    again = client.post("/api/v1/auth/reset-password", json={"token": token, "password": "Again#7890"})
    assert again.status_code == 401 and error_code(again) == "invalid_token"
    assert client.get("/api/v1/auth/me", headers=bearer(session)).status_code == 401
    login(client, user["email"], "Reset#7890")
    bogus = client.post("/api/v1/auth/reset-password", json={"token": "bogus", "password": "Reset#7890"})
    assert error_code(bogus) == "invalid_token"


def test_forgot_password_is_rate_limited_per_email(client: TestClient) -> None:
    email = f"flood{next(_n)}@auth.example"
    codes = [client.post("/api/v1/auth/forgot-password", json={"email": email}).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]


def test_expired_reset_link_is_refused(client: TestClient, user: dict[str, Any]) -> None:
    services = client.app.state.services
    link = accounts.issue_link(services, user["email"], "reset_password")
    services.db.execute_write("UPDATE user_tokens SET expires_at = '2000-01-01T00:00:00.000Z' WHERE user_id = ?",
                              (user["id"],))
    token = link["url"].split("token=", 1)[1]
    response = client.post("/api/v1/auth/reset-password", json={"token": token, "password": "Reset#7890"})
    assert response.status_code == 401
    login(client, user["email"])  # old password still works


def test_register_is_closed_unless_open_signup(client: TestClient) -> None:
    for body in (b"not json at all", b"{}", json.dumps({"email": "x@y.z", "password": PASSWORD,
                                                        "workspace_name": "X"}).encode()):
        response = client.post("/api/v1/auth/register", content=body, headers={"content-type": "application/json"})
        assert response.status_code == 403 and error_code(response) == "signup_closed"
    assert client.app.state.services.db.query_one("SELECT count(*) AS n FROM users WHERE email = 'x@y.z'")["n"] == 0


def test_open_signup_register_and_verify_email(tmp_path: Path) -> None:
    with open_client(account_settings(tmp_path / "data", OPEN_SIGNUP="true")) as client:
        bad = client.post("/api/v1/auth/register", json={"email": "new@open.example", "password": "weak",
                                                         "workspace_name": "Open Co"})
        assert bad.status_code == 422
        response = client.post("/api/v1/auth/register", json={"email": "new@open.example", "password": PASSWORD,
                                                              "workspace_name": "Open Co", "display_name": "Nia"})
        assert response.status_code == 201
        body = response.json()
        assert body["user"]["role"] == "owner" and body["user"]["email_verified"] is False
        me = client.get("/api/v1/auth/me", headers=bearer(body)).json()
        assert me["workspace"]["name"] == "Open Co" and me["user"]["display_name"] == "Nia"
        dup = client.post("/api/v1/auth/register", json={"email": "NEW@open.example", "password": PASSWORD,
                                                         "workspace_name": "Second"})
        assert dup.status_code == 409 and error_code(dup) == "already_exists"
        # unverified email does not block login on-prem
        login(client, "new@open.example")
        link = accounts.issue_link(client.app.state.services, "new@open.example", "verify_email")
        token = link["url"].split("token=", 1)[1]
        assert link["url"].split("?")[0].endswith("/verify-email")
        verified = client.post("/api/v1/auth/verify-email", json={"token": token})
        assert verified.status_code == 200 and verified.json()["email_verified"] is True
        assert error_code(client.post("/api/v1/auth/verify-email", json={"token": token})) == "invalid_token"


def test_deactivation_ends_every_session(client: TestClient, user: dict[str, Any]) -> None:
    owner = login(client, user["email"])
    agent = add_user(client, f"Auth WS {next(_n)}", f"agent{next(_n)}@auth.example", "agent")
    client.app.state.services.db.execute_write("UPDATE users SET workspace_id = ? WHERE id = ?",
                                               (user["workspace_id"], agent["id"]))
    agent_tokens = login(client, agent["email"])
    response = client.patch(f"/api/v1/users/{agent['id']}", headers=bearer(owner), json={"status": "inactive"})
    assert response.status_code == 200 and response.json()["status"] == "inactive"
    assert client.get("/api/v1/auth/me", headers=bearer(agent_tokens)).status_code == 401
    assert client.post("/api/v1/auth/refresh", json={"refresh_token": agent_tokens["refresh_token"]}).status_code == 401
    assert client.post("/api/v1/auth/login", json={"email": agent["email"], "password": PASSWORD}).status_code == 401
    role = client.patch(f"/api/v1/users/{agent['id']}", headers=bearer(owner), json={"role": "admin"})
    assert role.json()["role"] == "admin"
    assert [row["resource_id"] for row in audit_rows(client, "user.role_changed")][-1] == agent["id"]
    own = client.patch(f"/api/v1/users/{user['id']}", headers=bearer(owner), json={"role": "viewer"})
    assert own.status_code == 409
