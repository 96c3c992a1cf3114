"""Schema of migration 1: the PRD's tables (§7.1.1) as SQLite. Shipped: never edited; changes are later migrations."""

from __future__ import annotations

from chatsupport.store.db import NOW

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
