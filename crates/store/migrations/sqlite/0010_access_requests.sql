-- A partner's request for access to a merchant's ledgers. org_id is the organisation number as
-- the partner typed it; merchant_id is NULL when it named no merchant: the request is kept like
-- any other (the partner sees it pending and may withdraw it) but no merchant sees it, so asking
-- reveals nothing about who is a merchant. The proposed scope has the grants' scope columns
-- (see 0008). state moves only from pending to approved, declined or withdrawn (the core's
-- request_transition); decided_at and decided_by say when and by whom.
CREATE TABLE access_requests (
    id             INTEGER PRIMARY KEY,
    partner_id     INTEGER NOT NULL REFERENCES partners(id),
    org_id         TEXT NOT NULL,
    merchant_id    INTEGER REFERENCES merchants(id),
    expires_at     TEXT,
    from_date      TEXT,
    to_date        TEXT,
    topics         TEXT NOT NULL CHECK (topics IN ('funds', 'fees', 'funds,fees')),
    personal_data  INTEGER NOT NULL CHECK (personal_data IN (0, 1)),
    message        TEXT NOT NULL CHECK (length(message) <= 1000),
    state          TEXT NOT NULL
        CHECK (state IN ('pending', 'approved', 'declined', 'withdrawn')),
    created_at     TEXT NOT NULL,
    decided_at     TEXT,
    decided_by     TEXT
);
CREATE INDEX access_requests_by_merchant ON access_requests (merchant_id, id);
CREATE INDEX access_requests_by_partner ON access_requests (partner_id, id);

-- The sales units a request asks for, as the partner typed their MSNs (not checked against
-- sales_units, which the partner cannot see); a request without rows here asks for all units.
CREATE TABLE access_request_units (
    request_id  INTEGER NOT NULL REFERENCES access_requests(id),
    msn         INTEGER NOT NULL,
    PRIMARY KEY (request_id, msn)
);
