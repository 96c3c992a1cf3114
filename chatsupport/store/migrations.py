"""Forward-only numbered migrations, each applied in its own transaction and recorded in ``schema_migrations``.

Never edit a migration that has shipped: add the next number. Ids are UUID text, JSON lives in TEXT columns
checked with ``json_valid``, and timestamps are UTC ISO-8601 strings (``…Z``) so they sort as text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import apsw

from chatsupport.store.db import NOW, StoreError, connect
from chatsupport.store.console_schema import CONSOLE_SCHEMA
from chatsupport.store.inbox_schema import INBOX_SCHEMA


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


INITIAL_SCHEMA = f"""
CREATE TABLE workspaces (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  slug TEXT NOT NULL UNIQUE,
  logo_path TEXT,
  website_url TEXT,
  settings TEXT NOT NULL DEFAULT '{{}}' CHECK (json_valid(settings)),
  created_at TEXT NOT NULL DEFAULT {NOW},
  updated_at TEXT NOT NULL DEFAULT {NOW},
  deleted_at TEXT
);

CREATE TABLE users (
  id TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  email TEXT NOT NULL UNIQUE COLLATE NOCASE,
  password_hash TEXT,
  email_verified INTEGER NOT NULL DEFAULT 0,
  display_name TEXT NOT NULL DEFAULT '',
  avatar_path TEXT,
  timezone TEXT NOT NULL DEFAULT 'UTC',
  role TEXT NOT NULL DEFAULT 'agent' CHECK (role IN ('owner','admin','agent','viewer')),
  mfa_enabled INTEGER NOT NULL DEFAULT 0,
  mfa_secret TEXT,
  max_concurrent_conversations INTEGER,
  status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active','inactive','suspended')),
  last_login_at TEXT,
  last_active_at TEXT,
  created_at TEXT NOT NULL DEFAULT {NOW},
  updated_at TEXT NOT NULL DEFAULT {NOW},
  deleted_at TEXT
);
CREATE INDEX idx_users_workspace ON users(workspace_id);

CREATE TABLE refresh_tokens (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  family_id TEXT NOT NULL,
  token_hash TEXT NOT NULL UNIQUE,
  user_agent TEXT,
  ip_address TEXT,
  created_at TEXT NOT NULL DEFAULT {NOW},
  expires_at TEXT NOT NULL,
  rotated_at TEXT,
  revoked_at TEXT
);
CREATE INDEX idx_refresh_tokens_user ON refresh_tokens(user_id);
CREATE INDEX idx_refresh_tokens_family ON refresh_tokens(family_id);

CREATE TABLE invitations (
  id TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  email TEXT NOT NULL COLLATE NOCASE,
  role TEXT NOT NULL CHECK (role IN ('owner','admin','agent','viewer')),
  display_name TEXT NOT NULL DEFAULT '',
  token_hash TEXT NOT NULL UNIQUE,
  invited_by TEXT REFERENCES users(id) ON DELETE SET NULL,
  expires_at TEXT NOT NULL,
  accepted_at TEXT,
  revoked_at TEXT,
  created_at TEXT NOT NULL DEFAULT {NOW}
);
CREATE INDEX idx_invitations_workspace ON invitations(workspace_id);

CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  prefix TEXT NOT NULL,
  key_hash TEXT NOT NULL UNIQUE,
  scopes TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(scopes)),
  created_by TEXT REFERENCES users(id) ON DELETE SET NULL,
  last_used_at TEXT,
  expires_at TEXT,
  revoked_at TEXT,
  created_at TEXT NOT NULL DEFAULT {NOW}
);
CREATE INDEX idx_api_keys_workspace ON api_keys(workspace_id);

CREATE TABLE chatbots (
  id TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  description TEXT,
  status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active','inactive','archived')),
  settings TEXT NOT NULL DEFAULT '{{}}' CHECK (json_valid(settings)),
  public_key TEXT NOT NULL UNIQUE,
  identity_secret TEXT NOT NULL,
  allowed_origins TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(allowed_origins)),
  version INTEGER NOT NULL DEFAULT 1,
  created_by TEXT REFERENCES users(id) ON DELETE SET NULL,
  created_at TEXT NOT NULL DEFAULT {NOW},
  updated_at TEXT NOT NULL DEFAULT {NOW},
  archived_at TEXT
);
CREATE INDEX idx_chatbots_workspace ON chatbots(workspace_id, status);

CREATE TABLE chatbot_versions (
  chatbot_id TEXT NOT NULL REFERENCES chatbots(id) ON DELETE CASCADE,
  version INTEGER NOT NULL,
  snapshot TEXT NOT NULL CHECK (json_valid(snapshot)),
  changed_by TEXT REFERENCES users(id) ON DELETE SET NULL,
  created_at TEXT NOT NULL DEFAULT {NOW},
  PRIMARY KEY (chatbot_id, version)
);

CREATE TABLE knowledge_documents (
  id TEXT PRIMARY KEY,
  chatbot_id TEXT NOT NULL REFERENCES chatbots(id) ON DELETE CASCADE,
  source_type TEXT NOT NULL DEFAULT 'file' CHECK (source_type IN ('file','url','faq','text')),
  title TEXT NOT NULL DEFAULT '',
  original_filename TEXT,
  stored_path TEXT,
  source_url TEXT,
  file_size_bytes INTEGER,
  mime_type TEXT,
  content_hash TEXT,
  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending','processing','completed','failed')),
  progress REAL NOT NULL DEFAULT 0,
  error_code TEXT,
  error_message TEXT,
  page_count INTEGER,
  text_length INTEGER,
  chunk_count INTEGER NOT NULL DEFAULT 0,
  metadata TEXT NOT NULL DEFAULT '{{}}' CHECK (json_valid(metadata)),
  usage_count INTEGER NOT NULL DEFAULT 0,
  last_used_at TEXT,
  uploaded_by TEXT REFERENCES users(id) ON DELETE SET NULL,
  processing_started_at TEXT,
  processing_completed_at TEXT,
  created_at TEXT NOT NULL DEFAULT {NOW},
  updated_at TEXT NOT NULL DEFAULT {NOW}
);
CREATE INDEX idx_kb_docs_chatbot ON knowledge_documents(chatbot_id, status);

CREATE TABLE knowledge_urls (
  id TEXT PRIMARY KEY,
  chatbot_id TEXT NOT NULL REFERENCES chatbots(id) ON DELETE CASCADE,
  url TEXT NOT NULL,
  domain TEXT,
  settings TEXT NOT NULL DEFAULT '{{}}' CHECK (json_valid(settings)),
  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending','crawling','completed','failed')),
  pages_found INTEGER NOT NULL DEFAULT 0,
  pages_processed INTEGER NOT NULL DEFAULT 0,
  pages_failed INTEGER NOT NULL DEFAULT 0,
  error_message TEXT,
  last_crawl_at TEXT,
  next_crawl_at TEXT,
  created_by TEXT REFERENCES users(id) ON DELETE SET NULL,
  created_at TEXT NOT NULL DEFAULT {NOW},
  updated_at TEXT NOT NULL DEFAULT {NOW}
);
CREATE INDEX idx_kb_urls_chatbot ON knowledge_urls(chatbot_id);

CREATE TABLE knowledge_faqs (
  id TEXT PRIMARY KEY,
  chatbot_id TEXT NOT NULL REFERENCES chatbots(id) ON DELETE CASCADE,
  question TEXT NOT NULL,
  answer TEXT NOT NULL,
  category TEXT,
  tags TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(tags)),
  priority TEXT NOT NULL DEFAULT 'medium' CHECK (priority IN ('high','medium','low')),
  status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active','inactive','draft')),
  usage_count INTEGER NOT NULL DEFAULT 0,
  helpful_count INTEGER NOT NULL DEFAULT 0,
  not_helpful_count INTEGER NOT NULL DEFAULT 0,
  last_used_at TEXT,
  created_by TEXT REFERENCES users(id) ON DELETE SET NULL,
  created_at TEXT NOT NULL DEFAULT {NOW},
  updated_at TEXT NOT NULL DEFAULT {NOW}
);
CREATE INDEX idx_kb_faqs_chatbot ON knowledge_faqs(chatbot_id, status);

-- Chunks carry an integer rowid so the FTS5 index and the vec0 table can point at them.
CREATE TABLE knowledge_chunks (
  rowid INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  chatbot_id TEXT NOT NULL REFERENCES chatbots(id) ON DELETE CASCADE,
  document_id TEXT REFERENCES knowledge_documents(id) ON DELETE CASCADE,
  faq_id TEXT REFERENCES knowledge_faqs(id) ON DELETE CASCADE,
  position INTEGER NOT NULL,
  title TEXT NOT NULL DEFAULT '',
  heading TEXT NOT NULL DEFAULT '',
  content TEXT NOT NULL,
  page_number INTEGER,
  url TEXT,
  token_count INTEGER,
  created_at TEXT NOT NULL DEFAULT {NOW}
);
CREATE INDEX idx_chunks_document ON knowledge_chunks(document_id);
CREATE INDEX idx_chunks_faq ON knowledge_chunks(faq_id);
CREATE INDEX idx_chunks_chatbot ON knowledge_chunks(chatbot_id);

CREATE VIRTUAL TABLE knowledge_chunks_fts USING fts5(
  title, heading, content, content='knowledge_chunks', content_rowid='rowid', tokenize='porter unicode61'
);
CREATE TRIGGER knowledge_chunks_ai AFTER INSERT ON knowledge_chunks BEGIN
  INSERT INTO knowledge_chunks_fts(rowid, title, heading, content)
  VALUES (new.rowid, new.title, new.heading, new.content);
END;
CREATE TRIGGER knowledge_chunks_ad AFTER DELETE ON knowledge_chunks BEGIN
  INSERT INTO knowledge_chunks_fts(knowledge_chunks_fts, rowid, title, heading, content)
  VALUES ('delete', old.rowid, old.title, old.heading, old.content);
  DELETE FROM knowledge_chunk_vectors WHERE chunk_rowid = old.rowid;
END;

-- all-MiniLM-L6-v2 gives 384 dimensions; the chatbot partition keeps filtered KNN to one bot's vectors.
CREATE VIRTUAL TABLE knowledge_chunk_vectors USING vec0(
  chunk_rowid INTEGER PRIMARY KEY,
  chatbot_id TEXT PARTITION KEY,
  embedding float[384] distance_metric=cosine
);

CREATE TABLE customers (
  id TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  visitor_id TEXT,
  external_id TEXT,
  email TEXT COLLATE NOCASE,
  name TEXT,
  phone TEXT,
  company TEXT,
  metadata TEXT NOT NULL DEFAULT '{{}}' CHECK (json_valid(metadata)),
  custom_fields TEXT NOT NULL DEFAULT '{{}}' CHECK (json_valid(custom_fields)),
  first_seen_at TEXT NOT NULL DEFAULT {NOW},
  last_seen_at TEXT,
  created_at TEXT NOT NULL DEFAULT {NOW},
  updated_at TEXT NOT NULL DEFAULT {NOW}
);
CREATE INDEX idx_customers_workspace ON customers(workspace_id);
CREATE INDEX idx_customers_visitor ON customers(workspace_id, visitor_id);
CREATE INDEX idx_customers_email ON customers(workspace_id, email);

CREATE TABLE conversations (
  id TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  chatbot_id TEXT NOT NULL REFERENCES chatbots(id) ON DELETE CASCADE,
  customer_id TEXT REFERENCES customers(id) ON DELETE SET NULL,
  status TEXT NOT NULL DEFAULT 'active' CHECK (status IN
    ('active','waiting','escalated','agent_handling','resolved','abandoned','archived')),
  assigned_agent_id TEXT REFERENCES users(id) ON DELETE SET NULL,
  assigned_at TEXT,
  context TEXT NOT NULL DEFAULT '{{}}' CHECK (json_valid(context)),
  tags TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(tags)),
  message_count INTEGER NOT NULL DEFAULT 0,
  ai_message_count INTEGER NOT NULL DEFAULT 0,
  agent_message_count INTEGER NOT NULL DEFAULT 0,
  customer_message_count INTEGER NOT NULL DEFAULT 0,
  first_response_time_seconds INTEGER,
  avg_response_time_seconds INTEGER,
  total_duration_seconds INTEGER,
  satisfaction_rating INTEGER CHECK (satisfaction_rating BETWEEN 1 AND 5),
  satisfaction_comment TEXT,
  satisfaction_rated_at TEXT,
  escalation_reason TEXT,
  resolved_by TEXT REFERENCES users(id) ON DELETE SET NULL,
  resolved_at TEXT,
  resolution_note TEXT,
  created_at TEXT NOT NULL DEFAULT {NOW},
  updated_at TEXT NOT NULL DEFAULT {NOW},
  last_message_at TEXT,
  archived_at TEXT
);
CREATE INDEX idx_conversations_workspace ON conversations(workspace_id, status, last_message_at DESC);
CREATE INDEX idx_conversations_chatbot ON conversations(chatbot_id, created_at DESC);
CREATE INDEX idx_conversations_customer ON conversations(customer_id);
CREATE INDEX idx_conversations_agent ON conversations(assigned_agent_id, status);

CREATE TABLE messages (
  id TEXT PRIMARY KEY,
  conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
  sender_type TEXT NOT NULL CHECK (sender_type IN ('customer','bot','agent','system')),
  sender_id TEXT,
  sender_name TEXT,
  content TEXT NOT NULL,
  content_type TEXT NOT NULL DEFAULT 'text',
  attachments TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(attachments)),
  ai_metadata TEXT CHECK (ai_metadata IS NULL OR json_valid(ai_metadata)),
  client_message_id TEXT,
  intent TEXT,
  intent_confidence REAL,
  sentiment TEXT,
  sentiment_score REAL,
  feedback TEXT CHECK (feedback IS NULL OR feedback IN ('up','down')),
  is_read INTEGER NOT NULL DEFAULT 0,
  read_at TEXT,
  created_at TEXT NOT NULL DEFAULT {NOW},
  edited_at TEXT,
  deleted_at TEXT
);
CREATE INDEX idx_messages_conversation ON messages(conversation_id, created_at);
CREATE UNIQUE INDEX idx_messages_client_id ON messages(conversation_id, client_message_id)
  WHERE client_message_id IS NOT NULL;

CREATE TABLE conversation_events (
  id TEXT PRIMARY KEY,
  conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
  event_type TEXT NOT NULL,
  event_data TEXT NOT NULL DEFAULT '{{}}' CHECK (json_valid(event_data)),
  triggered_by_type TEXT CHECK (triggered_by_type IN ('user','customer','system','automation')),
  triggered_by_id TEXT,
  created_at TEXT NOT NULL DEFAULT {NOW}
);
CREATE INDEX idx_conversation_events_conversation ON conversation_events(conversation_id, created_at);

CREATE TABLE internal_notes (
  id TEXT PRIMARY KEY,
  conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
  content TEXT NOT NULL,
  mentioned_users TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(mentioned_users)),
  author_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  created_at TEXT NOT NULL DEFAULT {NOW},
  updated_at TEXT NOT NULL DEFAULT {NOW},
  deleted_at TEXT
);
CREATE INDEX idx_internal_notes_conversation ON internal_notes(conversation_id);

CREATE TABLE integrations (
  id TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  provider TEXT NOT NULL CHECK (provider IN ('email','slack','custom_webhook')),
  config TEXT NOT NULL DEFAULT '{{}}' CHECK (json_valid(config)),
  settings TEXT NOT NULL DEFAULT '{{}}' CHECK (json_valid(settings)),
  status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active','inactive','error')),
  last_error TEXT,
  created_by TEXT REFERENCES users(id) ON DELETE SET NULL,
  created_at TEXT NOT NULL DEFAULT {NOW},
  updated_at TEXT NOT NULL DEFAULT {NOW}
);
CREATE INDEX idx_integrations_workspace ON integrations(workspace_id);

CREATE TABLE audit_logs (
  id TEXT PRIMARY KEY,
  workspace_id TEXT REFERENCES workspaces(id) ON DELETE CASCADE,
  user_id TEXT REFERENCES users(id) ON DELETE SET NULL,
  user_email TEXT,
  ip_address TEXT,
  user_agent TEXT,
  action TEXT NOT NULL,
  resource_type TEXT,
  resource_id TEXT,
  changes TEXT CHECK (changes IS NULL OR json_valid(changes)),
  metadata TEXT CHECK (metadata IS NULL OR json_valid(metadata)),
  created_at TEXT NOT NULL DEFAULT {NOW}
);
CREATE INDEX idx_audit_logs_workspace ON audit_logs(workspace_id, created_at DESC);
CREATE INDEX idx_audit_logs_action ON audit_logs(workspace_id, action);

-- Small instance-wide facts: last housekeeping run, last backup, …
CREATE TABLE instance_state (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  updated_at TEXT NOT NULL DEFAULT {NOW}
);
"""

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


def migrate(path: Path) -> list[Migration]:
    """Apply every pending migration, each in its own transaction; return what was applied."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = connect(path)
    try:
        _ensure_table(conn)
        applied = []
        for migration in pending(conn):
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
