-- Alerts that open and resolve: at most one open alert per rule and gateway (the partial unique
-- index, which also keeps two instances from opening the same alert twice). Each opening and
-- resolution is an alert event, kept as history; the event is also the webhook's queue entry.
CREATE TABLE alerts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    rule        TEXT NOT NULL,
    gateway_id  BLOB NOT NULL REFERENCES gateways (id),
    setting_id  BLOB NOT NULL REFERENCES settings (id),
    summary     TEXT NOT NULL,
    since       TEXT NOT NULL,
    opened_at   TEXT NOT NULL,
    resolved_at TEXT
);
CREATE UNIQUE INDEX alerts_open_once ON alerts (rule, gateway_id) WHERE resolved_at IS NULL;
CREATE INDEX alerts_by_opening ON alerts (opened_at);

CREATE TABLE alert_events (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id         INTEGER NOT NULL REFERENCES alerts (id),
    kind             TEXT NOT NULL CHECK (kind IN ('opened', 'resolved')),
    occurred_at      TEXT NOT NULL,
    webhook_status   TEXT NOT NULL CHECK (webhook_status IN ('none', 'pending', 'sent')),
    webhook_attempts INTEGER NOT NULL DEFAULT 0,
    webhook_next_at  TEXT,
    webhook_error    TEXT,
    webhook_sent_at  TEXT
);
CREATE INDEX alert_events_by_alert ON alert_events (alert_id, id);
CREATE INDEX alert_events_to_send ON alert_events (id) WHERE webhook_status = 'pending';
