-- Every echo's outcome, for the gateway's echo history: when it was asked for and by whom, when
-- it was answered, and its round trip or why not. An echo replaced before any answer came is
-- recorded as unanswered. Operational, not clinical: pruned after the payload period.
CREATE TABLE echo_events (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    gateway_id    BLOB NOT NULL,
    echo_id       BLOB NOT NULL,
    requested_at  TEXT NOT NULL,
    requested_by  TEXT NOT NULL,
    answered_at   TEXT,
    round_trip_ms INTEGER,
    error         TEXT
);
CREATE INDEX echo_events_by_gateway ON echo_events (gateway_id, id);
