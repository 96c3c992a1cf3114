"""Schema of migration 10, the agent inbox (issue 7), in three parts that are applied together in one
transaction: search (full text and filter indexes), collaboration (saved filters, canned responses, read
markers, notifications) and exports. Shipped migrations are never edited: a change is the next number."""

from __future__ import annotations

from chatsupport.store.db import NOW

# Full-text search over messages, internal notes and customers' name and e-mail, plus what the list filters need.
# The FTS tables are contentless (the text lives in its own table; highlights are cut from it in Python) and
# keyed by ``search_refs.id``, an INTEGER PRIMARY KEY of our own: messages, notes and customers have TEXT keys
# whose implicit rowids VACUUM may renumber, so nothing points at those. Triggers keep both in step with every
# insert, edit, soft delete (``deleted_at``) and hard delete, so a privacy erasure reaches the index by itself.
# Rows are indexed in time order (the backfill sorts by created_at), so "newest matches first" is "highest rowid
# first", which FTS5 reads without sorting; 4-letter prefixes are indexed so search-as-you-type ("pass*") does not
# merge the lists of every word it starts. Tags get a table of their own (``conversation_tags``, lower-cased,
# synced from ``conversations.tags``) so "carries every one of these tags" is an index lookup, not JSON parsing.
SEARCH_SCHEMA = """
CREATE TABLE conversation_tags (
  conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
  workspace_id TEXT NOT NULL,
  tag TEXT NOT NULL,
  PRIMARY KEY (conversation_id, tag)
) WITHOUT ROWID;
CREATE INDEX idx_conversation_tags_tag ON conversation_tags(workspace_id, tag);
CREATE TRIGGER conversation_tags_ai AFTER INSERT ON conversations WHEN new.tags != '[]' BEGIN
  INSERT OR IGNORE INTO conversation_tags(conversation_id, workspace_id, tag)
    SELECT new.id, new.workspace_id, lower(trim(value)) FROM json_each(new.tags)
    WHERE type = 'text' AND trim(value) != '';
END;
CREATE TRIGGER conversation_tags_au AFTER UPDATE OF tags ON conversations WHEN new.tags IS NOT old.tags BEGIN
  DELETE FROM conversation_tags WHERE conversation_id = old.id;
  INSERT OR IGNORE INTO conversation_tags(conversation_id, workspace_id, tag)
    SELECT new.id, new.workspace_id, lower(trim(value)) FROM json_each(new.tags)
    WHERE type = 'text' AND trim(value) != '';
END;
INSERT OR IGNORE INTO conversation_tags(conversation_id, workspace_id, tag)
  SELECT c.id, c.workspace_id, lower(trim(t.value)) FROM conversations c, json_each(c.tags) t
  WHERE c.tags != '[]' AND t.type = 'text' AND trim(t.value) != '';

CREATE INDEX idx_conversations_ws_resolved ON conversations(workspace_id, resolved_at);

CREATE TABLE search_refs (
  id INTEGER PRIMARY KEY,
  kind TEXT NOT NULL CHECK (kind IN ('message','note','customer')),
  ref_id TEXT NOT NULL,
  workspace_id TEXT NOT NULL,
  conversation_id TEXT,
  UNIQUE (kind, ref_id)
);
CREATE VIRTUAL TABLE conversation_text USING fts5(
  body, content='', contentless_delete=1, prefix='4', tokenize='porter unicode61 remove_diacritics 2');
CREATE VIRTUAL TABLE customer_text USING fts5(
  body, content='', contentless_delete=1, tokenize='porter unicode61 remove_diacritics 2');

CREATE TRIGGER messages_search_ai AFTER INSERT ON messages WHEN new.deleted_at IS NULL BEGIN
  INSERT INTO search_refs(kind, ref_id, workspace_id, conversation_id)
    SELECT 'message', new.id, workspace_id, id FROM conversations WHERE id = new.conversation_id;
  INSERT INTO conversation_text(rowid, body)
    SELECT id, new.content FROM search_refs WHERE kind = 'message' AND ref_id = new.id;
END;
CREATE TRIGGER messages_search_au AFTER UPDATE OF content, deleted_at ON messages BEGIN
  DELETE FROM conversation_text WHERE rowid = (SELECT id FROM search_refs WHERE kind = 'message' AND ref_id = old.id);
  DELETE FROM search_refs WHERE kind = 'message' AND ref_id = old.id;
  INSERT INTO search_refs(kind, ref_id, workspace_id, conversation_id)
    SELECT 'message', new.id, workspace_id, id FROM conversations
    WHERE id = new.conversation_id AND new.deleted_at IS NULL;
  INSERT INTO conversation_text(rowid, body)
    SELECT id, new.content FROM search_refs WHERE kind = 'message' AND ref_id = new.id;
END;
CREATE TRIGGER messages_search_ad AFTER DELETE ON messages BEGIN
  DELETE FROM conversation_text WHERE rowid = (SELECT id FROM search_refs WHERE kind = 'message' AND ref_id = old.id);
  DELETE FROM search_refs WHERE kind = 'message' AND ref_id = old.id;
END;

CREATE TRIGGER internal_notes_search_ai AFTER INSERT ON internal_notes WHEN new.deleted_at IS NULL BEGIN
  INSERT INTO search_refs(kind, ref_id, workspace_id, conversation_id)
    SELECT 'note', new.id, workspace_id, id FROM conversations WHERE id = new.conversation_id;
  INSERT INTO conversation_text(rowid, body)
    SELECT id, new.content FROM search_refs WHERE kind = 'note' AND ref_id = new.id;
END;
CREATE TRIGGER internal_notes_search_au AFTER UPDATE OF content, deleted_at ON internal_notes BEGIN
  DELETE FROM conversation_text WHERE rowid = (SELECT id FROM search_refs WHERE kind = 'note' AND ref_id = old.id);
  DELETE FROM search_refs WHERE kind = 'note' AND ref_id = old.id;
  INSERT INTO search_refs(kind, ref_id, workspace_id, conversation_id)
    SELECT 'note', new.id, workspace_id, id FROM conversations
    WHERE id = new.conversation_id AND new.deleted_at IS NULL;
  INSERT INTO conversation_text(rowid, body)
    SELECT id, new.content FROM search_refs WHERE kind = 'note' AND ref_id = new.id;
END;
CREATE TRIGGER internal_notes_search_ad AFTER DELETE ON internal_notes BEGIN
  DELETE FROM conversation_text WHERE rowid = (SELECT id FROM search_refs WHERE kind = 'note' AND ref_id = old.id);
  DELETE FROM search_refs WHERE kind = 'note' AND ref_id = old.id;
END;

CREATE TRIGGER customers_search_ai AFTER INSERT ON customers
    WHEN coalesce(new.name, '') != '' OR coalesce(new.email, '') != '' BEGIN
  INSERT INTO search_refs(kind, ref_id, workspace_id) VALUES ('customer', new.id, new.workspace_id);
  INSERT INTO customer_text(rowid, body)
    SELECT id, concat_ws(' ', new.name, new.email) FROM search_refs WHERE kind = 'customer' AND ref_id = new.id;
END;
CREATE TRIGGER customers_search_au AFTER UPDATE OF name, email ON customers BEGIN
  DELETE FROM customer_text WHERE rowid = (SELECT id FROM search_refs WHERE kind = 'customer' AND ref_id = old.id);
  DELETE FROM search_refs WHERE kind = 'customer' AND ref_id = old.id;
  INSERT INTO search_refs(kind, ref_id, workspace_id)
    SELECT 'customer', new.id, new.workspace_id WHERE coalesce(new.name, '') != '' OR coalesce(new.email, '') != '';
  INSERT INTO customer_text(rowid, body)
    SELECT id, concat_ws(' ', new.name, new.email) FROM search_refs WHERE kind = 'customer' AND ref_id = new.id;
END;
CREATE TRIGGER customers_search_ad AFTER DELETE ON customers BEGIN
  DELETE FROM customer_text WHERE rowid = (SELECT id FROM search_refs WHERE kind = 'customer' AND ref_id = old.id);
  DELETE FROM search_refs WHERE kind = 'customer' AND ref_id = old.id;
END;

INSERT INTO search_refs(kind, ref_id, workspace_id, conversation_id)
  SELECT kind, ref_id, workspace_id, conversation_id FROM (
    SELECT 'message' AS kind, m.id AS ref_id, c.workspace_id, c.id AS conversation_id, m.created_at
      FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE m.deleted_at IS NULL
    UNION ALL
    SELECT 'note', n.id, c.workspace_id, c.id, n.created_at
      FROM internal_notes n JOIN conversations c ON c.id = n.conversation_id WHERE n.deleted_at IS NULL)
  ORDER BY created_at;
INSERT INTO conversation_text(rowid, body)
  SELECT r.id, m.content FROM search_refs r JOIN messages m ON m.id = r.ref_id WHERE r.kind = 'message'
  UNION ALL
  SELECT r.id, n.content FROM search_refs r JOIN internal_notes n ON n.id = r.ref_id WHERE r.kind = 'note';
INSERT INTO search_refs(kind, ref_id, workspace_id)
  SELECT 'customer', id, workspace_id FROM customers WHERE coalesce(name, '') != '' OR coalesce(email, '') != ''
  ORDER BY created_at;
INSERT INTO customer_text(rowid, body)
  SELECT r.id, concat_ws(' ', c.name, c.email) FROM search_refs r JOIN customers c ON c.id = r.ref_id
  WHERE r.kind = 'customer';
"""

# Saved filters (PRD §5.3.4) belong to the user who saved them; canned responses are shared by the workspace and
# found by their shortcut after "/"; read markers say up to when a console user has read a conversation (the
# inbox's unread highlight); notifications are per user (mentions, escalations, assignments).
COLLABORATION_SCHEMA = f"""
CREATE TABLE conversation_filters (
  id TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  filters TEXT NOT NULL DEFAULT '{{}}' CHECK (json_valid(filters)),
  is_default INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL DEFAULT {NOW},
  updated_at TEXT NOT NULL DEFAULT {NOW}
);
CREATE UNIQUE INDEX idx_conversation_filters_name ON conversation_filters(user_id, name COLLATE NOCASE);

CREATE TABLE canned_responses (
  id TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  shortcut TEXT NOT NULL,
  title TEXT NOT NULL,
  content TEXT NOT NULL,
  created_by TEXT REFERENCES users(id) ON DELETE SET NULL,
  created_at TEXT NOT NULL DEFAULT {NOW},
  updated_at TEXT NOT NULL DEFAULT {NOW}
);
CREATE UNIQUE INDEX idx_canned_responses_shortcut ON canned_responses(workspace_id, shortcut COLLATE NOCASE);

CREATE TABLE conversation_reads (
  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
  read_at TEXT NOT NULL,
  PRIMARY KEY (user_id, conversation_id)
) WITHOUT ROWID;
CREATE INDEX idx_conversation_reads_conversation ON conversation_reads(conversation_id);

CREATE TABLE notifications (
  id TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  kind TEXT NOT NULL CHECK (kind IN ('mention','escalation','assignment')),
  title TEXT NOT NULL,
  body TEXT NOT NULL DEFAULT '',
  conversation_id TEXT REFERENCES conversations(id) ON DELETE CASCADE,
  note_id TEXT REFERENCES internal_notes(id) ON DELETE CASCADE,
  actor_id TEXT REFERENCES users(id) ON DELETE SET NULL,
  read_at TEXT,
  created_at TEXT NOT NULL DEFAULT {NOW}
);
CREATE INDEX idx_notifications_user ON notifications(user_id, created_at DESC);
CREATE INDEX idx_notifications_unread ON notifications(user_id) WHERE read_at IS NULL;
"""

# Bulk exports (PRD §5.6.3) run as Huey jobs and write a file under DATA_DIR/exports; the row keeps its progress.
# ``updated_at`` moves with every batch written, so housekeeping can tell a job that died from one still running;
# ``expires_at`` is set at the request (seven days), so an export that never ran is cleaned up too.
EXPORTS_SCHEMA = f"""
CREATE TABLE exports (
  id TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
  requested_by TEXT REFERENCES users(id) ON DELETE SET NULL,
  kind TEXT NOT NULL DEFAULT 'conversations',
  format TEXT NOT NULL CHECK (format IN ('csv','json')),
  status TEXT NOT NULL DEFAULT 'processing' CHECK (status IN ('processing','completed','failed')),
  request TEXT NOT NULL DEFAULT '{{}}' CHECK (json_valid(request)),
  total INTEGER,
  done INTEGER NOT NULL DEFAULT 0,
  file_name TEXT,
  size INTEGER,
  error TEXT,
  created_at TEXT NOT NULL DEFAULT {NOW},
  started_at TEXT,
  updated_at TEXT NOT NULL DEFAULT {NOW},
  completed_at TEXT,
  expires_at TEXT NOT NULL
);
CREATE INDEX idx_exports_workspace ON exports(workspace_id, created_at DESC);
CREATE INDEX idx_exports_expires ON exports(expires_at);
"""

INBOX_SCHEMA = SEARCH_SCHEMA + COLLABORATION_SCHEMA + EXPORTS_SCHEMA
