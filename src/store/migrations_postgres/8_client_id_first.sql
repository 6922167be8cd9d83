-- 8: the idempotency index is led by client_id. The web UI's ids start with the time in
-- milliseconds, so inserts land at the index's right end instead of in one page per chat.
-- The same columns stay unique, so no row can conflict here.
DROP INDEX messages_by_client_id;
CREATE UNIQUE INDEX messages_by_client_id ON messages (client_id, chat_id, author_id)
    WHERE client_id IS NOT NULL;
