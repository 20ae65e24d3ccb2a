-- A message's whole history: each lifecycle step, written by triggers in the same transaction as
-- the change itself, so every path that moves a message (the hub, the relay dispatcher, the lease
-- sweeper, a resend, retention) is recorded alike. `detail` says by whom or why: the member of
-- staff who sent it, the attempt, the reason it went back to the queue or failed, what the
-- modality reported. Times written by a trigger that has no time of its own are the database's.
CREATE TABLE message_events (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id         BLOB NOT NULL,
    occurred_at        TEXT NOT NULL,
    step               TEXT NOT NULL,
    detail             TEXT,
    related_message_id BLOB
);
CREATE INDEX message_events_by_message ON message_events (message_id, id);

CREATE TRIGGER message_events_on_insert AFTER INSERT ON messages BEGIN
    INSERT INTO message_events (message_id, occurred_at, step, detail, related_message_id)
    VALUES (NEW.id, NEW.created_at, 'created',
            (SELECT e.actor FROM appointment_events e
             WHERE e.appointment_id = NEW.appointment_id AND e.at = NEW.created_at
             ORDER BY e.id DESC LIMIT 1),
            NEW.resend_of);
    INSERT INTO message_events (message_id, occurred_at, step, detail, related_message_id)
    SELECT NEW.resend_of, NEW.created_at, 'resent', NULL, NEW.id WHERE NEW.resend_of IS NOT NULL;
END;

CREATE TRIGGER message_events_on_update AFTER UPDATE ON messages BEGIN
    INSERT INTO message_events (message_id, occurred_at, step, detail)
    SELECT NEW.id, NEW.delivered_at, 'taken', 'attempt ' || NEW.attempts
    WHERE OLD.delivered_at IS NULL AND NEW.delivered_at IS NOT NULL AND NEW.confirmed_at IS NULL;
    INSERT INTO message_events (message_id, occurred_at, step, detail)
    SELECT NEW.id, strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now'), 'returned', NEW.last_error
    WHERE OLD.delivered_at IS NOT NULL AND NEW.delivered_at IS NULL AND NEW.failed_at IS NULL;
    INSERT INTO message_events (message_id, occurred_at, step, detail)
    SELECT NEW.id, NEW.confirmed_at, 'confirmed', NULL
    WHERE OLD.confirmed_at IS NULL AND NEW.confirmed_at IS NOT NULL;
    INSERT INTO message_events (message_id, occurred_at, step, detail)
    SELECT NEW.id, NEW.failed_at, 'failed', NEW.last_error
    WHERE OLD.failed_at IS NULL AND NEW.failed_at IS NOT NULL;
    INSERT INTO message_events (message_id, occurred_at, step, detail)
    SELECT NEW.id, NEW.procedure_at, 'procedure', NEW.procedure_status || ' on ' || NEW.procedure_station
    WHERE NEW.procedure_status IS NOT OLD.procedure_status AND NEW.procedure_status IS NOT NULL;
    INSERT INTO message_events (message_id, occurred_at, step, detail)
    SELECT NEW.id, strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now'), 'payload_removed', NULL
    WHERE OLD.payload <> '' AND NEW.payload = '';
END;
