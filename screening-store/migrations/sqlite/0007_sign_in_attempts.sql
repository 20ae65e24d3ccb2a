-- Sign-in attempts counted per username and per client address, in the database so that every
-- instance sees the same counts and memory cannot be exhausted by made-up usernames. A row lives
-- for one window from its first attempt; expired rows are deleted as new attempts arrive.
CREATE TABLE sign_in_attempts (
    key               TEXT PRIMARY KEY,
    window_started_at TEXT NOT NULL,
    attempts          INTEGER NOT NULL
);
CREATE INDEX sign_in_attempts_by_window ON sign_in_attempts (window_started_at);
