-- Parley's tables on PostgreSQL: the same tables, columns and meanings as schema.sql
-- (read that file for the comments on each), in PostgreSQL's types. A server applies
-- this file to an empty database and records the version in parley_schema; later changes
-- go in ordered migrations (src/store/migrations_postgres/) and are folded in here.

CREATE TABLE agents (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'agent')),
    password_hash TEXT NOT NULL,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    TEXT NOT NULL,
    -- Set by the agent; it counts as present only while also making requests.
    availability  TEXT NOT NULL DEFAULT 'online' CHECK (availability IN ('online', 'away')),
    -- Its latest request, written at most every few seconds per agent (see services::presence).
    last_seen_at  TEXT,
    email_notifications BOOLEAN NOT NULL DEFAULT TRUE
);

CREATE TABLE visitors (
    id         TEXT PRIMARY KEY,
    name       TEXT,
    email      TEXT,
    page_url   TEXT,
    created_at TEXT NOT NULL,
    context    TEXT,                             -- JSON: the latest VisitorContext
    mail_opt_out BOOLEAN NOT NULL DEFAULT FALSE,
    external_id TEXT
);
CREATE UNIQUE INDEX visitors_by_external_id ON visitors (external_id)
    WHERE external_id IS NOT NULL;

CREATE TABLE tokens (
    hash       BYTEA PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('visitor', 'agent')),
    owner_id   TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT
);
CREATE INDEX tokens_by_owner ON tokens (owner_id);

CREATE TABLE chats (
    id                 TEXT PRIMARY KEY,
    visitor_id         TEXT NOT NULL REFERENCES visitors (id) ON DELETE CASCADE,
    status             TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    assignee_id        TEXT REFERENCES agents (id),
    created_at         TEXT NOT NULL,
    last_seq           BIGINT NOT NULL DEFAULT 0,
    last_message_at    TEXT,
    visitor_read_seq   BIGINT NOT NULL DEFAULT 0,
    agent_read_seq     BIGINT NOT NULL DEFAULT 0,
    closed_at          TEXT,
    unread_for_agents  BIGINT NOT NULL DEFAULT 0,
    unread_for_visitor BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX chats_by_visitor ON chats (visitor_id, status);
CREATE INDEX chats_by_activity ON chats (last_seq);

-- The one counter every message seq comes from (see store::messages::next_seq): its row
-- lock, held to commit, makes seq order commit order across every instance.
CREATE TABLE seq_counter (value BIGINT NOT NULL);
INSERT INTO seq_counter VALUES (0);

CREATE TABLE attachments (
    id           TEXT PRIMARY KEY,
    chat_id      TEXT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    size         BIGINT NOT NULL,
    content_type TEXT NOT NULL,
    data         BYTEA NOT NULL,
    created_at   TEXT NOT NULL
);
CREATE INDEX attachments_by_chat ON attachments (chat_id);

CREATE TABLE messages (
    seq           BIGINT PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    chat_id       TEXT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    sender        TEXT NOT NULL CHECK (sender IN ('visitor', 'agent', 'system')),
    author_id     TEXT,
    body          TEXT NOT NULL,
    client_id     TEXT,
    event         TEXT CHECK (event IN ('closed', 'reopened', 'assigned', 'labeled')),
    created_at    TEXT NOT NULL,
    attachment_id TEXT REFERENCES attachments (id),
    private       BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX messages_by_chat ON messages (chat_id, seq);
-- Led by client_id: our clients' ids start with the time, so inserts land at one end.
CREATE UNIQUE INDEX messages_by_client_id ON messages (client_id, chat_id, author_id)
    WHERE client_id IS NOT NULL;

CREATE TABLE webhooks (
    id         TEXT PRIMARY KEY,
    url        TEXT NOT NULL,
    events     TEXT NOT NULL,
    secret     TEXT NOT NULL,
    disabled   BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TEXT NOT NULL
);

CREATE TABLE webhook_deliveries (
    seq             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    webhook_id      TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event           TEXT NOT NULL,
    chat_id         TEXT NOT NULL,
    payload         TEXT NOT NULL,
    enqueued_at     BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    delivered_at    BIGINT,
    failed_at       BIGINT,
    last_error      TEXT
);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (webhook_id, chat_id, seq)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX webhook_deliveries_by_enqueue ON webhook_deliveries (enqueued_at);

CREATE TABLE session_epoch (epoch BIGINT NOT NULL);
INSERT INTO session_epoch VALUES (0);

CREATE TABLE chat_labels (
    chat_id TEXT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    label   TEXT NOT NULL,
    PRIMARY KEY (chat_id, label)
);
CREATE INDEX chat_labels_by_label ON chat_labels (label, chat_id);

CREATE TABLE canned_responses (
    id         TEXT PRIMARY KEY,
    shortcut   TEXT NOT NULL UNIQUE,
    body       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- Search: words without accents or case ('simple' configuration: no stemming, any
-- language), kept by PostgreSQL itself with each row, indexed for people's messages.
CREATE EXTENSION IF NOT EXISTS unaccent;
CREATE FUNCTION parley_unaccent(text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    RETURN unaccent('unaccent'::regdictionary, $1);
ALTER TABLE messages ADD COLUMN search tsvector
    GENERATED ALWAYS AS (to_tsvector('simple', parley_unaccent(body))) STORED;
CREATE INDEX messages_search ON messages USING gin (search) WHERE event IS NULL;

-- @mentions in private notes (migration 4), one row per mentioned agent until it reads the chat.
CREATE TABLE mentions (
    message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    chat_id    TEXT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    agent_id   TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    seq        BIGINT NOT NULL,
    PRIMARY KEY (message_id, agent_id)
);
CREATE INDEX mentions_by_agent ON mentions (agent_id, chat_id, seq);
CREATE INDEX mentions_by_chat ON mentions (chat_id);

-- The team's settings, one JSON value per name (business_hours, away_message,
-- prechat; migration 5).
CREATE TABLE settings (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- Email (migration 6): see schema.sql for what each table is for.
CREATE TABLE server_secrets (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE mail_schedule (
    chat_id      TEXT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    side         TEXT NOT NULL CHECK (side IN ('agents', 'visitor', 'transcript')),
    due_at       BIGINT,
    notified_seq BIGINT NOT NULL DEFAULT 0,
    hour_start   BIGINT NOT NULL DEFAULT 0,
    hour_count   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (chat_id, side)
);
CREATE INDEX mail_schedule_due ON mail_schedule (due_at) WHERE due_at IS NOT NULL;

CREATE TABLE mail_outbox (
    seq             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    chat_id         TEXT REFERENCES chats (id) ON DELETE CASCADE,
    visitor_id      TEXT REFERENCES visitors (id) ON DELETE CASCADE,
    subject         TEXT NOT NULL,
    text_body       TEXT NOT NULL,
    html_body       TEXT NOT NULL,
    unsubscribe_url TEXT,
    enqueued_at     BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    sent_at         BIGINT,
    failed_at       BIGINT,
    last_error      TEXT
);
CREATE INDEX mail_outbox_pending ON mail_outbox (next_attempt_at)
    WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX mail_outbox_by_enqueue ON mail_outbox (enqueued_at);
CREATE INDEX mail_outbox_by_chat ON mail_outbox (chat_id);
CREATE INDEX mail_outbox_by_visitor ON mail_outbox (visitor_id);

CREATE TABLE chat_ratings (
    chat_id    TEXT PRIMARY KEY REFERENCES chats (id) ON DELETE CASCADE,
    rating     BIGINT NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comment    TEXT,
    agent_id   TEXT REFERENCES agents (id),
    created_at TEXT NOT NULL
);
CREATE INDEX chat_ratings_by_agent ON chat_ratings (agent_id);
