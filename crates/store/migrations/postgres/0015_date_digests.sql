-- Completeness proofs, form v2 (ledgerport_core::proof): a date's digest is a hash chain over its
-- entries, so the settlement engine carries it forward as it books them and a closing never reads
-- a date's entries back. One row per (ledger, topic, date) that has entries or has been closed:
-- what its entries give so far (count, sum, first balance_before, last balance_after, digest),
-- written in the transaction that books them; once the date is closed the row is also its proof
-- (previous_chain_digest, chain_digest; NULL while the date is open). A closed date without
-- entries has a row with entry_count 0 and the previous date's closing balance as both balances.
-- Digests are 64 lowercase hexadecimal digits; previous_chain_digest is NULL at a chain's start.
CREATE TABLE date_digests (
    ledger_id             TEXT NOT NULL REFERENCES ledgers (ledger_id),
    topic                 BIGINT NOT NULL,
    ledger_date           TEXT NOT NULL,
    entry_count           BIGINT NOT NULL,
    amount_sum            BIGINT NOT NULL,
    opening_balance       BIGINT NOT NULL,
    closing_balance       BIGINT NOT NULL,
    digest                TEXT NOT NULL,
    previous_chain_digest TEXT,
    chain_digest          TEXT,
    PRIMARY KEY (ledger_id, topic, ledger_date)
);
-- The proofs of form v1 are replaced: SQL cannot compute SHA-256 portably, so every ledger is
-- listed for the store's start (settlement/proofs.rs, backfill), which builds its dates' states
-- from its entries and proves its closed dates anew, in one transaction per ledger that also
-- takes it off the list.
DROP TABLE date_proofs;
DELETE FROM proof_backfill;
INSERT INTO proof_backfill (ledger_id) SELECT ledger_id FROM ledgers;
