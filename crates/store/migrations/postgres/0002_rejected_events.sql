-- Payment events rejected, for idempotency as well: posting a rejected event again answers with
-- the same rejection and changes nothing (a refund rejected before its capture arrived stays
-- rejected; the payment system posts a corrected event under a new id).
CREATE TABLE rejected_events (
    event_id     TEXT PRIMARY KEY,
    field        TEXT NOT NULL,
    reason       TEXT NOT NULL,
    received_at  TEXT NOT NULL
);
