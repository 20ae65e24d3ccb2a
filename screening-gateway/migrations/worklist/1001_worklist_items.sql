-- The agent's DICOM Modality Worklist: one row per order (message), beside the inbox.
CREATE TABLE IF NOT EXISTS worklist_items (
    message_id TEXT PRIMARY KEY NOT NULL,
    accession_number TEXT NOT NULL,
    study_instance_uid TEXT NOT NULL,
    -- SCHEDULED, IN PROGRESS, COMPLETED or DISCONTINUED (DICOM's PerformedProcedureStepStatus words).
    status TEXT NOT NULL,
    start_date TEXT NOT NULL,
    item TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS worklist_items_by_accession ON worklist_items (accession_number);
CREATE INDEX IF NOT EXISTS worklist_items_open_by_date ON worklist_items (status, start_date);
CREATE INDEX IF NOT EXISTS worklist_items_by_study ON worklist_items (study_instance_uid);
