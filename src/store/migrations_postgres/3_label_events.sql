-- 3: label changes are recorded as private `labeled` system messages.
ALTER TABLE messages DROP CONSTRAINT messages_event_check;
ALTER TABLE messages ADD CONSTRAINT messages_event_check
    CHECK (event IN ('closed', 'reopened', 'assigned', 'labeled'));
