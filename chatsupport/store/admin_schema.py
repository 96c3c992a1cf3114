"""Schema of migration 12, the admin console part 2 and operations (issues 9 and 10), in parts applied together
in one transaction: team invitations, MFA, API keys, integrations (SMTP, Slack, webhooks), privacy and retention,
and operations. Shipped migrations are never edited: a change is the next number."""

from __future__ import annotations

from chatsupport.store.db import NOW  # noqa: F401  (parts use it in column defaults)

# Team: invitations (7-day links), agents' max concurrent conversations.
TEAM_SCHEMA = """
"""

# MFA: TOTP secrets (encrypted with the instance secret), recovery codes (hashed), workspace enforcement.
MFA_SCHEMA = """
"""

# API keys for the REST API: stored hashed, scoped.
API_KEYS_SCHEMA = """
"""

# Integrations: SMTP settings from the console, Slack incoming webhook, outgoing webhooks and their delivery log.
INTEGRATIONS_SCHEMA = """
"""

# Privacy: retention settings and what the daily retention job needs.
PRIVACY_SCHEMA = """
"""

# Operations: scheduled backups and whatever the operations side records.
OPERATIONS_SCHEMA = """
"""

ADMIN_SCHEMA = TEAM_SCHEMA + MFA_SCHEMA + API_KEYS_SCHEMA + INTEGRATIONS_SCHEMA + PRIVACY_SCHEMA + OPERATIONS_SCHEMA
