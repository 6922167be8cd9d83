-- 2: the agents' tools: private notes, labels, canned responses, full-text search.
ALTER TABLE messages ADD COLUMN private BOOLEAN NOT NULL DEFAULT FALSE;

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
-- language), kept by PostgreSQL itself with each row, indexed for the visible messages.
CREATE EXTENSION IF NOT EXISTS unaccent;
CREATE FUNCTION parley_unaccent(text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    RETURN unaccent('unaccent'::regdictionary, $1);
ALTER TABLE messages ADD COLUMN search tsvector
    GENERATED ALWAYS AS (to_tsvector('simple', parley_unaccent(body))) STORED;
CREATE INDEX messages_search ON messages USING gin (search) WHERE event IS NULL;
