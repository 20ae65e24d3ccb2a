-- One trigger per lifecycle step, each with the columns it watches and a WHEN, in place of one
-- trigger that ran six INSERT ... SELECT ... WHERE for every row any UPDATE touched. A take or a
-- confirmation now runs only its own step's INSERT: the outbox bench's rounds cost SQLite 12% fewer
-- instructions (issue 11). What is recorded is unchanged; a test holds each step's event.
DROP TRIGGER message_events_on_update;

CREATE TRIGGER message_events_on_take AFTER UPDATE OF delivered_at ON messages
WHEN OLD.delivered_at IS NULL AND NEW.delivered_at IS NOT NULL AND NEW.confirmed_at IS NULL BEGIN
    INSERT INTO message_events (message_id, occurred_at, step, detail)
    VALUES (NEW.id, NEW.delivered_at, 'taken', 'attempt ' || NEW.attempts);
END;

CREATE TRIGGER message_events_on_return AFTER UPDATE OF delivered_at ON messages
WHEN OLD.delivered_at IS NOT NULL AND NEW.delivered_at IS NULL AND NEW.failed_at IS NULL BEGIN
    INSERT INTO message_events (message_id, occurred_at, step, detail)
    VALUES (NEW.id, strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now'), 'returned', NEW.last_error);
END;

CREATE TRIGGER message_events_on_confirm AFTER UPDATE OF confirmed_at ON messages
WHEN OLD.confirmed_at IS NULL AND NEW.confirmed_at IS NOT NULL BEGIN
    INSERT INTO message_events (message_id, occurred_at, step, detail)
    VALUES (NEW.id, NEW.confirmed_at, 'confirmed', NULL);
END;

CREATE TRIGGER message_events_on_fail AFTER UPDATE OF failed_at ON messages
WHEN OLD.failed_at IS NULL AND NEW.failed_at IS NOT NULL BEGIN
    INSERT INTO message_events (message_id, occurred_at, step, detail)
    VALUES (NEW.id, NEW.failed_at, 'failed', NEW.last_error);
END;

CREATE TRIGGER message_events_on_procedure AFTER UPDATE OF procedure_status ON messages
WHEN NEW.procedure_status IS NOT OLD.procedure_status AND NEW.procedure_status IS NOT NULL BEGIN
    INSERT INTO message_events (message_id, occurred_at, step, detail)
    VALUES (NEW.id, NEW.procedure_at, 'procedure',
            NEW.procedure_status || ' on ' || NEW.procedure_station);
END;

CREATE TRIGGER message_events_on_payload_removed AFTER UPDATE OF payload ON messages
WHEN OLD.payload <> '' AND NEW.payload = '' BEGIN
    INSERT INTO message_events (message_id, occurred_at, step, detail)
    VALUES (NEW.id, strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now'), 'payload_removed', NULL);
END;
