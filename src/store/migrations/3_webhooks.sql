-- Migration 3 (v2 -> v3): outgoing webhooks and their durable delivery queue.
-- Folded into schema.sql too; keep both the same.

-- Outgoing webhooks (migration 2). `events` is a comma-separated list of event names;
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
