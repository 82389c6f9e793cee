-- The portal's people: who may sign in, their sessions, and failed sign-ins (for the lock-out).
-- Emails are stored lowercased, so each address has one account whatever case it is typed in.

CREATE TABLE portal_users (
    id             INTEGER PRIMARY KEY,
    email          TEXT NOT NULL UNIQUE,
    role           TEXT NOT NULL CHECK (role IN ('merchant', 'partner', 'operator')),
    merchant_id    INTEGER REFERENCES merchants(id),
    partner_id     INTEGER REFERENCES partners(id),
    -- A PHC string (Argon2id); the store never sees a password.
    password_hash  TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    CHECK ((role = 'merchant') = (merchant_id IS NOT NULL)),
    CHECK ((role = 'partner') = (partner_id IS NOT NULL))
);

-- Only the SHA-256 of a session token is kept: a copy of the database signs nobody in.
CREATE TABLE portal_sessions (
    token_hash  BLOB PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES portal_users(id),
    csrf_token  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);
CREATE INDEX portal_sessions_by_user ON portal_sessions (user_id);

CREATE TABLE portal_sign_in_failures (
    email    TEXT PRIMARY KEY,
    count    INTEGER NOT NULL,
    last_at  TEXT NOT NULL
);
