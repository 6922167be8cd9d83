-- 7: label changes are recorded as private `labeled` system messages. SQLite cannot change
-- a CHECK constraint in place, so `messages` is rebuilt: every row keeps its seq, and the
-- AUTOINCREMENT high-water mark is carried over so no seq is ever handed out twice.
CREATE TEMP TABLE messages_seq_mark AS
    SELECT seq FROM sqlite_sequence WHERE name = 'messages';

CREATE TABLE messages_v7 (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    chat_id    TEXT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    sender     TEXT NOT NULL CHECK (sender IN ('visitor', 'agent', 'system')),
    author_id  TEXT,
    body       TEXT NOT NULL,
    client_id  TEXT,
    event      TEXT CHECK (event IN ('closed', 'reopened', 'assigned', 'labeled')),
    created_at TEXT NOT NULL,
    attachment_id TEXT REFERENCES attachments (id),
    private    INTEGER NOT NULL DEFAULT 0
);
INSERT INTO messages_v7 (seq, id, chat_id, sender, author_id, body, client_id, event,
                         created_at, attachment_id, private)
    SELECT seq, id, chat_id, sender, author_id, body, client_id, event,
           created_at, attachment_id, private
    FROM messages;
-- Dropping the table drops its indexes and the search triggers; the FTS index itself is
-- keyed by seq and stays valid.
DROP TABLE messages;
ALTER TABLE messages_v7 RENAME TO messages;

INSERT INTO sqlite_sequence (name, seq)
    SELECT 'messages', 0
    WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'messages');
UPDATE sqlite_sequence
    SET seq = max(seq, coalesce((SELECT seq FROM messages_seq_mark), 0))
    WHERE name = 'messages';
DROP TABLE messages_seq_mark;

CREATE INDEX messages_by_chat ON messages (chat_id, seq);
CREATE UNIQUE INDEX messages_by_client_id ON messages (chat_id, author_id, client_id)
    WHERE client_id IS NOT NULL;
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages WHEN new.event IS NULL BEGIN
    INSERT INTO messages_fts (rowid, body) VALUES (new.seq, new.body);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages WHEN old.event IS NULL BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', old.seq, old.body);
END;
