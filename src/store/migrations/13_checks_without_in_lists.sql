-- 13: the CHECKs of the tables written with every message compare one value at a time.
-- SQLite evaluates `x IN ('a', 'b', 'c')` (three or more constants) by building a temporary
-- table at each execution: two per message insert, one per mail schedule. SQLite cannot
-- change a CHECK in place, so both tables are rebuilt as migration 7 did: every message
-- keeps its seq and the AUTOINCREMENT high-water mark is carried over. (Foreign keys are
-- off while migrations run, so dropping `messages` does not cascade to `mentions`.)
CREATE TEMP TABLE messages_seq_mark AS
    SELECT seq FROM sqlite_sequence WHERE name = 'messages';

CREATE TABLE messages_v13 (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    chat_id    TEXT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    -- The CHECKs compare one value at a time: SQLite builds a temporary table for an IN
    -- list of three or more, at every insert (migration 13).
    sender     TEXT NOT NULL CHECK (sender = 'visitor' OR sender = 'agent' OR sender = 'system'),
    author_id  TEXT,                              -- visitor or agent id; NULL for system
    body       TEXT NOT NULL,
    client_id  TEXT,
    event      TEXT CHECK (event = 'closed' OR event = 'reopened' OR event = 'assigned'
                           OR event = 'labeled'),   -- 'labeled': migration 7
    created_at TEXT NOT NULL,
    attachment_id TEXT REFERENCES attachments (id),
    private    INTEGER NOT NULL DEFAULT 0         -- a note for agents only (migration 6)
);
INSERT INTO messages_v13 (seq, id, chat_id, sender, author_id, body, client_id, event,
                          created_at, attachment_id, private)
    SELECT seq, id, chat_id, sender, author_id, body, client_id, event,
           created_at, attachment_id, private
    FROM messages;
-- Dropping the table drops its indexes and trigger; the FTS index is keyed by seq and
-- stays valid.
DROP TABLE messages;
ALTER TABLE messages_v13 RENAME TO messages;

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
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages
WHEN old.event IS NULL AND old.seq <= (SELECT COALESCE(MAX(id), 0) FROM messages_fts_docsize)
BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', old.seq, old.body);
END;

CREATE TABLE mail_schedule_v13 (
    chat_id      TEXT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    side         TEXT NOT NULL CHECK (side = 'agents' OR side = 'visitor' OR side = 'transcript'),
    due_at       INTEGER,
    notified_seq INTEGER NOT NULL DEFAULT 0,
    hour_start   INTEGER NOT NULL DEFAULT 0,
    hour_count   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (chat_id, side)
) WITHOUT ROWID;
INSERT INTO mail_schedule_v13 SELECT chat_id, side, due_at, notified_seq, hour_start, hour_count
    FROM mail_schedule;
DROP TABLE mail_schedule;
ALTER TABLE mail_schedule_v13 RENAME TO mail_schedule;
CREATE INDEX mail_schedule_due ON mail_schedule (due_at) WHERE due_at IS NOT NULL;
