-- Health proven by traffic: one echo at a time per gateway, and what the last one proved. An echo
-- travels the path orders take (long-poll answer or relay rendezvous) and is answered, never
-- forwarded. Kept on the gateway's row, so echoes every few minutes never grow a table.
ALTER TABLE gateways ADD COLUMN echo_id UUID;
ALTER TABLE gateways ADD COLUMN echo_requested_at TIMESTAMPTZ;
ALTER TABLE gateways ADD COLUMN echo_requested_by TEXT;
ALTER TABLE gateways ADD COLUMN echo_lease_expires_at TIMESTAMPTZ;
ALTER TABLE gateways ADD COLUMN echo_answered_at TIMESTAMPTZ;
ALTER TABLE gateways ADD COLUMN echo_proven_at TIMESTAMPTZ;
ALTER TABLE gateways ADD COLUMN echo_round_trip_ms BIGINT;
ALTER TABLE gateways ADD COLUMN echo_error TEXT;
