-- Money that moves back must have something to move back (the engine's check_reversal):
--
-- * disputes per pspReference: a returned dispute gives back no more than the pspReference's
--   disputes still retain (disputed minus returned);
-- * a refund may carry its own pspReference: that reference gets a row of its own naming the
--   capture it refunds (refund_of), so it is never used again and `verify` counts the refund
--   against that capture; the capture's row counts the refund;
-- * the ledger's payouts, written when a closing schedules one: a payout-aborted brings back one
--   of them, whole and once.
ALTER TABLE payments ADD COLUMN disputed BIGINT NOT NULL DEFAULT 0;
ALTER TABLE payments ADD COLUMN returned BIGINT NOT NULL DEFAULT 0;
ALTER TABLE payments ADD COLUMN refund_of TEXT;

-- Totals of the disputes already booked. A pspReference without a payments row was never
-- captured, so it retains nothing and there is nothing to count for it. Entries written before
-- sums were checked may hold amounts that do not add up within 64 bits: those clamp to its ends.
UPDATE payments SET disputed = d.disputed, returned = d.returned
FROM (
    SELECT ledger_id, psp_reference,
           LEAST(GREATEST(-COALESCE(SUM(CASE WHEN entry_type = 'retained-disputed-capture' THEN amount END), 0),
                          -9223372036854775808), 9223372036854775807)::bigint AS disputed,
           LEAST(GREATEST(COALESCE(SUM(CASE WHEN entry_type = 'returned-disputed-capture' THEN amount END), 0),
                          -9223372036854775808), 9223372036854775807)::bigint AS returned
    FROM entries
    WHERE topic = 0 AND entry_type IN ('retained-disputed-capture', 'returned-disputed-capture')
    GROUP BY ledger_id, psp_reference
) d
WHERE payments.ledger_id = d.ledger_id AND payments.psp_reference = d.psp_reference;

CREATE TABLE payouts (
    ledger_id      TEXT NOT NULL REFERENCES ledgers(ledger_id),
    psp_reference  TEXT NOT NULL,    -- <ledgerId>-<payoutNumber>, as its payout-scheduled entry
    amount         BIGINT NOT NULL,  -- paid out, positive
    aborted        BIGINT NOT NULL,  -- 1 once a payout-aborted brought it back
    PRIMARY KEY (ledger_id, psp_reference)
);

-- The payouts already scheduled, aborted when a payout-aborted with their pspReference is booked.
-- (Entries appended by hand could repeat a payout's pspReference: the first is kept.)
INSERT INTO payouts (ledger_id, psp_reference, amount, aborted)
SELECT DISTINCT ON (p.ledger_id, p.psp_reference)
       p.ledger_id, p.psp_reference, -p.amount, CASE WHEN a.psp_reference IS NULL THEN 0 ELSE 1 END
FROM entries p
LEFT JOIN (
    SELECT DISTINCT ledger_id, psp_reference FROM entries
    WHERE topic = 0 AND entry_type = 'payout-aborted'
) a ON a.ledger_id = p.ledger_id AND a.psp_reference = p.psp_reference
WHERE p.topic = 0 AND p.entry_type = 'payout-scheduled'
ORDER BY p.ledger_id, p.psp_reference, p.seq;
