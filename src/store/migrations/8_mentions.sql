-- 8: @mentions in private notes, one row per mentioned agent until it reads the chat.
CREATE TABLE mentions (
    message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    chat_id    TEXT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    agent_id   TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    PRIMARY KEY (message_id, agent_id)
) WITHOUT ROWID;
CREATE INDEX mentions_by_agent ON mentions (agent_id, chat_id, seq);
CREATE INDEX mentions_by_chat ON mentions (chat_id);
