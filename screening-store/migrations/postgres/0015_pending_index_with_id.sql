-- The pending index names the tie-breaker too, so taking a gateway's oldest pending messages
-- (ORDER BY created_at, id) reads them from it in order. Without `id`, SQLite's planner chose the
-- index of all the gateway's messages instead and read every message the gateway ever had on each
-- take (issue 11: the outbox slowed as it grew).
DROP INDEX messages_pending;
CREATE INDEX messages_pending ON messages (gateway_id, created_at, id)
    WHERE delivered_at IS NULL AND confirmed_at IS NULL AND failed_at IS NULL;
