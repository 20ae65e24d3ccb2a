-- Signed-in sessions of the web app, kept by the SHA-256 of their token (the cookie holds the token),
-- so signing out, removing an account or changing a role takes effect at once, on every instance.
CREATE TABLE web_sessions (
    token_hash TEXT PRIMARY KEY,
    user_id    UUID NOT NULL REFERENCES staff_users (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX web_sessions_expiry ON web_sessions (expires_at);
