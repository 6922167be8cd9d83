-- 12: messages enter the search index once per write transaction, from the writer
-- (`store::search::index_after`), no longer by a trigger per row. FTS5 writes a new segment
-- at every savepoint, and the writer runs each job in one: the trigger cost a segment, its
-- merges and their WAL pages per message.
DROP TRIGGER messages_fts_insert;
DROP TRIGGER messages_fts_delete;
-- Only an indexed message may be taken out of the index ('delete' of a row FTS5 never saw
-- corrupts it). Indexed are exactly the messages up to the newest in `messages_fts_docsize`
-- (FTS5's own table of one row per indexed message), since they are indexed in seq order.
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages
WHEN old.event IS NULL AND old.seq <= (SELECT COALESCE(MAX(id), 0) FROM messages_fts_docsize)
BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', old.seq, old.body);
END;
