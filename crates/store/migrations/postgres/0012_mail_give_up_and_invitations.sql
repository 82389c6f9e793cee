-- A mail the sender gave up on: a permanent refusal by the SMTP server (a 5xx answer) or
-- transient failures for longer than the configured give-up time. failed_at says when; such a
-- mail is not claimed again until the operator retries it (`admin outbox retry`), which clears
-- failed_at and starts a new give-up period at trying_since (NULL: since created_at).
ALTER TABLE mail_outbox ADD COLUMN failed_at TEXT;
ALTER TABLE mail_outbox ADD COLUMN trying_since TEXT;

-- An access request made by answering a partner's invitation link carries the link's nonce:
-- each merchant answers a link once, however often it opens it.
ALTER TABLE access_requests ADD COLUMN invitation TEXT;
CREATE UNIQUE INDEX access_requests_invitation ON access_requests (merchant_id, invitation)
    WHERE invitation IS NOT NULL;
