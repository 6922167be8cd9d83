-- 6: email: the agents' choice, a visitor's opt-out, the server's signing secret, the
-- per-chat notification schedule and the durable outbox.
ALTER TABLE agents ADD COLUMN email_notifications BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE visitors ADD COLUMN mail_opt_out BOOLEAN NOT NULL DEFAULT FALSE;

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
