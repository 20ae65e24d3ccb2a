-- What the gateway agent last reported about itself (the admin's "last seen" and health columns).
ALTER TABLE gateways ADD COLUMN agent_version TEXT;
ALTER TABLE gateways ADD COLUMN agent_uptime_seconds INTEGER;
ALTER TABLE gateways ADD COLUMN inbox_depth INTEGER;
