-- A staff account an admin disabled: it cannot sign in, and its sessions stop at once.
ALTER TABLE staff_users ADD COLUMN disabled_at TEXT;
