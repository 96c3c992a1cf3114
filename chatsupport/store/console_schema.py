"""Schema of migration 11, the admin console part 1 (issue 8), in three parts applied together in one
transaction: chatbot setup (workspace brand, versions), analytics rollups, and the answer review queue of the
learning loop. Shipped migrations are never edited: a change is the next number."""

from __future__ import annotations

from chatsupport.store.db import NOW


def bucket_sql(stamp: str) -> str:
    """SQL for the 15-minute UTC bucket ('YYYY-MM-DDTHH:MM') of an ISO timestamp column."""
    return f"substr({stamp}, 1, 14) || printf('%02d', CAST(substr({stamp}, 15, 2) AS INTEGER) / 15 * 15)"


# Chatbot setup and workspace brand settings. A rollback is a new version that names the one it restored; the
# brand (colours, timezone) lives in workspaces.settings and the logo file's name in workspaces.logo_path.
CHATBOT_SETUP_SCHEMA = """
ALTER TABLE chatbot_versions ADD COLUMN restored_from INTEGER;
CREATE INDEX idx_chatbots_workspace_name ON chatbots(workspace_id, name COLLATE NOCASE);
"""

# Analytics rollups kept current by Huey, so the dashboard reads thousands of rows instead of 1M messages.
# A conversation counts in the 15-minute UTC bucket it started in (every real time zone's midnight falls on a
# quarter hour, so local days are exact sums of buckets). Triggers mark a bucket dirty whenever a conversation or
# a message's feedback/analysis changes (a new message bumps its conversation's row, so it marks too); the job
# recomputes dirty buckets from the source rows. Existing history is marked dirty here, so an upgrade backfills.
ANALYTICS_SCHEMA = f"""
CREATE TABLE analytics_dirty (
  workspace_id TEXT NOT NULL,
  chatbot_id TEXT NOT NULL,
  bucket TEXT NOT NULL,
  PRIMARY KEY (workspace_id, chatbot_id, bucket)
) WITHOUT ROWID;

CREATE TABLE analytics_buckets (
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

CREATE TABLE analytics_dimensions (
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

CREATE TABLE analytics_agents (
  workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  bucket TEXT NOT NULL,
  chatbot_id TEXT NOT NULL,
  agent_id TEXT NOT NULL,
  conversations_handled INTEGER NOT NULL,
  resolved INTEGER NOT NULL,
  messages_sent INTEGER NOT NULL,
  response_seconds_sum REAL NOT NULL,
  responses INTEGER NOT NULL,
  resolution_seconds_sum REAL NOT NULL,
  resolutions INTEGER NOT NULL,
  csat_sum INTEGER NOT NULL,
  csat_count INTEGER NOT NULL,
  feedback_up INTEGER NOT NULL,
  feedback_down INTEGER NOT NULL,
  active_seconds REAL NOT NULL,
  PRIMARY KEY (workspace_id, bucket, chatbot_id, agent_id)
) WITHOUT ROWID;

-- One row per conversation: what distinct counts (returning customers) and question clustering need.
CREATE TABLE analytics_conversations (
  conversation_id TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  chatbot_id TEXT NOT NULL,
  bucket TEXT NOT NULL,
  customer_id TEXT,
  repeat_customer INTEGER NOT NULL,
  outcome TEXT NOT NULL CHECK (outcome IN ('open','escalated','ai_resolved_confirmed','ai_resolved_assumed')),
  first_question TEXT,
  first_answer_confidence REAL
);
CREATE INDEX idx_analytics_conversations_period ON analytics_conversations(workspace_id, bucket, customer_id,
  repeat_customer);
CREATE INDEX idx_analytics_conversations_bot ON analytics_conversations(chatbot_id, bucket);

-- A scheduled report is sent once per workspace, frequency and period, however often the job runs.
CREATE TABLE analytics_report_deliveries (
  workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  frequency TEXT NOT NULL CHECK (frequency IN ('weekly','monthly')),
  period_start TEXT NOT NULL,
  recipients INTEGER NOT NULL,
  sent_at TEXT NOT NULL DEFAULT {NOW},
  PRIMARY KEY (workspace_id, frequency, period_start)
) WITHOUT ROWID;

CREATE TRIGGER analytics_conversation_inserted AFTER INSERT ON conversations BEGIN
  INSERT OR IGNORE INTO analytics_dirty VALUES (NEW.workspace_id, NEW.chatbot_id, {bucket_sql("NEW.created_at")});
END;
CREATE TRIGGER analytics_conversation_updated AFTER UPDATE ON conversations BEGIN
  INSERT OR IGNORE INTO analytics_dirty VALUES (NEW.workspace_id, NEW.chatbot_id, {bucket_sql("NEW.created_at")});
END;
CREATE TRIGGER analytics_conversation_moved AFTER UPDATE OF chatbot_id, created_at ON conversations BEGIN
  INSERT OR IGNORE INTO analytics_dirty VALUES (OLD.workspace_id, OLD.chatbot_id, {bucket_sql("OLD.created_at")});
END;
CREATE TRIGGER analytics_conversation_deleted AFTER DELETE ON conversations BEGIN
  INSERT OR IGNORE INTO analytics_dirty VALUES (OLD.workspace_id, OLD.chatbot_id, {bucket_sql("OLD.created_at")});
END;
CREATE TRIGGER analytics_message_judged
AFTER UPDATE OF feedback, intent, intent_confidence, sentiment, deleted_at, ai_metadata ON messages BEGIN
  INSERT OR IGNORE INTO analytics_dirty SELECT workspace_id, chatbot_id, {bucket_sql("created_at")}
    FROM conversations WHERE id = NEW.conversation_id;
END;

INSERT OR IGNORE INTO analytics_dirty SELECT workspace_id, chatbot_id, {bucket_sql("created_at")} FROM conversations;
"""

# The learning loop's review of AI answers: one row per reviewed bot message (its verdict, and the FAQ a corrected
# answer became). The partial index serves the review queue, which reads bot answers newest first.
ANSWER_REVIEW_SCHEMA = f"""
CREATE TABLE answer_reviews (
  message_id TEXT PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
  workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  chatbot_id TEXT NOT NULL REFERENCES chatbots(id) ON DELETE CASCADE,
  verdict TEXT NOT NULL CHECK (verdict IN ('correct','incorrect','corrected')),
  note TEXT,
  faq_id TEXT REFERENCES knowledge_faqs(id) ON DELETE SET NULL,
  reviewed_by TEXT REFERENCES users(id) ON DELETE SET NULL,
  reviewed_at TEXT NOT NULL DEFAULT {NOW}
);
CREATE INDEX idx_answer_reviews_workspace ON answer_reviews(workspace_id, chatbot_id);
CREATE INDEX idx_messages_bot_answers ON messages(created_at DESC, id DESC)
  WHERE sender_type = 'bot' AND ai_metadata IS NOT NULL;
"""

CONSOLE_SCHEMA = CHATBOT_SETUP_SCHEMA + ANALYTICS_SCHEMA + ANSWER_REVIEW_SCHEMA
