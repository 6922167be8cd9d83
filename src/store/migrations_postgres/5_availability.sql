-- 5: availability and business hours, the visitor's context.
ALTER TABLE agents ADD COLUMN availability TEXT NOT NULL DEFAULT 'online'
    CHECK (availability IN ('online', 'away'));
ALTER TABLE agents ADD COLUMN last_seen_at TEXT;
ALTER TABLE visitors ADD COLUMN context TEXT;

CREATE TABLE settings (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
