-- The gateway agent's durable inbox: every message is stored here before it is forwarded, so a crash
-- loses nothing and a redelivered message id is never forwarded twice.
CREATE TABLE inbox (
    message_id      TEXT PRIMARY KEY,
    message_type    TEXT NOT NULL,
    message         TEXT NOT NULL,      -- the wire message as received (JSON)
    received_at     TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    forwarded_at    TEXT,
    failed_at       TEXT,
    last_error      TEXT,
    reported_at     TEXT                -- when the hub acknowledged the confirmation or failure
);
CREATE INDEX inbox_to_forward ON inbox (next_attempt_at) WHERE forwarded_at IS NULL AND failed_at IS NULL;
CREATE INDEX inbox_to_report ON inbox (received_at)
    WHERE reported_at IS NULL AND (forwarded_at IS NOT NULL OR failed_at IS NOT NULL);
