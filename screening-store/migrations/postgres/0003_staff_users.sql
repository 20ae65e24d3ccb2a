-- The staff who sign in to the web app. Passwords are stored only as argon2 PHC strings.
CREATE TABLE staff_users (
    id            UUID PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('staff', 'admin')),
    password_hash TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL
);
-- The admin lists messages newest first, filtered by gateway.
CREATE INDEX messages_by_gateway ON messages (gateway_id, created_at);
