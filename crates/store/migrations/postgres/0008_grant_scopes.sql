-- A grant carries a scope, as the merchant chose it: until when (expires_at, an RFC 3339 UTC time
-- with six fractional digits, so times compare as text; NULL: never), which ledger dates
-- (from_date and to_date, YYYY-MM-DD, both inclusive; NULL: open), which topics, and whether
-- payers' personal data may be read. Grants made before keep their meaning through the
-- defaults: no expiry, every date, both topics, personal data allowed.
ALTER TABLE grants ADD COLUMN expires_at TEXT;
ALTER TABLE grants ADD COLUMN from_date TEXT;
ALTER TABLE grants ADD COLUMN to_date TEXT;
ALTER TABLE grants ADD COLUMN topics TEXT NOT NULL DEFAULT 'funds,fees'
    CHECK (topics IN ('funds', 'fees', 'funds,fees'));
ALTER TABLE grants ADD COLUMN personal_data BOOLEAN NOT NULL DEFAULT TRUE;
