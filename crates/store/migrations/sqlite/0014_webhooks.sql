-- Domain events and their webhooks (Standard Webhooks).
--
-- domain_events is a transactional outbox: each event (a ledger date closed, a payout scheduled, a
-- grant created / changed / removed / expired, a partner approved / suspended) is written in the
-- same transaction as its change, so an event exists exactly when its change does. An event about
-- a ledger carries the ledger's next event sequence number (ledgers.event_seq, raised in that
-- transaction under the ledger row's lock), which orders a ledger's events without gaps.
ALTER TABLE ledgers ADD COLUMN event_seq INTEGER NOT NULL DEFAULT 0;

CREATE TABLE domain_events (
    id          INTEGER PRIMARY KEY,
    event_type  TEXT NOT NULL,
    ledger_id   TEXT,
    ledger_seq  INTEGER,
    -- The partner the event is about (a grant's grantee, a partner's own change).
    partner_id  INTEGER,
    -- The ledger date a date-closed event is about, for a grant limited to a period.
    ledger_date TEXT,
    -- The event's `data` as JSON text; what a webhook body carries.
    data        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    UNIQUE (ledger_id, ledger_seq)
);
CREATE INDEX domain_events_by_ledger ON domain_events (ledger_id, ledger_seq);

-- Where a merchant or a partner wants events delivered. The secrets sign deliveries and are kept
-- as the server seals them (encrypted with the key-encryption key when one is configured); during
-- a rotation the previous secret signs too until previous_secret_until.
CREATE TABLE webhook_endpoints (
    id                    INTEGER PRIMARY KEY,
    uid                   TEXT NOT NULL UNIQUE,
    merchant_id           INTEGER REFERENCES merchants(id),
    partner_id            INTEGER REFERENCES partners(id),
    url                   TEXT NOT NULL,
    -- The event types wanted, space separated, or '*' for every type.
    event_types           TEXT NOT NULL,
    secret                BLOB NOT NULL,
    previous_secret       BLOB,
    previous_secret_until TEXT,
    created_at            TEXT NOT NULL,
    disabled_at           TEXT,
    disabled_reason       TEXT,
    CHECK ((merchant_id IS NULL) <> (partner_id IS NULL))
);

-- One event for one endpoint, written with the event for every endpoint that may want it; whether
-- the owner may still see it is decided again at every attempt. state: pending, delivered,
-- failed (given up after the retry period), withheld (the owner was not entitled at delivery).
CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY,
    event_id        INTEGER NOT NULL REFERENCES domain_events(id),
    endpoint_id     INTEGER NOT NULL REFERENCES webhook_endpoints(id),
    state           TEXT NOT NULL DEFAULT 'pending',
    created_at      TEXT NOT NULL,
    -- Since when it has been tried without success: the event's time, or a manual redelivery's.
    -- A delivery still failing RETRY_PERIOD after this gives up and disables its endpoint.
    retry_since     TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_attempt_at TEXT,
    last_status     INTEGER,
    last_error      TEXT,
    last_latency_ms INTEGER,
    finished_at     TEXT,
    -- The server process delivering it and until when (as the mail outbox's claims).
    claimed_by      TEXT,
    claimed_until   TEXT,
    UNIQUE (event_id, endpoint_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint_id, id);

-- The delivery log: every attempt, its answer and how long it took.
CREATE TABLE webhook_attempts (
    id          INTEGER PRIMARY KEY,
    delivery_id INTEGER NOT NULL REFERENCES webhook_deliveries(id),
    at          TEXT NOT NULL,
    status      INTEGER,
    error       TEXT,
    latency_ms  INTEGER NOT NULL
);
CREATE INDEX webhook_attempts_by_delivery ON webhook_attempts (delivery_id, id);
