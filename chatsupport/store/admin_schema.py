"""Schema of migration 12, the admin console part 2 and operations (issues 9 and 10), in parts applied together
in one transaction: team invitations, MFA, API keys, integrations (SMTP, Slack, webhooks), privacy and retention,
and operations. Shipped migrations are never edited: a change is the next number."""

from __future__ import annotations

from chatsupport.store.db import NOW  # noqa: F401  (parts use it in column defaults)

# Team: invitations live in migration 1's ``invitations`` table (7-day links, single use, only the token's SHA-256
# stored); the team pages also record whether the link was mailed and who accepted it. An agent's max concurrent
# conversations is the users.max_concurrent_conversations column the first migration already has.
TEAM_SCHEMA = """
ALTER TABLE invitations ADD COLUMN mailed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE invitations ADD COLUMN accepted_user_id TEXT REFERENCES users(id) ON DELETE SET NULL;
CREATE INDEX idx_invitations_workspace_created ON invitations(workspace_id, created_at);
"""

# MFA: TOTP secrets (encrypted with the instance secret), recovery codes (hashed), workspace enforcement. A
# user_mfa row with confirmed_at NULL is an enrolment not yet confirmed with a code; last_step is the newest time
# step accepted, so a code is never accepted twice. The unused users.mfa_* columns of migration 1 go: one truth.
MFA_SCHEMA = f"""
CREATE TABLE user_mfa (
  user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
  workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  secret_encrypted BLOB NOT NULL,
  confirmed_at TEXT,
  last_step INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL DEFAULT {NOW}
);
CREATE INDEX idx_user_mfa_workspace ON user_mfa(workspace_id);
CREATE TABLE mfa_recovery_codes (
  id INTEGER PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  code_hash TEXT NOT NULL,
  used_at TEXT,
  created_at TEXT NOT NULL DEFAULT {NOW}
);
CREATE INDEX idx_mfa_recovery_codes_user ON mfa_recovery_codes(user_id, code_hash);
CREATE TABLE workspace_security (
  workspace_id TEXT PRIMARY KEY REFERENCES workspaces(id) ON DELETE CASCADE,
  require_mfa INTEGER NOT NULL DEFAULT 0 CHECK (require_mfa IN (0, 1)),
  updated_at TEXT NOT NULL DEFAULT {NOW}
);
ALTER TABLE users DROP COLUMN mfa_enabled;
ALTER TABLE users DROP COLUMN mfa_secret;
"""

# API keys for the REST API: stored hashed, scoped (the table is in the initial schema; the list shows the last
# four characters, which the hash cannot give back).
API_KEYS_SCHEMA = """
ALTER TABLE api_keys ADD COLUMN last_four TEXT NOT NULL DEFAULT '';
"""

# Integrations: SMTP settings from the console, Slack incoming webhook, outgoing webhooks and their delivery log.
# Secrets (SMTP password, Slack URL, webhook secrets) are AES-GCM blobs under the instance secret.
INTEGRATIONS_SCHEMA = f"""
CREATE TABLE smtp_settings (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  host TEXT NOT NULL,
  port INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
  username TEXT NOT NULL DEFAULT '',
  password_enc BLOB,
  sender TEXT NOT NULL DEFAULT '',
  starttls INTEGER NOT NULL DEFAULT 1 CHECK (starttls IN (0, 1)),
  updated_by TEXT REFERENCES users(id) ON DELETE SET NULL,
  updated_at TEXT NOT NULL DEFAULT {NOW}
);
CREATE TABLE workspace_integrations (
  workspace_id TEXT PRIMARY KEY REFERENCES workspaces(id) ON DELETE CASCADE,
  transcript_email INTEGER NOT NULL DEFAULT 0 CHECK (transcript_email IN (0, 1)),
  slack_webhook_enc BLOB,
  slack_hint TEXT,
  updated_at TEXT NOT NULL DEFAULT {NOW}
);
CREATE TABLE webhooks (
  id TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  url TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  events TEXT NOT NULL CHECK (json_valid(events)),
  secret_enc BLOB NOT NULL,
  enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
  created_by TEXT REFERENCES users(id) ON DELETE SET NULL,
  created_at TEXT NOT NULL DEFAULT {NOW},
  updated_at TEXT NOT NULL DEFAULT {NOW}
);
CREATE INDEX webhooks_workspace ON webhooks(workspace_id, created_at);
-- One row per event sent to one webhook; payload is emptied after 30 days (housekeeping).
CREATE TABLE webhook_deliveries (
  id TEXT PRIMARY KEY,
  webhook_id TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
  workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  event TEXT NOT NULL,
  payload TEXT,
  customer_id TEXT REFERENCES customers(id) ON DELETE CASCADE,
  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'retrying', 'succeeded', 'failed')),
  attempts INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL DEFAULT {NOW},
  updated_at TEXT NOT NULL DEFAULT {NOW}
);
CREATE INDEX webhook_deliveries_hook ON webhook_deliveries(webhook_id, created_at);
CREATE INDEX webhook_deliveries_customer ON webhook_deliveries(customer_id) WHERE customer_id IS NOT NULL;
CREATE INDEX webhook_deliveries_created ON webhook_deliveries(created_at);
-- Every try of a delivery: what the delivery log shows.
CREATE TABLE webhook_delivery_attempts (
  id INTEGER PRIMARY KEY,
  delivery_id TEXT NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
  attempt INTEGER NOT NULL,
  outcome TEXT NOT NULL CHECK (outcome IN ('succeeded', 'failed')),
  response_code INTEGER,
  error TEXT,
  duration_ms INTEGER NOT NULL,
  created_at TEXT NOT NULL DEFAULT {NOW}
);
CREATE INDEX webhook_delivery_attempts_delivery ON webhook_delivery_attempts(delivery_id, attempt);
"""

# Privacy: one retention policy per workspace (off unless set), and when a conversation or customer was
# anonymised, so the daily job skips what it already did; the partial index keeps its scan to the rows still to do.
PRIVACY_SCHEMA = f"""
CREATE TABLE retention_policies (
  workspace_id TEXT PRIMARY KEY REFERENCES workspaces(id) ON DELETE CASCADE,
  action TEXT NOT NULL DEFAULT 'off' CHECK (action IN ('off','anonymize','delete')),
  after_days INTEGER CHECK (after_days IS NULL OR after_days BETWEEN 1 AND 3650),
  updated_by TEXT REFERENCES users(id) ON DELETE SET NULL,
  updated_at TEXT NOT NULL DEFAULT {NOW},
  last_run_at TEXT,
  last_run_conversations INTEGER NOT NULL DEFAULT 0
);
ALTER TABLE conversations ADD COLUMN anonymized_at TEXT;
ALTER TABLE customers ADD COLUMN anonymized_at TEXT;
CREATE INDEX idx_conversations_retention ON conversations(workspace_id, updated_at) WHERE anonymized_at IS NULL;
"""

# Operations: scheduled backups and whatever the operations side records.
OPERATIONS_SCHEMA = """
"""

# Analytics (issue 8's target at 1M messages): hourly copies of the 15-minute rollups, so a 90-day period reads a
# quarter of the rows (its whole hours from here, the quarter hours at its edges from the 15-minute tables), and
# an index in customer order so distinct customers over a long period are counted without sorting. The hourly
# rows are sums of the 15-minute ones, kept in step by the rollup job; the backfill below fills them on upgrade.
ANALYTICS_SPEED_SCHEMA = """
CREATE TABLE analytics_buckets_hourly (
  workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  chatbot_id TEXT NOT NULL,
  bucket TEXT NOT NULL,
  conversations INTEGER NOT NULL,
  resolved INTEGER NOT NULL,
  abandoned INTEGER NOT NULL,
  escalated INTEGER NOT NULL,
  ai_resolved_confirmed INTEGER NOT NULL,
  ai_resolved_assumed INTEGER NOT NULL,
  customer_messages INTEGER NOT NULL,
  bot_messages INTEGER NOT NULL,
  agent_messages INTEGER NOT NULL,
  response_seconds_sum REAL NOT NULL,
  responses INTEGER NOT NULL,
  first_response_seconds_sum REAL NOT NULL,
  first_responses INTEGER NOT NULL,
  resolution_seconds_sum REAL NOT NULL,
  resolutions INTEGER NOT NULL,
  csat_sum INTEGER NOT NULL,
  csat_count INTEGER NOT NULL,
  csat_1 INTEGER NOT NULL, csat_2 INTEGER NOT NULL, csat_3 INTEGER NOT NULL, csat_4 INTEGER NOT NULL,
  csat_5 INTEGER NOT NULL,
  feedback_up INTEGER NOT NULL,
  feedback_down INTEGER NOT NULL,
  PRIMARY KEY (workspace_id, bucket, chatbot_id)
) WITHOUT ROWID;
CREATE TABLE analytics_dimensions_hourly (
  workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  dimension TEXT NOT NULL CHECK (dimension IN ('intent','escalation_reason','sentiment')),
  bucket TEXT NOT NULL,
  chatbot_id TEXT NOT NULL,
  key TEXT NOT NULL,
  count INTEGER NOT NULL,
  confidence_sum REAL NOT NULL,
  confidence_count INTEGER NOT NULL,
  resolution_seconds_sum REAL NOT NULL,
  resolutions INTEGER NOT NULL,
  PRIMARY KEY (workspace_id, dimension, bucket, chatbot_id, key)
) WITHOUT ROWID;
INSERT INTO analytics_buckets_hourly SELECT workspace_id, chatbot_id, substr(bucket, 1, 14) || '00',
  sum(conversations), sum(resolved), sum(abandoned), sum(escalated), sum(ai_resolved_confirmed),
  sum(ai_resolved_assumed), sum(customer_messages), sum(bot_messages), sum(agent_messages),
  sum(response_seconds_sum), sum(responses), sum(first_response_seconds_sum), sum(first_responses),
  sum(resolution_seconds_sum), sum(resolutions), sum(csat_sum), sum(csat_count), sum(csat_1), sum(csat_2),
  sum(csat_3), sum(csat_4), sum(csat_5), sum(feedback_up), sum(feedback_down)
  FROM analytics_buckets GROUP BY workspace_id, chatbot_id, substr(bucket, 1, 14);
INSERT INTO analytics_dimensions_hourly SELECT workspace_id, dimension, substr(bucket, 1, 14) || '00', chatbot_id,
  key, sum(count), sum(confidence_sum), sum(confidence_count), sum(resolution_seconds_sum), sum(resolutions)
  FROM analytics_dimensions GROUP BY workspace_id, dimension, substr(bucket, 1, 14), chatbot_id, key;
CREATE INDEX idx_analytics_conversations_customer ON analytics_conversations(workspace_id, customer_id, bucket,
  repeat_customer);
CREATE INDEX idx_analytics_conversations_bot_customer ON analytics_conversations(workspace_id, chatbot_id,
  customer_id, bucket, repeat_customer);
"""

ADMIN_SCHEMA = TEAM_SCHEMA + MFA_SCHEMA + API_KEYS_SCHEMA + INTEGRATIONS_SCHEMA + PRIVACY_SCHEMA + OPERATIONS_SCHEMA \
    + ANALYTICS_SPEED_SCHEMA
