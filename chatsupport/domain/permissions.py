"""Who may do what: the PRD §5.1.2 permission matrix, the one place roles are decided.

Adapted for a self-hosted appliance: "Manage Billing" became ``instance.settings``; "API Access" means managing
API keys; exporting one conversation's transcript is part of an agent's job, bulk export is not. Rows the PRD
does not list (viewing chatbots and the team, reading the audit log, seeing a bot's identity secret) are marked.
"""

from __future__ import annotations

ROLES = ("owner", "admin", "agent", "viewer")

OWNER, ADMIN, AGENT, VIEWER = ROLES
EVERYONE = frozenset(ROLES)
MANAGERS = frozenset({OWNER, ADMIN})
STAFF = frozenset({OWNER, ADMIN, AGENT})

MATRIX: dict[str, frozenset[str]] = {
    "instance.settings": frozenset({OWNER}),          # PRD: Manage Billing
    "chatbot.create": MANAGERS,                       # PRD: Create/Delete Chatbots
    "chatbot.delete": MANAGERS,
    "chatbot.update": STAFF,                          # PRD: Edit Chatbot Settings
    "chatbot.view": EVERYONE,                         # not in the PRD: everyone sees which bots exist
    "chatbot.secrets": MANAGERS,                      # not in the PRD: the identity secret signs visitor ids
    "team.manage": MANAGERS,                          # PRD: Invite/Remove Team
    "team.view": EVERYONE,                            # not in the PRD: agents are shown by name
    "conversation.view": EVERYONE,                    # PRD: View Conversations
    "conversation.respond": STAFF,                    # PRD: Respond to Conversations
    "conversation.assign": MANAGERS,                  # not in the PRD: hand a conversation to someone else
    "knowledge.upload": STAFF,                        # PRD: Upload Knowledge Base
    "knowledge.view": EVERYONE,
    "analytics.view": EVERYONE,                       # PRD: View Analytics
    "export.bulk": MANAGERS,                          # PRD: Export Data
    "export.transcript": STAFF,                       # a single conversation's transcript
    "api_key.manage": MANAGERS,                       # PRD: API Access
    "workspace.settings": MANAGERS,                   # PRD: Admin manages "settings"
    "audit.view": MANAGERS,                           # issue: audit log is owner/admin only
    "integrations.manage": MANAGERS,                  # SMTP, Slack, outgoing webhooks and their delivery log
    "privacy.manage": MANAGERS,                       # customer export/erasure, retention, workspace export
    "metrics.view": MANAGERS,                         # /metrics from off the box (loopback needs no token)
}

# Routes that need a signed-in user but no particular permission (own profile, own sessions).
AUTHENTICATED = "authenticated"


def allowed(role: str, permission: str) -> bool:
    if permission == AUTHENTICATED:
        return role in ROLES
    if permission not in MATRIX:
        raise KeyError(f"unknown permission {permission!r}: add it to chatsupport.domain.permissions.MATRIX")
    return role in MATRIX[permission]


def permissions_for(role: str) -> list[str]:
    return sorted(name for name, roles in MATRIX.items() if role in roles)
