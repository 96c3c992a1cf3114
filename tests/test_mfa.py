"""Two-factor authentication through the API: RFC 6238 codes, enrolment, login with ``mfa_required`` then a code,
recovery codes spent once, turning it off with the password, throttling, workspace enforcement, storage at rest."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from litestar.testing import TestClient

from accounts_support import PASSWORD, account_settings, add_user, audit_rows, bearer, error_code, login, open_client
from chatsupport.domain import totp

RFC_SECRET = b"12345678901234567890"  # RFC 6238 appendix B, SHA-1


@pytest.mark.parametrize("moment, expected", [(59, "94287082"), (1111111109, "07081804"), (1111111111, "14050471"),
                                              (1234567890, "89005924"), (2000000000, "69279037"),
                                              (20000000000, "65353130")])
def test_rfc_6238_test_vectors(moment: int, expected: str) -> None:
    assert totp.code_at(RFC_SECRET, totp.step_of(moment), digits=8) == expected
    assert totp.code_at(RFC_SECRET, totp.step_of(moment)) == expected[-6:]  # 6 digits: the same value mod 10^6


def test_one_step_of_drift_either_way_and_never_the_same_step_twice() -> None:
    moment = 1_700_000_000.0
    step = totp.step_of(moment)
    for offset in (-1, 0, 1):
        assert totp.matching_step(RFC_SECRET, totp.code_at(RFC_SECRET, step + offset), 0, moment) == step + offset
    for offset in (-2, 2):
        assert totp.matching_step(RFC_SECRET, totp.code_at(RFC_SECRET, step + offset), 0, moment) is None
    current = totp.code_at(RFC_SECRET, step)
    assert totp.matching_step(RFC_SECRET, current, after_step=step, moment=moment) is None
    assert totp.matching_step(RFC_SECRET, "000000" if current != "000000" else "111111", 0, moment) is None


def test_secret_uri_and_recovery_codes_have_the_expected_shape() -> None:
    secret = totp.new_secret()
    assert len(secret) == 32 and len(totp.secret_bytes(secret)) == 20
    uri = totp.otpauth_uri(secret, "ann+x@acme.example")
    assert uri.startswith("otpauth://totp/ChatSupport:ann%2Bx%40acme.example?secret=" + secret)
    assert "digits=6" in uri and "period=30" in uri and "algorithm=SHA1" in uri
    assert totp.qr_data_uri(uri).startswith("data:image/svg+xml")
    codes = totp.new_recovery_codes()
    assert len(codes) == 10 == len(set(codes)) and all(len(c) == 11 and c[5] == "-" for c in codes)
    assert totp.recovery_hash("u", codes[0]) == totp.recovery_hash("u", codes[0].upper().replace("-", " "))
    assert totp.recovery_hash("u", codes[0]) != totp.recovery_hash("v", codes[0])


# --- through the API -------------------------------------------------------------------------------------------
def away_from_a_step_edge() -> None:
    """Codes are computed here and checked a moment later by the server: do not straddle a 30-second boundary."""
    if time.time() % totp.STEP_SECONDS > totp.STEP_SECONDS - 3:
        time.sleep(3.5)


def code(secret: str, offset: int = 0) -> str:
    return totp.code_at(totp.secret_bytes(secret), totp.step_of(time.time()) + offset)


def enrol(client: TestClient, tokens: dict[str, Any]) -> tuple[str, list[str]]:
    """Set up and confirm with the previous step's code, so the current and next steps remain for logins."""
    setup = client.post("/api/v1/auth/mfa/setup", headers=bearer(tokens))
    assert setup.status_code == 200, setup.text
    secret = setup.json()["secret"]
    assert setup.json()["qr_code"].startswith("data:image/svg+xml")
    away_from_a_step_edge()
    confirmed = client.post("/api/v1/auth/mfa/confirm", json={"code": code(secret, -1)}, headers=bearer(tokens))
    assert confirmed.status_code == 200, confirmed.text
    return secret, confirmed.json()["recovery_codes"]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with open_client(account_settings(tmp_path / "data")) as test_client:
        add_user(test_client, "Acme", "owner@acme.example", "owner")
        add_user(test_client, "Acme", "agent@acme.example", "agent")
        yield test_client


def api_login(client: TestClient, email: str, **extra: str) -> Any:
    return client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD, **extra})


def test_enrol_then_login_needs_the_code(client: TestClient) -> None:
    tokens = login(client, "owner@acme.example")
    assert client.get("/api/v1/auth/mfa", headers=bearer(tokens)).json()["enabled"] is False
    setup = client.post("/api/v1/auth/mfa/setup", headers=bearer(tokens)).json()
    wrong = client.post("/api/v1/auth/mfa/confirm", json={"code": "12345"}, headers=bearer(tokens))
    assert wrong.status_code == 422 and wrong.json()["error"]["details"][0]["field"] == "code"
    assert login(client, "owner@acme.example")  # not on until confirmed
    away_from_a_step_edge()
    codes = client.post("/api/v1/auth/mfa/confirm", json={"code": code(setup["secret"], -1)},
                        headers=bearer(tokens)).json()["recovery_codes"]
    assert len(codes) == 10
    state = client.get("/api/v1/auth/mfa", headers=bearer(tokens)).json()
    assert state["enabled"] is True and state["recovery_codes_left"] == 10 and state["setup_pending"] is False
    assert client.post("/api/v1/auth/mfa/setup", headers=bearer(tokens)).status_code == 409  # already on

    needs = api_login(client, "owner@acme.example")
    assert needs.status_code == 401 and error_code(needs) == "mfa_required" and "totp" in needs.json()["error"][
        "message"]
    assert error_code(api_login(client, "owner@acme.example", password="Wrong#123", totp="123456")) == \
        "invalid_credentials"  # the password is checked first
    bad = api_login(client, "owner@acme.example", totp="000000" if code(setup["secret"]) != "000000" else "111111")
    assert bad.status_code == 401 and error_code(bad) == "mfa_invalid"
    away_from_a_step_edge()
    current = code(setup["secret"])
    ok = api_login(client, "owner@acme.example", totp=current[:3] + " " + current[3:])  # as apps display it
    assert ok.status_code == 200 and ok.json()["user"]["email"] == "owner@acme.example"
    replay = api_login(client, "owner@acme.example", totp=current)
    assert replay.status_code == 401 and error_code(replay) == "mfa_invalid"  # used codes are spent
    assert any(r["metadata"] and "bad_code" in r["metadata"] for r in audit_rows(client, "user.login_failed"))
    assert len(audit_rows(client, "mfa.enabled")) == 1


def test_secret_and_recovery_codes_are_not_stored_in_clear(client: TestClient) -> None:
    secret, codes = enrol(client, login(client, "owner@acme.example"))
    db = client.app.state.services.db
    row = db.query_one("SELECT * FROM user_mfa")
    assert secret.encode() not in row["secret_encrypted"] and totp.secret_bytes(secret) not in row["secret_encrypted"]
    stored = {r["code_hash"] for r in db.query("SELECT code_hash FROM mfa_recovery_codes")}
    assert len(stored) == 10 and not any(c in h or c.replace("-", "") in h for c in codes for h in stored)
    # another instance secret cannot read it: the code check fails rather than crashing
    row_copy = {**row}
    assert totp.unseal("another-instance-secret", row_copy) is None


def test_a_recovery_code_works_once_and_new_ones_replace_the_old(client: TestClient) -> None:
    tokens = login(client, "owner@acme.example")
    _, codes = enrol(client, tokens)
    ok = api_login(client, "owner@acme.example", totp=codes[0].upper())
    assert ok.status_code == 200
    again = api_login(client, "owner@acme.example", totp=codes[0])
    assert again.status_code == 401 and error_code(again) == "mfa_invalid"
    used = audit_rows(client, "mfa.recovery_code_used")
    assert len(used) == 1 and '"codes_left": 9' in used[0]["metadata"]
    assert client.get("/api/v1/auth/mfa", headers=bearer(tokens)).json()["recovery_codes_left"] == 9

    wrong = client.post("/api/v1/auth/mfa/recovery-codes", json={"password": "Wrong#123"}, headers=bearer(tokens))
    assert wrong.status_code == 403 and error_code(wrong) == "wrong_password"
    fresh = client.post("/api/v1/auth/mfa/recovery-codes", json={"password": PASSWORD}, headers=bearer(tokens))
    assert fresh.status_code == 200 and len(fresh.json()["recovery_codes"]) == 10
    assert error_code(api_login(client, "owner@acme.example", totp=codes[1])) == "mfa_invalid"
    assert api_login(client, "owner@acme.example", totp=fresh.json()["recovery_codes"][0]).status_code == 200
    assert len(audit_rows(client, "mfa.recovery_codes_regenerated")) == 1


def test_turning_it_off_needs_the_password(client: TestClient) -> None:
    tokens = login(client, "owner@acme.example")
    enrol(client, tokens)
    wrong = client.post("/api/v1/auth/mfa/disable", json={"password": "Wrong#123"}, headers=bearer(tokens))
    assert wrong.status_code == 403 and error_code(wrong) == "wrong_password"
    assert error_code(api_login(client, "owner@acme.example")) == "mfa_required"
    off = client.post("/api/v1/auth/mfa/disable", json={"password": PASSWORD}, headers=bearer(tokens))
    assert off.status_code == 200
    assert api_login(client, "owner@acme.example").status_code == 200
    assert len(audit_rows(client, "mfa.disabled")) == 1
    assert client.app.state.services.db.query_one("SELECT count(*) AS n FROM mfa_recovery_codes")["n"] == 0
    again = client.post("/api/v1/auth/mfa/disable", json={"password": PASSWORD}, headers=bearer(tokens))
    assert again.status_code == 409


def test_wrong_codes_are_throttled(client: TestClient) -> None:
    secret, _ = enrol(client, login(client, "owner@acme.example"))
    wrong = "000000" if code(secret) != "000000" else "111111"
    for _ in range(5):
        assert error_code(api_login(client, "owner@acme.example", totp=wrong)) == "mfa_invalid"
    limited = api_login(client, "owner@acme.example", totp=code(secret))
    assert limited.status_code == 429 and error_code(limited) == "too_many_attempts"


def test_workspace_enforcement(client: TestClient) -> None:
    owner, agent = login(client, "owner@acme.example"), login(client, "agent@acme.example")
    assert client.put("/api/v1/workspace/security", json={"require_mfa": True},
                      headers=bearer(agent)).status_code == 403
    early = client.put("/api/v1/workspace/security", json={"require_mfa": True}, headers=bearer(owner))
    assert early.status_code == 409 and "your own account" in early.json()["error"]["message"]
    enrol(client, owner)
    on = client.put("/api/v1/workspace/security", json={"require_mfa": True}, headers=bearer(owner))
    assert on.status_code == 200 and on.json() == {"require_mfa": True}
    assert client.get("/api/v1/workspace/security", headers=bearer(owner)).json() == {"require_mfa": True}
    assert len(audit_rows(client, "workspace.security_updated")) == 1

    refused = api_login(client, "agent@acme.example")
    assert refused.status_code == 403 and error_code(refused) == "mfa_enrollment_required"
    assert "console" in refused.json()["error"]["message"]
    assert client.get("/api/v1/auth/mfa", headers=bearer(agent)).json()["required_by_workspace"] is True
    # the agent's existing session can enrol; then the code works at login
    secret, _ = enrol(client, agent)
    away_from_a_step_edge()
    assert api_login(client, "agent@acme.example", totp=code(secret)).status_code == 200
    # under enforcement nobody turns it off for themselves
    blocked = client.post("/api/v1/auth/mfa/disable", json={"password": PASSWORD}, headers=bearer(owner))
    assert blocked.status_code == 409 and "requires" in blocked.json()["error"]["message"]
    off = client.put("/api/v1/workspace/security", json={"require_mfa": False}, headers=bearer(owner))
    assert off.status_code == 200
    assert client.post("/api/v1/auth/mfa/disable", json={"password": PASSWORD}, headers=bearer(owner)).status_code \
        == 200


def test_another_workspace_is_not_affected(client: TestClient) -> None:
    add_user(client, "Other", "boss@other.example", "owner")
    owner = login(client, "owner@acme.example")
    enrol(client, owner)
    assert client.put("/api/v1/workspace/security", json={"require_mfa": True},
                      headers=bearer(owner)).status_code == 200
    assert api_login(client, "boss@other.example").status_code == 200


def test_an_api_key_cannot_enrol_its_creator(client: TestClient) -> None:
    owner = login(client, "owner@acme.example")
    created = client.post("/api/v1/api-keys", json={"name": "CI", "scopes": ["admin"]}, headers=bearer(owner))
    assert created.status_code == 201, created.text
    key = bearer(created.json()["key"])
    refused = client.post("/api/v1/auth/mfa/setup", headers=key)
    assert refused.status_code == 403 and "API key" in refused.json()["error"]["message"]
    assert client.get("/api/v1/auth/mfa", headers=key).json()["enabled"] is False
    assert client.app.state.services.db.query_one("SELECT count(*) AS n FROM user_mfa")["n"] == 0
