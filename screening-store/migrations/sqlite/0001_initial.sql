-- Ids are UUIDs stored as 16-byte BLOBs; times are RFC 3339 UTC text, which sorts chronologically.
CREATE TABLE providers (
    id       BLOB PRIMARY KEY,
    name     TEXT NOT NULL,
    ods_code TEXT NOT NULL
);

CREATE TABLE settings (
    id          BLOB PRIMARY KEY,
    provider_id BLOB NOT NULL REFERENCES providers (id),
    name        TEXT NOT NULL
);

CREATE TABLE participants (
    id            BLOB PRIMARY KEY,
    nhs_number    TEXT NOT NULL UNIQUE,
    first_name    TEXT NOT NULL,
    last_name     TEXT NOT NULL,
    date_of_birth TEXT NOT NULL,
    sex           TEXT NOT NULL
);

CREATE TABLE clinics (
    id          BLOB PRIMARY KEY,
    setting_id  BLOB NOT NULL REFERENCES settings (id),
    clinic_date TEXT NOT NULL,
    name        TEXT NOT NULL
);

CREATE TABLE clinic_slots (
    id               BLOB PRIMARY KEY,
    clinic_id        BLOB NOT NULL REFERENCES clinics (id),
    starts_at        TEXT NOT NULL,
    duration_minutes INTEGER NOT NULL
);

CREATE TABLE appointments (
    id             BLOB PRIMARY KEY,
    clinic_slot_id BLOB NOT NULL UNIQUE REFERENCES clinic_slots (id),
    participant_id BLOB NOT NULL REFERENCES participants (id),
    state          TEXT NOT NULL,
    version        INTEGER NOT NULL
);

CREATE TABLE appointment_events (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    appointment_id BLOB NOT NULL REFERENCES appointments (id),
    action         TEXT NOT NULL,
    from_state     TEXT NOT NULL,
    to_state       TEXT NOT NULL,
    at             TEXT NOT NULL,
    actor          TEXT NOT NULL
);
CREATE INDEX appointment_events_by_appointment ON appointment_events (appointment_id, id);

CREATE TABLE gateways (
    id                      BLOB PRIMARY KEY,
    name                    TEXT NOT NULL,
    setting_id              BLOB NOT NULL REFERENCES settings (id),
    transport               TEXT NOT NULL CHECK (transport IN ('polling', 'relay')),
    relay_namespace         TEXT,
    relay_hybrid_connection TEXT,
    relay_key_name          TEXT,
    relay_key_ref           TEXT,
    credential_hash         TEXT,
    last_seen_at            TEXT,
    created_at              TEXT NOT NULL
);

CREATE TABLE gateway_routes (
    gateway_id   BLOB NOT NULL REFERENCES gateways (id) ON DELETE CASCADE,
    message_type TEXT NOT NULL,
    destination  TEXT NOT NULL,
    PRIMARY KEY (gateway_id, message_type)
);

CREATE TABLE messages (
    id               BLOB PRIMARY KEY,
    gateway_id       BLOB NOT NULL REFERENCES gateways (id),
    participant_id   BLOB NOT NULL REFERENCES participants (id),
    appointment_id   BLOB NOT NULL REFERENCES appointments (id),
    message_type     TEXT NOT NULL,
    payload          TEXT NOT NULL,
    destination      TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    delivered_at     TEXT,
    lease_expires_at TEXT,
    confirmed_at     TEXT,
    failed_at        TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT,
    resend_of        BLOB REFERENCES messages (id)
);
CREATE INDEX messages_pending ON messages (gateway_id, created_at)
    WHERE delivered_at IS NULL AND confirmed_at IS NULL AND failed_at IS NULL;
CREATE INDEX messages_leased ON messages (lease_expires_at)
    WHERE delivered_at IS NOT NULL AND confirmed_at IS NULL AND failed_at IS NULL;
CREATE INDEX messages_by_appointment ON messages (appointment_id, created_at);
