-- The world (merchants, sales units, ledgers, partners, keys, grants), the entries, the logs and the
-- server's own secrets.
-- Times are TEXT in the wire form (UTC, 6 fractional digits, Z), which sorts as time does.

CREATE TABLE merchants (
    id          INTEGER PRIMARY KEY,
    org_scheme  TEXT NOT NULL,
    org_id      TEXT NOT NULL,
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    UNIQUE (org_scheme, org_id)
);

CREATE TABLE sales_units (
    msn          INTEGER PRIMARY KEY,
    merchant_id  INTEGER NOT NULL REFERENCES merchants(id),
    name         TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('api', 'vm-number')),
    country      TEXT NOT NULL,
    handle       TEXT NOT NULL UNIQUE,
    created_at   TEXT NOT NULL
);
CREATE INDEX sales_units_by_merchant ON sales_units (merchant_id, msn);

CREATE TABLE ledgers (
    ledger_id          TEXT PRIMARY KEY,
    currency           TEXT NOT NULL,
    payout_scheme      TEXT NOT NULL,
    payout_account     TEXT NOT NULL,
    owner_merchant_id  INTEGER NOT NULL REFERENCES merchants(id),
    time_zone          TEXT NOT NULL,
    cutoff             TEXT NOT NULL,
    payout_frequency   TEXT NOT NULL,
    settlement_mode    TEXT NOT NULL,
    fee_basis_points   INTEGER NOT NULL,
    fee_fixed_minor    INTEGER NOT NULL,
    page_size          INTEGER NOT NULL,
    created_at         TEXT NOT NULL,
    -- The settlement engine's progress: the last closed ledger date, the next payout number.
    closed_through     TEXT NOT NULL,
    next_payout_number INTEGER NOT NULL DEFAULT 2000001,
    -- Balances of the dates through closed_through after their closing (what carries over).
    -- Entries of later dates may already precede a closing in the chain, so a period's balance
    -- is this plus the period's entries, not the chain's last balance.
    closed_funds_balance INTEGER NOT NULL DEFAULT 0,
    closed_fees_balance  INTEGER NOT NULL DEFAULT 0
);
-- Ledger ids are digits without leading zeros: (length, text) orders them numerically.
CREATE INDEX ledgers_by_owner ON ledgers (owner_merchant_id, length(ledger_id), ledger_id);

-- Which sales units a ledger settles for. A sales unit settles on one ledger only.
CREATE TABLE ledger_units (
    ledger_id  TEXT NOT NULL REFERENCES ledgers(ledger_id),
    msn        INTEGER NOT NULL UNIQUE REFERENCES sales_units(msn),
    position   INTEGER NOT NULL,
    PRIMARY KEY (ledger_id, msn)
);

CREATE TABLE partners (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL,
    kind           TEXT NOT NULL,
    state          TEXT NOT NULL,
    org_scheme     TEXT,
    org_id         TEXT,
    contact_email  TEXT NOT NULL,
    created_at     TEXT NOT NULL
);

CREATE TABLE api_keys (
    id                  INTEGER PRIMARY KEY,
    kind                TEXT NOT NULL,
    owner_msn           INTEGER REFERENCES sales_units(msn),
    owner_partner_id    INTEGER REFERENCES partners(id),
    owner_merchant_id   INTEGER REFERENCES merchants(id),
    client_id           TEXT NOT NULL UNIQUE,
    secret_hash         BLOB NOT NULL,
    generation          INTEGER NOT NULL,
    subscription_key_1  TEXT UNIQUE,
    subscription_key_2  TEXT UNIQUE,
    revoked             INTEGER NOT NULL DEFAULT 0,
    created_at          TEXT NOT NULL,
    -- Operator service keys (ingestion) belong to the operator: no owner row.
    CHECK ((owner_msn IS NOT NULL) + (owner_partner_id IS NOT NULL) + (owner_merchant_id IS NOT NULL)
           = CASE WHEN kind = 'service' THEN 0 ELSE 1 END)
);

CREATE TABLE grants (
    partner_id  INTEGER NOT NULL REFERENCES partners(id),
    ledger_id   TEXT NOT NULL REFERENCES ledgers(ledger_id),
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    PRIMARY KEY (partner_id, ledger_id)
);
CREATE INDEX grants_by_ledger ON grants (ledger_id, partner_id);
CREATE INDEX grants_by_partner ON grants (partner_id, length(ledger_id), ledger_id);

-- topic: 0 funds, 1 fees. seq is gap-free from 1 on each (ledger, topic).
CREATE TABLE entries (
    ledger_id         TEXT NOT NULL REFERENCES ledgers(ledger_id),
    topic             INTEGER NOT NULL,
    seq               INTEGER NOT NULL,
    psp_reference     TEXT NOT NULL,
    time              TEXT NOT NULL,
    ledger_date       TEXT NOT NULL,
    entry_type        TEXT NOT NULL,
    reference         TEXT NOT NULL,
    currency          TEXT NOT NULL,
    amount            INTEGER NOT NULL,
    balance_before    INTEGER NOT NULL,
    balance_after     INTEGER NOT NULL,
    recipient_handle  TEXT NOT NULL,
    payer_name        TEXT,
    payer_message     TEXT,
    masked_phone_no   TEXT,
    PRIMARY KEY (ledger_id, topic, seq)
) WITHOUT ROWID;
CREATE INDEX entries_by_date ON entries (ledger_id, topic, ledger_date, seq);

CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY,
    private_der  BLOB NOT NULL,
    public_raw   BLOB NOT NULL,
    created_at   TEXT NOT NULL,
    retired_at   TEXT
);

-- Secrets of the server itself (e.g. the cursor MAC key), shared by every process on the database.
CREATE TABLE server_secrets (
    name   TEXT PRIMARY KEY,
    value  BLOB NOT NULL
);

CREATE TABLE access_log (
    id                INTEGER PRIMARY KEY,
    at                TEXT NOT NULL,
    request_id        TEXT NOT NULL,
    key_id            INTEGER,
    key_kind          TEXT,
    client_id         TEXT,
    partner_id        INTEGER,
    merchant_id       INTEGER,
    msn               INTEGER,
    ledger_id         TEXT,
    endpoint          TEXT NOT NULL,
    status            INTEGER NOT NULL
);
CREATE INDEX access_log_by_ledger ON access_log (ledger_id, id);

CREATE TABLE audit_log (
    id       INTEGER PRIMARY KEY,
    at       TEXT NOT NULL,
    actor    TEXT NOT NULL,
    action   TEXT NOT NULL,
    subject  TEXT NOT NULL,
    detail   TEXT NOT NULL
);

-- Payment events applied, for idempotency: posting an event again answers as the first time.
CREATE TABLE events (
    event_id     TEXT PRIMARY KEY,
    ledger_id    TEXT NOT NULL REFERENCES ledgers(ledger_id),
    entries      INTEGER NOT NULL,
    received_at  TEXT NOT NULL
) WITHOUT ROWID;

-- What each pspReference has captured and refunded on its ledger (refunds may not exceed captures).
CREATE TABLE payments (
    ledger_id      TEXT NOT NULL REFERENCES ledgers(ledger_id),
    psp_reference  TEXT NOT NULL,
    captured       INTEGER NOT NULL,
    refunded       INTEGER NOT NULL,
    PRIMARY KEY (ledger_id, psp_reference)
) WITHOUT ROWID;
