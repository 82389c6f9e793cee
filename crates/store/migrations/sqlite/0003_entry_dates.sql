-- Which entries each ledger date holds, as runs of consecutive sequence numbers, instead of an
-- index entry per entry (entries_by_date). The engine never books before a ledger's latest booked
-- date, so a date is normally one run per topic and a run grows by updating its last_seq in the
-- transaction that appends the entries; entries appended out of date order (append_entries
-- allows it) start a new run. A date's entries are the primary-key ranges of its runs.
CREATE TABLE entry_dates (
    ledger_id    TEXT NOT NULL REFERENCES ledgers(ledger_id),
    topic        INTEGER NOT NULL,
    ledger_date  TEXT NOT NULL,
    first_seq    INTEGER NOT NULL,
    last_seq     INTEGER NOT NULL,
    PRIMARY KEY (ledger_id, topic, ledger_date, first_seq)
) WITHOUT ROWID;

-- The runs of the entries already stored: within one (ledger, topic, date), seq minus its rank
-- is constant exactly along a run of consecutive sequence numbers.
INSERT INTO entry_dates (ledger_id, topic, ledger_date, first_seq, last_seq)
SELECT ledger_id, topic, ledger_date, MIN(seq), MAX(seq)
FROM (
    SELECT ledger_id, topic, ledger_date, seq,
           seq - ROW_NUMBER() OVER (PARTITION BY ledger_id, topic, ledger_date ORDER BY seq) AS run
    FROM entries
)
GROUP BY ledger_id, topic, ledger_date, run;

DROP INDEX entries_by_date;
