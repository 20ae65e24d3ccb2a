-- What the modalities reported (MPPS), and the reports still owed to the hub.
CREATE TABLE IF NOT EXISTS procedure_steps (
    mpps_uid TEXT PRIMARY KEY NOT NULL,
    -- The order it performs; NULL when the modality named an order this gateway does not hold.
    message_id TEXT,
    status TEXT NOT NULL,
    station_ae_title TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS procedure_reports (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    report TEXT NOT NULL,
    created_at TEXT NOT NULL,
    reported_at TEXT
);
CREATE INDEX IF NOT EXISTS procedure_reports_unreported ON procedure_reports (reported_at, id);
