-- What the agent's heartbeat says of its relay listener (connected or not, and since when the
-- hub has heard so) and of the worklist it serves (when a modality last queried it), for the
-- alerts "relay listener absent" and "worklist not queried by the first slot".
ALTER TABLE gateways ADD COLUMN relay_listener_connected BOOLEAN;
ALTER TABLE gateways ADD COLUMN relay_listener_since TIMESTAMPTZ;
ALTER TABLE gateways ADD COLUMN worklist_served BOOLEAN;
ALTER TABLE gateways ADD COLUMN worklist_queried_at TIMESTAMPTZ;
