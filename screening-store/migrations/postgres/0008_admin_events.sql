-- What admins did: every change and every look at patient data an admin page allows (a gateway
-- saved, a credential issued, a message resent, a payload shown), with who and when. Kept apart
-- from appointment events, which are the clinic's record.
CREATE TABLE admin_events (
    id          BIGSERIAL PRIMARY KEY,
    occurred_at TIMESTAMPTZ NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    subject     TEXT NOT NULL
);
CREATE INDEX admin_events_by_time ON admin_events (occurred_at);
