-- Every echo's outcome, for the gateway's echo history: when it was asked for and by whom, when
-- it was answered, and its round trip or why not. An echo replaced before any answer came is
-- recorded as unanswered. Operational, not clinical: pruned after the payload period.
CREATE TABLE echo_events (
    id            BIGSERIAL PRIMARY KEY,
    gateway_id    UUID NOT NULL,
    echo_id       UUID NOT NULL,
    requested_at  TIMESTAMPTZ NOT NULL,
    requested_by  TEXT NOT NULL,
    answered_at   TIMESTAMPTZ,
    round_trip_ms BIGINT,
    error         TEXT
);
CREATE INDEX echo_events_by_gateway ON echo_events (gateway_id, id);
