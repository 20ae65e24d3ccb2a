-- What the modality reported of the order (MPPS through the gateway): shown on the clinic page.
ALTER TABLE messages ADD COLUMN procedure_status TEXT;
ALTER TABLE messages ADD COLUMN procedure_at TEXT;
ALTER TABLE messages ADD COLUMN procedure_station TEXT;
ALTER TABLE messages ADD COLUMN procedure_reason TEXT;
