-- A message's whole history: each lifecycle step, written by a trigger in the same transaction as
-- the change itself, so every path that moves a message (the hub, the relay dispatcher, the lease
-- sweeper, a resend, retention) is recorded alike. `detail` says by whom or why: the member of
-- staff who sent it, the attempt, the reason it went back to the queue or failed, what the
-- modality reported. Times written by the trigger that has no time of its own are the database's.
CREATE TABLE message_events (
    id                 BIGSERIAL PRIMARY KEY,
    message_id         UUID NOT NULL,
    occurred_at        TIMESTAMPTZ NOT NULL,
    step               TEXT NOT NULL,
    detail             TEXT,
    related_message_id UUID
);
CREATE INDEX message_events_by_message ON message_events (message_id, id);

CREATE FUNCTION record_message_event() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO message_events (message_id, occurred_at, step, detail, related_message_id)
        VALUES (NEW.id, NEW.created_at, 'created',
                (SELECT e.actor FROM appointment_events e
                 WHERE e.appointment_id = NEW.appointment_id AND e.at = NEW.created_at
                 ORDER BY e.id DESC LIMIT 1),
                NEW.resend_of);
        IF NEW.resend_of IS NOT NULL THEN
            INSERT INTO message_events (message_id, occurred_at, step, related_message_id)
            VALUES (NEW.resend_of, NEW.created_at, 'resent', NEW.id);
        END IF;
        RETURN NULL;
    END IF;
    IF OLD.delivered_at IS NULL AND NEW.delivered_at IS NOT NULL AND NEW.confirmed_at IS NULL THEN
        INSERT INTO message_events (message_id, occurred_at, step, detail)
        VALUES (NEW.id, NEW.delivered_at, 'taken', 'attempt ' || NEW.attempts);
    END IF;
    IF OLD.delivered_at IS NOT NULL AND NEW.delivered_at IS NULL AND NEW.failed_at IS NULL THEN
        INSERT INTO message_events (message_id, occurred_at, step, detail)
        VALUES (NEW.id, now(), 'returned', NEW.last_error);
    END IF;
    IF OLD.confirmed_at IS NULL AND NEW.confirmed_at IS NOT NULL THEN
        INSERT INTO message_events (message_id, occurred_at, step)
        VALUES (NEW.id, NEW.confirmed_at, 'confirmed');
    END IF;
    IF OLD.failed_at IS NULL AND NEW.failed_at IS NOT NULL THEN
        INSERT INTO message_events (message_id, occurred_at, step, detail)
        VALUES (NEW.id, NEW.failed_at, 'failed', NEW.last_error);
    END IF;
    IF NEW.procedure_status IS DISTINCT FROM OLD.procedure_status AND NEW.procedure_status IS NOT NULL THEN
        INSERT INTO message_events (message_id, occurred_at, step, detail)
        VALUES (NEW.id, NEW.procedure_at, 'procedure', NEW.procedure_status || ' on ' || NEW.procedure_station);
    END IF;
    IF OLD.payload <> '' AND NEW.payload = '' THEN
        INSERT INTO message_events (message_id, occurred_at, step)
        VALUES (NEW.id, now(), 'payload_removed');
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER message_events_recorded AFTER INSERT OR UPDATE ON messages
    FOR EACH ROW EXECUTE FUNCTION record_message_event();
