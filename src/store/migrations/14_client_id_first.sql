-- 14: the idempotency index is led by client_id. The web UI's ids start with the time in
-- milliseconds, so consecutive sends from any chat insert next to each other at the index's
-- right end; led by chat_id, every send dirtied a leaf of its own chat (one more WAL page per
-- send in a busy commit). The same columns stay unique, so no row can conflict here.
DROP INDEX messages_by_client_id;
CREATE UNIQUE INDEX messages_by_client_id ON messages (client_id, chat_id, author_id)
    WHERE client_id IS NOT NULL;
