-- The mail outbox: e-mails waiting to be delivered, written in the same transaction as the change
-- they tell of, so a mail exists exactly when its change does. The server's sender delivers them
-- over SMTP and marks each sent once the SMTP server has accepted it; rows are kept afterwards as
-- the record of what was sent. Times are wire-form text, which sorts as time does.
CREATE TABLE mail_outbox (
    id              INTEGER PRIMARY KEY,
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL, -- plain text
    created_at      TEXT NOT NULL,
    -- Delivery attempts begun (counted when a sender claims the mail).
    attempts        INTEGER NOT NULL DEFAULT 0,
    -- Not to be tried before this; a failure moves it on by the backoff.
    next_attempt_at TEXT NOT NULL,
    -- The latest attempt's start and, if it failed, why (for the operator).
    last_attempt_at TEXT,
    last_error      TEXT,
    sent_at         TEXT,
    -- The sender process that claimed the mail, and until when: another process may claim it
    -- only after that, so processes sharing the database do not send one mail together.
    claimed_by      TEXT,
    claimed_until   TEXT
);
-- The mails waiting, in the order they fall due: what senders claim and the operator lists.
CREATE INDEX mail_outbox_pending ON mail_outbox (next_attempt_at, id) WHERE sent_at IS NULL;
