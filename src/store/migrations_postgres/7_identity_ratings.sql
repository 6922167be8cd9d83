-- 7: visitors identified by the host site, and the visitors' ratings of closed chats.
ALTER TABLE visitors ADD COLUMN external_id TEXT;
CREATE UNIQUE INDEX visitors_by_external_id ON visitors (external_id)
    WHERE external_id IS NOT NULL;

CREATE TABLE chat_ratings (
    chat_id    TEXT PRIMARY KEY REFERENCES chats (id) ON DELETE CASCADE,
    rating     BIGINT NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comment    TEXT,
    agent_id   TEXT REFERENCES agents (id),
    created_at TEXT NOT NULL
);
CREATE INDEX chat_ratings_by_agent ON chat_ratings (agent_id);
