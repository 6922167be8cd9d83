-- 6: the agents' tools: private notes, labels, canned responses, full-text search.
ALTER TABLE messages ADD COLUMN private INTEGER NOT NULL DEFAULT 0;

CREATE TABLE chat_labels (
    chat_id TEXT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    label   TEXT NOT NULL,
    PRIMARY KEY (chat_id, label)
) WITHOUT ROWID;
CREATE INDEX chat_labels_by_label ON chat_labels (label, chat_id);

CREATE TABLE canned_responses (
    id         TEXT PRIMARY KEY,
    shortcut   TEXT NOT NULL UNIQUE,
    body       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE VIRTUAL TABLE messages_fts USING fts5 (
    body,
    content = 'messages',
    content_rowid = 'seq',
    tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO messages_fts (rowid, body) SELECT seq, body FROM messages WHERE event IS NULL;
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages WHEN new.event IS NULL BEGIN
    INSERT INTO messages_fts (rowid, body) VALUES (new.seq, new.body);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages WHEN old.event IS NULL BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', old.seq, old.body);
END;
