-- Completeness proofs of closed ledger dates (ledgerport_core::proof): one row per (ledger,
-- topic, date) the settlement engine has closed, written in the closing's own transaction.
-- Digests are 64 lowercase hexadecimal digits; previous_chain_digest is NULL at a chain's start.
CREATE TABLE date_proofs (
    ledger_id             TEXT NOT NULL REFERENCES ledgers (ledger_id),
    topic                 BIGINT NOT NULL,
    ledger_date           TEXT NOT NULL,
    entry_count           BIGINT NOT NULL,
    amount_sum            BIGINT NOT NULL,
    opening_balance       BIGINT NOT NULL,
    closing_balance       BIGINT NOT NULL,
    digest                TEXT NOT NULL,
    previous_chain_digest TEXT,
    chain_digest          TEXT NOT NULL,
    PRIMARY KEY (ledger_id, topic, ledger_date)
);
-- SQL cannot compute SHA-256 portably, so the dates closed before this migration are proved by
-- the store when it next starts (sql/proofs.rs): every ledger is listed here, and each leaves
-- the list in the transaction that writes its proofs.
CREATE TABLE proof_backfill (
    ledger_id TEXT PRIMARY KEY REFERENCES ledgers (ledger_id)
);
INSERT INTO proof_backfill (ledger_id) SELECT ledger_id FROM ledgers;
