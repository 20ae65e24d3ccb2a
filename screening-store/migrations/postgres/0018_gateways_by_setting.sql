-- A setting's gateways, in the order "Send to modality" chooses among them, read from an index:
-- every send reads them (with its appointment, in one statement), and without this index SQLite
-- read every gateway of every setting, ten thousand on a large instance (issue 11).
CREATE INDEX gateways_by_setting ON gateways (setting_id, created_at, id);
