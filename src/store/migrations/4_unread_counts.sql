-- 4: unread counters kept on the chat, so listing and polling never count rows.
ALTER TABLE chats ADD COLUMN unread_for_agents INTEGER NOT NULL DEFAULT 0;
ALTER TABLE chats ADD COLUMN unread_for_visitor INTEGER NOT NULL DEFAULT 0;
UPDATE chats SET
    unread_for_agents = (SELECT COUNT(*) FROM messages m
        WHERE m.chat_id = chats.id AND m.sender = 'visitor' AND m.seq > chats.agent_read_seq),
    unread_for_visitor = (SELECT COUNT(*) FROM messages m
        WHERE m.chat_id = chats.id AND m.sender = 'agent' AND m.seq > chats.visitor_read_seq);
