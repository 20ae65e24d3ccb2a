-- PostgreSQL schema: the same tables as SQLite with native UUID, DATE and TIMESTAMPTZ types.
CREATE TABLE providers (
    id       UUID PRIMARY KEY,
    name     TEXT NOT NULL,
    ods_code TEXT NOT NULL
);

CREATE TABLE settings (
    id          UUID PRIMARY KEY,
    provider_id UUID NOT NULL REFERENCES providers (id),
    name        TEXT NOT NULL
);

CREATE TABLE participants (
    id            UUID PRIMARY KEY,
    nhs_number    TEXT NOT NULL UNIQUE,
    first_name    TEXT NOT NULL,
    last_name     TEXT NOT NULL,
    date_of_birth DATE NOT NULL,
    sex           TEXT NOT NULL
);

CREATE TABLE clinics (
    id          UUID PRIMARY KEY,
    setting_id  UUID NOT NULL REFERENCES settings (id),
    clinic_date DATE NOT NULL,
    name        TEXT NOT NULL
);

CREATE TABLE clinic_slots (
    id               UUID PRIMARY KEY,
    clinic_id        UUID NOT NULL REFERENCES clinics (id),
    starts_at        TIMESTAMPTZ NOT NULL,
    duration_minutes BIGINT NOT NULL
);

CREATE TABLE appointments (
    id             UUID PRIMARY KEY,
    clinic_slot_id UUID NOT NULL UNIQUE REFERENCES clinic_slots (id),
    participant_id UUID NOT NULL REFERENCES participants (id),
    state          TEXT NOT NULL,
    version        BIGINT NOT NULL
);

CREATE TABLE appointment_events (
    id             BIGSERIAL PRIMARY KEY,
    appointment_id UUID NOT NULL REFERENCES appointments (id),
    action         TEXT NOT NULL,
    from_state     TEXT NOT NULL,
    to_state       TEXT NOT NULL,
    at             TIMESTAMPTZ NOT NULL,
    actor          TEXT NOT NULL
);
CREATE INDEX appointment_events_by_appointment ON appointment_events (appointment_id, id);

CREATE TABLE gateways (
    id                      UUID PRIMARY KEY,
    name                    TEXT NOT NULL,
    setting_id              UUID NOT NULL REFERENCES settings (id),
    transport               TEXT NOT NULL CHECK (transport IN ('polling', 'relay')),
    relay_namespace         TEXT,
    relay_hybrid_connection TEXT,
    relay_key_name          TEXT,
    relay_key_ref           TEXT,
    credential_hash         TEXT,
    last_seen_at            TIMESTAMPTZ,
    created_at              TIMESTAMPTZ NOT NULL
);

CREATE TABLE gateway_routes (
    gateway_id   UUID NOT NULL REFERENCES gateways (id) ON DELETE CASCADE,
    message_type TEXT NOT NULL,
    destination  TEXT NOT NULL,
    PRIMARY KEY (gateway_id, message_type)
);

CREATE TABLE messages (
    id               UUID PRIMARY KEY,
    gateway_id       UUID NOT NULL REFERENCES gateways (id),
    participant_id   UUID NOT NULL REFERENCES participants (id),
    appointment_id   UUID NOT NULL REFERENCES appointments (id),
    message_type     TEXT NOT NULL,
    payload          TEXT NOT NULL,
    destination      TEXT NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    delivered_at     TIMESTAMPTZ,
    lease_expires_at TIMESTAMPTZ,
    confirmed_at     TIMESTAMPTZ,
    failed_at        TIMESTAMPTZ,
    attempts         BIGINT NOT NULL DEFAULT 0,
    last_error       TEXT,
    resend_of        UUID REFERENCES messages (id)
);
CREATE INDEX messages_pending ON messages (gateway_id, created_at)
    WHERE delivered_at IS NULL AND confirmed_at IS NULL AND failed_at IS NULL;
CREATE INDEX messages_leased ON messages (lease_expires_at)
    WHERE delivered_at IS NOT NULL AND confirmed_at IS NULL AND failed_at IS NULL;
CREATE INDEX messages_by_appointment ON messages (appointment_id, created_at);
