"""create-admin, create-user and reset-link through the real entry point, then used over HTTP."""

from __future__ import annotations

from pathlib import Path

from accounts_support import PASSWORD, account_settings, bearer, login, open_client
from conftest import run_cli

FAST = {"ARGON2_MEMORY_KIB": "1024"}


def test_create_admin_create_user_and_reset_link(data_dir: Path) -> None:
    made = run_cli(data_dir, "create-admin", "--email", "Root@Corp.example", "--password", PASSWORD,
                   "--workspace", "Corp", "--name", "Rita Root", **FAST)
    assert made.returncode == 0, made.stderr
    assert "created owner root@corp.example" in made.stdout and "new workspace" in made.stdout
    agent = run_cli(data_dir, "create-user", "--workspace", "Corp", "--email", "agent@corp.example", "--role",
                    "agent", "--password-stdin", input=PASSWORD + "\n", **FAST)
    assert agent.returncode == 0, agent.stderr
    assert "created agent agent@corp.example" in agent.stdout and "new workspace" not in agent.stdout
    other = run_cli(data_dir, "create-user", "--workspace", "Elsewhere", "--email", "v@else.example", "--role",
                    "viewer", "--password", PASSWORD, **FAST)
    assert other.returncode == 0 and "new workspace" in other.stdout

    dup = run_cli(data_dir, "create-user", "--workspace", "Corp", "--email", "AGENT@corp.example", "--role",
                  "admin", "--password", PASSWORD, **FAST)
    assert dup.returncode == 1 and "error [already_exists]" in dup.stderr
    weak = run_cli(data_dir, "create-user", "--workspace", "Corp", "--email", "weak@corp.example", "--role",
                   "admin", "--password", "password", **FAST)
    assert weak.returncode == 1 and "error [validation_error]" in weak.stderr and "uppercase" in weak.stderr
    bad_role = run_cli(data_dir, "create-user", "--workspace", "Corp", "--email", "x@corp.example", "--role",
                       "superuser", "--password", PASSWORD, **FAST)
    assert bad_role.returncode == 2
    no_password = run_cli(data_dir, "create-admin", "--workspace", "Corp", "--email", "y@corp.example", **FAST)
    assert no_password.returncode == 2

    link = run_cli(data_dir, "reset-link", "--email", "agent@corp.example", **FAST)
    assert link.returncode == 0, link.stderr
    url = link.stdout.strip()
    assert url.startswith("http://127.0.0.1:8000/reset-password?token=")
    missing = run_cli(data_dir, "reset-link", "--email", "ghost@corp.example", **FAST)
    assert missing.returncode == 1 and "error [not_found]" in missing.stderr

    with open_client(account_settings(data_dir)) as client:
        owner = login(client, "root@corp.example")
        assert owner["user"]["role"] == "owner"
        me = client.get("/api/v1/auth/me", headers=bearer(owner)).json()
        assert me["user"]["display_name"] == "Rita Root" and me["workspace"]["name"] == "Corp"
        team = client.get("/api/v1/users", headers=bearer(owner)).json()["data"]
        assert sorted(u["email"] for u in team) == ["agent@corp.example", "root@corp.example"]
        token = url.split("token=", 1)[1]
        assert client.post("/api/v1/auth/reset-password",
                           json={"token": token, "password": "Reset#1234"}).status_code == 200
        assert login(client, "agent@corp.example", "Reset#1234")["user"]["role"] == "agent"
        actions = [row["action"] for row in client.app.state.services.db.query(
            "SELECT action FROM audit_logs WHERE user_agent = 'chatsupport-cli' ORDER BY created_at")]
        assert actions.count("user.created") == 3 and "user.reset_password_link_issued" in actions
