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
    created_at    TEXT NOT NULL,
    -- Set by the agent; it counts as present only while also making requests.
    availability  TEXT NOT NULL DEFAULT 'online' CHECK (availability IN ('online', 'away')),
    -- Its latest request, written at most every few seconds per agent (see services::presence).
    last_seen_at  TEXT,
    email_notifications INTEGER NOT NULL DEFAULT 1 -- mail about unread chats (migration 10)
);

CREATE TABLE visitors (
    id         TEXT PRIMARY KEY,
    name       TEXT,
    email      TEXT,
    page_url   TEXT,
    created_at TEXT NOT NULL,
    context    TEXT,                             -- JSON: the latest VisitorContext
    mail_opt_out INTEGER NOT NULL DEFAULT 0,     -- unsubscribed from email (migration 10)
    -- The host site's own id for a visitor it vouched for (identity verification,
    -- migration 11): one visitor per id, whichever device it comes from.
    external_id TEXT
);
CREATE UNIQUE INDEX visitors_by_external_id ON visitors (external_id)
    WHERE external_id IS NOT NULL;

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
    closed_at        TEXT,
    -- Kept with each message and read marker, so listing and polling never count rows.
    unread_for_agents  INTEGER NOT NULL DEFAULT 0, -- visitor messages after agent_read_seq
    unread_for_visitor INTEGER NOT NULL DEFAULT 0  -- agent messages after visitor_read_seq
);
CREATE INDEX chats_by_visitor ON chats (visitor_id, status);
CREATE INDEX chats_by_activity ON chats (last_seq);

-- seq is the rowid: AUTOINCREMENT keeps it from ever being reused after deletions, and
-- since every write runs in one writer's BEGIN IMMEDIATE transaction, seq order is commit order.
CREATE TABLE messages (
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
CREATE INDEX messages_by_chat ON messages (chat_id, seq);
-- Idempotency: one message per (chat, author, client_id). Led by client_id (migration 14):
-- our clients' ids start with the time, so new entries share the rightmost leaf instead of
-- dirtying one leaf per chat in every commit.
CREATE UNIQUE INDEX messages_by_client_id ON messages (client_id, chat_id, author_id)
    WHERE client_id IS NOT NULL;

-- Uploaded files live in the database too, so the SQLite file stays the one thing to back up.
CREATE TABLE attachments (
    id           TEXT PRIMARY KEY,
    chat_id      TEXT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    size         INTEGER NOT NULL,
    content_type TEXT NOT NULL,                   -- detected from the bytes, never the client's
    data         BLOB NOT NULL,
    created_at   TEXT NOT NULL
);
CREATE INDEX attachments_by_chat ON attachments (chat_id);

-- Outgoing webhooks (migration 3). `events` is a comma-separated list of event names;
-- `secret` is kept as is because every delivery is signed with it.
CREATE TABLE webhooks (
    id         TEXT PRIMARY KEY,
    url        TEXT NOT NULL,
    events     TEXT NOT NULL,
    secret     TEXT NOT NULL,
    disabled   INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);

-- The durable delivery queue. A row is enqueued in the same transaction as the change it
-- reports; `seq` is enqueue order, and the worker sends a (webhook, chat) pair's rows
-- strictly in that order. Times the worker compares are unix milliseconds.
CREATE TABLE webhook_deliveries (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE,       -- X-Parley-Delivery, and the payload's id
    webhook_id      TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event           TEXT NOT NULL,
    chat_id         TEXT NOT NULL,
    payload         TEXT NOT NULL,              -- the exact body that is sent and signed
    enqueued_at     INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    delivered_at    INTEGER,
    failed_at       INTEGER,                    -- given up after days of failures
    last_error      TEXT
);
-- The pending rows, by queue: the worker's "head of each queue" query reads only this.
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (webhook_id, chat_id, seq)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
-- Pruning of old finished rows.
CREATE INDEX webhook_deliveries_by_enqueue ON webhook_deliveries (enqueued_at);

-- Moved by every revocation made in a transaction (API or CLI): a running server that sees
-- it move drops its cached sessions, so a token revoked elsewhere stops working within
-- seconds.
CREATE TABLE session_epoch (epoch INTEGER NOT NULL);
INSERT INTO session_epoch VALUES (0);

-- The agents' tools (migration 6). A chat's labels, each 1-32 characters, at most 20.
CREATE TABLE chat_labels (
    chat_id TEXT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    label   TEXT NOT NULL,
    PRIMARY KEY (chat_id, label)
) WITHOUT ROWID;
CREATE INDEX chat_labels_by_label ON chat_labels (label, chat_id);

-- Canned responses: `shortcut` is what an agent types after `/`.
CREATE TABLE canned_responses (
    id         TEXT PRIMARY KEY,
    shortcut   TEXT NOT NULL UNIQUE,
    body       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- Full-text search over the bodies of people's messages (not system events): an
-- external-content FTS5 index. The writer indexes new messages a few times a second and
-- before each search (`store::search::index_after`), so a search finds every message stored
-- before it; the trigger takes deleted ones out. remove_diacritics makes "deja" find "déjà".
CREATE VIRTUAL TABLE messages_fts USING fts5 (
    body,
    content = 'messages',
    content_rowid = 'seq',
    tokenize = 'unicode61 remove_diacritics 2'
);
-- Only an indexed message may leave the index: those up to the newest in FTS5's docsize table.
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages
WHEN old.event IS NULL AND old.seq <= (SELECT COALESCE(MAX(id), 0) FROM messages_fts_docsize)
BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', old.seq, old.body);
END;

-- @mentions in private notes (migration 8), one row per mentioned agent until it reads the chat.
CREATE TABLE mentions (
    message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    chat_id    TEXT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    agent_id   TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    PRIMARY KEY (message_id, agent_id)
) WITHOUT ROWID;
CREATE INDEX mentions_by_agent ON mentions (agent_id, chat_id, seq);
CREATE INDEX mentions_by_chat ON mentions (chat_id);

-- The team's settings, one JSON value per name (business_hours, away_message,
-- prechat; migration 9).
CREATE TABLE settings (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- Email (migration 10). Secrets the server makes once and every instance shares (the key
-- that signs links in emails).
CREATE TABLE server_secrets (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- When to look at a chat's unread messages for one side ('agents', 'visitor'), and what
-- was mailed already; 'transcript' records the last transcript sent. `due_at` (unix ms) is
-- set in the transaction of the message that needs it, and cleared when the worker looks.
-- `hour_*` cap notifications per chat per hour.
CREATE TABLE mail_schedule (
    chat_id      TEXT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    side         TEXT NOT NULL CHECK (side = 'agents' OR side = 'visitor' OR side = 'transcript'),
    due_at       INTEGER,
    notified_seq INTEGER NOT NULL DEFAULT 0,
    hour_start   INTEGER NOT NULL DEFAULT 0,
    hour_count   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (chat_id, side)
) WITHOUT ROWID;
CREATE INDEX mail_schedule_due ON mail_schedule (due_at) WHERE due_at IS NOT NULL;

-- The durable outbox: each mail as it will be sent, written in the transaction of its
-- cause. Rows of a chat or visitor go with it (retention, erasure). Times are unix ms.
CREATE TABLE mail_outbox (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE,       -- the Message-ID's local part
    kind            TEXT NOT NULL,              -- agent_notification, visitor_notification, ...
    recipient       TEXT NOT NULL,
    chat_id         TEXT REFERENCES chats (id) ON DELETE CASCADE,
    visitor_id      TEXT REFERENCES visitors (id) ON DELETE CASCADE,
    subject         TEXT NOT NULL,
    text_body       TEXT NOT NULL,
    html_body       TEXT NOT NULL,
    unsubscribe_url TEXT,                       -- List-Unsubscribe, for visitor mail
    enqueued_at     INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,           -- also a sender's lease while it sends
    sent_at         INTEGER,
    failed_at       INTEGER,                    -- given up (a permanent refusal, or days of failures)
    last_error      TEXT
);
CREATE INDEX mail_outbox_pending ON mail_outbox (next_attempt_at)
    WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX mail_outbox_by_enqueue ON mail_outbox (enqueued_at);
CREATE INDEX mail_outbox_by_chat ON mail_outbox (chat_id);
CREATE INDEX mail_outbox_by_visitor ON mail_outbox (visitor_id);

-- A visitor's rating of its closed chat (migration 11), at most one per chat. `agent_id` is
-- the chat's assignee when it was rated: whose work the rating is about.
CREATE TABLE chat_ratings (
    chat_id    TEXT PRIMARY KEY REFERENCES chats (id) ON DELETE CASCADE,
    rating     INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comment    TEXT,
    agent_id   TEXT REFERENCES agents (id),
    created_at TEXT NOT NULL
);
CREATE INDEX chat_ratings_by_agent ON chat_ratings (agent_id);
