-- The schema as version 1 shipped it: the starting point of the migration test.
-- Parley's tables. The server applies this file on an empty database and records
-- its version in PRAGMA user_version; later changes go in ordered migrations
-- (src/store/mod.rs) and are folded in here so this file stays the whole truth.

CREATE TABLE agents (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,           -- lower-cased
    name          TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'agent')),
    password_hash TEXT NOT NULL,                  -- argon2id PHC string
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL
);

CREATE TABLE visitors (
    id         TEXT PRIMARY KEY,
    name       TEXT,
    email      TEXT,
    page_url   TEXT,
    created_at TEXT NOT NULL
);

-- Bearer tokens. Only the SHA-256 of a token is stored; the token itself is shown once.
CREATE TABLE tokens (
    hash       BLOB PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('visitor', 'agent')),
    owner_id   TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT                               -- NULL: never
) WITHOUT ROWID;
CREATE INDEX tokens_by_owner ON tokens (owner_id);

CREATE TABLE chats (
    id               TEXT PRIMARY KEY,
    visitor_id       TEXT NOT NULL REFERENCES visitors (id) ON DELETE CASCADE,
    status           TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    assignee_id      TEXT REFERENCES agents (id),
    created_at       TEXT NOT NULL,
    last_seq         INTEGER NOT NULL DEFAULT 0,  -- seq of the chat's newest message
    last_message_at  TEXT,
    visitor_read_seq INTEGER NOT NULL DEFAULT 0,  -- read markers, only ever moved forward
    agent_read_seq   INTEGER NOT NULL DEFAULT 0,
    closed_at        TEXT
);
CREATE INDEX chats_by_visitor ON chats (visitor_id, status);
CREATE INDEX chats_by_activity ON chats (last_seq);

-- seq is the rowid: AUTOINCREMENT keeps it from ever being reused after deletions, and
-- since every write runs in one writer's BEGIN IMMEDIATE transaction, seq order is commit order.
CREATE TABLE messages (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    chat_id    TEXT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    sender     TEXT NOT NULL CHECK (sender IN ('visitor', 'agent', 'system')),
    author_id  TEXT,                              -- visitor or agent id; NULL for system
    body       TEXT NOT NULL,
    client_id  TEXT,
    event      TEXT CHECK (event IN ('closed', 'reopened', 'assigned')),
    created_at TEXT NOT NULL
);
CREATE INDEX messages_by_chat ON messages (chat_id, seq);
-- Idempotency: one message per (chat, author, client_id).
CREATE UNIQUE INDEX messages_by_client_id ON messages (chat_id, author_id, client_id)
    WHERE client_id IS NOT NULL;
