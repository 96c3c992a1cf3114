"""Forward-only numbered migrations, each applied in its own transaction and recorded in ``schema_migrations``.

Never edit a migration that has shipped: add the next number. Ids are UUID text, JSON lives in TEXT columns
checked with ``json_valid``, and timestamps are UTC ISO-8601 strings (``…Z``) so they sort as text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import apsw

from chatsupport.store.db import NOW, StoreError, connect
from chatsupport.store.admin_schema import ADMIN_SCHEMA
from chatsupport.store.console_schema import CONSOLE_SCHEMA
from chatsupport.store.inbox_schema import INBOX_SCHEMA
from chatsupport.store.initial_schema import INITIAL_SCHEMA


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


# Accounts: console sessions live beside API refresh tokens (one session cap for both), one-time tokens for
# password reset and email verification, and failed logins for throttling (kept in the database so a restart
# does not reset the count).
ACCOUNTS_SCHEMA = f"""
ALTER TABLE refresh_tokens ADD COLUMN kind TEXT NOT NULL DEFAULT 'api' CHECK (kind IN ('api','console'));
ALTER TABLE refresh_tokens ADD COLUMN last_used_at TEXT;

CREATE TABLE user_tokens (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  purpose TEXT NOT NULL CHECK (purpose IN ('reset_password','verify_email')),
  token_hash TEXT NOT NULL UNIQUE,
  expires_at TEXT NOT NULL,
  used_at TEXT,
  created_at TEXT NOT NULL DEFAULT {NOW}
);
CREATE INDEX idx_user_tokens_user ON user_tokens(user_id, purpose);

CREATE TABLE login_failures (
  id INTEGER PRIMARY KEY,
  throttle_key TEXT NOT NULL,
  created_at TEXT NOT NULL DEFAULT {NOW}
);
CREATE INDEX idx_login_failures_key ON login_failures(throttle_key, created_at);
CREATE INDEX idx_audit_logs_created ON audit_logs(workspace_id, action, created_at DESC);
"""

# Retrieval at ~100k chunks: a 1-bit-per-dimension copy of every vector for a coarse Hamming KNN (about 10x
# cheaper than float32 brute force) whose top candidates are re-scored with the float vectors. Same partition key,
# so one chatbot's search never scans another's vectors. Existing float vectors are quantised in place.
BINARY_VECTORS_SCHEMA = """
CREATE VIRTUAL TABLE knowledge_chunk_bits USING vec0(
  chunk_rowid INTEGER PRIMARY KEY,
  chatbot_id TEXT PARTITION KEY,
  embedding bit[384]
);
INSERT INTO knowledge_chunk_bits(chunk_rowid, chatbot_id, embedding)
  SELECT chunk_rowid, chatbot_id, vec_quantize_binary(embedding) FROM knowledge_chunk_vectors;
CREATE TRIGGER knowledge_chunks_ad_bits AFTER DELETE ON knowledge_chunks BEGIN
  DELETE FROM knowledge_chunk_bits WHERE chunk_rowid = old.rowid;
END;
"""

# Ingestion progress and atomic re-upload: ``stage`` says what a processing document is doing; a re-upload is a
# new row naming the document it ``replaces`` (the old one keeps serving until the new chunks commit); ``attempt``
# numbers each run so a stale job cannot overwrite the result of a newer retry. FAQs gain the PRD's metadata.
KNOWLEDGE_PROGRESS_SCHEMA = """
ALTER TABLE knowledge_documents ADD COLUMN stage TEXT
  CHECK (stage IS NULL OR stage IN ('extracting','chunking','embedding'));
ALTER TABLE knowledge_documents ADD COLUMN replaces_document_id TEXT;
ALTER TABLE knowledge_documents ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0;
ALTER TABLE knowledge_faqs ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata));
CREATE INDEX idx_kb_docs_status ON knowledge_documents(status);
"""

# Site crawling: per-page state doubles as the crawl frontier (``queued`` rows of the current ``crawl_id``), so a
# crawl killed half-way resumes where it stopped; ETag/Last-Modified/content hash let a re-crawl skip unchanged
# pages. ``heartbeat_at`` tells a stalled crawl from a running one.
SITE_CRAWL_SCHEMA = f"""
ALTER TABLE knowledge_urls ADD COLUMN pages_skipped INTEGER NOT NULL DEFAULT 0;
ALTER TABLE knowledge_urls ADD COLUMN error_code TEXT;
ALTER TABLE knowledge_urls ADD COLUMN crawl_id TEXT;
ALTER TABLE knowledge_urls ADD COLUMN crawl_started_at TEXT;
ALTER TABLE knowledge_urls ADD COLUMN heartbeat_at TEXT;
ALTER TABLE knowledge_urls ADD COLUMN resume_count INTEGER NOT NULL DEFAULT 0;
CREATE INDEX idx_kb_urls_status ON knowledge_urls(status, next_crawl_at);

CREATE TABLE knowledge_url_pages (
  id TEXT PRIMARY KEY,
  source_id TEXT NOT NULL REFERENCES knowledge_urls(id) ON DELETE CASCADE,
  url TEXT NOT NULL,
  canonical_url TEXT,
  crawl_id TEXT NOT NULL,
  depth INTEGER NOT NULL DEFAULT 0,
  seq INTEGER NOT NULL DEFAULT 0,
  status TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued','indexed','unchanged','skipped','failed')),
  reason TEXT,
  http_status INTEGER,
  title TEXT,
  document_id TEXT REFERENCES knowledge_documents(id) ON DELETE SET NULL,
  etag TEXT,
  last_modified TEXT,
  content_hash TEXT,
  links TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(links)),
  error_message TEXT,
  fetched_at TEXT,
  created_at TEXT NOT NULL DEFAULT {NOW},
  updated_at TEXT NOT NULL DEFAULT {NOW},
  UNIQUE (source_id, url)
);
CREATE INDEX idx_kb_url_pages_frontier ON knowledge_url_pages(source_id, crawl_id, status, depth, seq);
CREATE INDEX idx_kb_url_pages_document ON knowledge_url_pages(document_id);
"""

# LLM providers per workspace (the chain order is ``position``; API keys AES-GCM encrypted, only their last four
# characters kept in clear), the daily cloud-token cap, and token usage per UTC day and provider for that cap.
LLM_PROVIDERS_SCHEMA = f"""
CREATE TABLE llm_providers (
  id TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  kind TEXT NOT NULL CHECK (kind IN ('local','openai','anthropic')),
  position INTEGER NOT NULL DEFAULT 0,
  enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0,1)),
  base_url TEXT,
  model TEXT,
  api_key_encrypted BLOB,
  api_key_hint TEXT,
  first_token_timeout_s REAL,
  total_timeout_s REAL,
  created_at TEXT NOT NULL DEFAULT {NOW},
  updated_at TEXT NOT NULL DEFAULT {NOW},
  UNIQUE (workspace_id, kind)
);
CREATE TABLE llm_limits (
  workspace_id TEXT PRIMARY KEY REFERENCES workspaces(id) ON DELETE CASCADE,
  daily_token_cap INTEGER CHECK (daily_token_cap IS NULL OR daily_token_cap >= 0),
  updated_at TEXT NOT NULL DEFAULT {NOW}
);
CREATE TABLE llm_usage (
  workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  day TEXT NOT NULL,
  provider TEXT NOT NULL,
  requests INTEGER NOT NULL DEFAULT 0,
  tokens_in INTEGER NOT NULL DEFAULT 0,
  tokens_out INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (workspace_id, day, provider)
);
"""

# Re-scoring reads a few hundred float vectors per query. vec0 answers ``chunk_rowid IN (...)`` with a scan of the
# partition (41 ms for 200 ids at 100k), so a plain copy keyed by the chunk rowid turns that into one b-tree
# lookup per id inside a single statement. Filled from the vec0 table; a delete trigger keeps it in step.
PLAIN_VECTORS_SCHEMA = """
CREATE TABLE knowledge_chunk_floats (
  chunk_rowid INTEGER PRIMARY KEY,
  chatbot_id TEXT NOT NULL,
  embedding BLOB NOT NULL
);
INSERT INTO knowledge_chunk_floats(chunk_rowid, chatbot_id, embedding)
  SELECT chunk_rowid, chatbot_id, embedding FROM knowledge_chunk_vectors;
CREATE TRIGGER knowledge_chunks_ad_floats AFTER DELETE ON knowledge_chunks BEGIN
  DELETE FROM knowledge_chunk_floats WHERE chunk_rowid = old.rowid;
END;
"""

# Chat widget (issue 6): files visitors attach (stored under DATA_DIR/uploads/attachments, served as downloads),
# the sites the widget was seen on (Story 2.1: "widget detected"), and the lookup of an identified visitor's
# customer by the host site's user id.
WIDGET_SCHEMA = f"""
CREATE TABLE attachments (
  id TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  chatbot_id TEXT NOT NULL REFERENCES chatbots(id) ON DELETE CASCADE,
  visitor_id TEXT NOT NULL,
  conversation_id TEXT REFERENCES conversations(id) ON DELETE CASCADE,
  message_id TEXT REFERENCES messages(id) ON DELETE SET NULL,
  filename TEXT NOT NULL,
  content_type TEXT NOT NULL,
  size INTEGER NOT NULL,
  sha256 TEXT NOT NULL,
  created_at TEXT NOT NULL DEFAULT {NOW}
);
CREATE INDEX idx_attachments_conversation ON attachments(conversation_id);
CREATE INDEX idx_attachments_visitor ON attachments(chatbot_id, visitor_id);
CREATE TABLE widget_sightings (
  chatbot_id TEXT NOT NULL REFERENCES chatbots(id) ON DELETE CASCADE,
  origin TEXT NOT NULL,
  first_seen_at TEXT NOT NULL,
  last_seen_at TEXT NOT NULL,
  PRIMARY KEY (chatbot_id, origin)
) WITHOUT ROWID;
CREATE INDEX idx_customers_external ON customers(workspace_id, external_id) WHERE external_id IS NOT NULL;
"""

# Agent inbox (issue 6): console heartbeats for presence (online/away; offline is "no heartbeat lately", computed
# on read), and conversation indexes for the agent list's keyset pagination, newest first, with or without a status
# filter, plus the lifecycle jobs' scans by status and age across workspaces.
AGENT_INBOX_SCHEMA = """
CREATE TABLE agent_presence (
  user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
  workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  status TEXT NOT NULL CHECK (status IN ('online','away')),
  last_heartbeat_at TEXT NOT NULL,
  status_since TEXT NOT NULL
);
CREATE INDEX idx_agent_presence_workspace ON agent_presence(workspace_id, status, last_heartbeat_at);
CREATE INDEX idx_conversations_ws_updated ON conversations(workspace_id, updated_at, id);
CREATE INDEX idx_conversations_ws_created ON conversations(workspace_id, created_at, id);
CREATE INDEX idx_conversations_ws_status_updated ON conversations(workspace_id, status, updated_at, id);
CREATE INDEX idx_conversations_status_updated ON conversations(status, updated_at);
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial schema", INITIAL_SCHEMA),
    Migration(2, "accounts: console sessions, one-time user tokens, login failures", ACCOUNTS_SCHEMA),
    Migration(3, "knowledge: binary-quantised chunk vectors for coarse KNN", BINARY_VECTORS_SCHEMA),
    Migration(4, "knowledge: ingestion stage, re-upload, job attempts; FAQ metadata", KNOWLEDGE_PROGRESS_SCHEMA),
    Migration(5, "knowledge: site crawl pages, skipped counts, resumable crawls", SITE_CRAWL_SCHEMA),
    Migration(6, "llm: providers per workspace, encrypted keys, daily cloud token cap and usage", LLM_PROVIDERS_SCHEMA),
    Migration(7, "knowledge: plain float32 copy of chunk vectors for indexed re-scoring", PLAIN_VECTORS_SCHEMA),
    Migration(8, "widget: visitor attachments, widget sightings, identified customers", WIDGET_SCHEMA),
    Migration(9, "conversations: agent presence, inbox list and lifecycle indexes", AGENT_INBOX_SCHEMA),
    Migration(10, "inbox: conversation search, saved filters, canned responses, read markers, notifications, "
                  "exports", INBOX_SCHEMA),
    Migration(11, "console: chatbot setup and brand, analytics rollups, answer reviews", CONSOLE_SCHEMA),
    Migration(12, "admin: team invitations, MFA, API keys, integrations, privacy and retention, operations",
              ADMIN_SCHEMA),
)

LATEST_VERSION = MIGRATIONS[-1].version


def _ensure_table(conn: apsw.Connection) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
        f" applied_at TEXT NOT NULL DEFAULT {NOW})"
    )


def current_version(conn: apsw.Connection) -> int:
    exists = conn.execute(
        "SELECT 1 AS x FROM sqlite_master WHERE type='table' AND name='schema_migrations'"
    ).fetchone()
    if not exists:
        return 0
    row = conn.execute("SELECT max(version) AS v FROM schema_migrations").fetchone()
    return row["v"] or 0


def pending(conn: apsw.Connection) -> list[Migration]:
    version = current_version(conn)
    if version > LATEST_VERSION:
        raise StoreError(
            f"database schema is version {version}, newer than this ChatSupport knows ({LATEST_VERSION}); "
            "upgrade ChatSupport or restore a matching backup"
        )
    return [m for m in MIGRATIONS if m.version > version]


BeforeMigrating = Callable[[int, list[Migration]], None]


def migrate(path: Path, before: BeforeMigrating | None = None) -> list[Migration]:
    """Apply every pending migration, each in its own transaction; return what was applied. ``before(version,
    pending)`` runs first when there is something to apply (the pre-migration backup hooks in here)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = connect(path)
    try:
        _ensure_table(conn)
        applied = []
        todo = pending(conn)
        if todo and before is not None:
            before(current_version(conn), todo)
        for migration in todo:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(migration.sql)
                conn.execute(
                    "INSERT INTO schema_migrations(version, name) VALUES (?, ?)", (migration.version, migration.name)
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            applied.append(migration)
        return applied
    finally:
        conn.close()
