-- 2: attachments, stored in the database so the SQLite file stays the one thing to back up.
CREATE TABLE attachments (
    id           TEXT PRIMARY KEY,
    chat_id      TEXT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    size         INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    data         BLOB NOT NULL,
    created_at   TEXT NOT NULL
);
CREATE INDEX attachments_by_chat ON attachments (chat_id);
ALTER TABLE messages ADD COLUMN attachment_id TEXT REFERENCES attachments (id);
