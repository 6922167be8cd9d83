-- 5: a counter that every out-of-band revocation (the CLI disabling an agent or resetting a
-- password) moves, so a running server drops its cached sessions within seconds.
CREATE TABLE session_epoch (epoch INTEGER NOT NULL);
INSERT INTO session_epoch VALUES (0);
