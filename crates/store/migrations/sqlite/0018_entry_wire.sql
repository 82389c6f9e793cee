-- Each entry keeps its Report API JSON, written by the store when the entry is (the store's
-- `wire_json`), so that a page is its entries' stored text joined instead of every field read and
-- escaped again per request. The field names are left out: each JSON-encoded value follows a
-- marker byte (char(1) to char(13)) that stands for its name. `wire` holds the ten fields every
-- reader gets, `wire_payer` the payer's three, when the payment has all three (given only to
-- readers with personal data). The entries already stored get theirs here: `json_quote` escapes
-- strings as the store's writer does and writes an integer as its digits.
ALTER TABLE entries ADD COLUMN wire TEXT NOT NULL DEFAULT '';
ALTER TABLE entries ADD COLUMN wire_payer TEXT;
UPDATE entries SET
    wire = char(1) || json_quote(psp_reference) || char(2) || json_quote(time)
        || char(3) || json_quote(ledger_date) || char(4) || json_quote(entry_type)
        || char(5) || json_quote(reference) || char(6) || json_quote(currency)
        || char(7) || json_quote(amount) || char(8) || json_quote(balance_before)
        || char(9) || json_quote(balance_after) || char(10) || json_quote(recipient_handle),
    wire_payer = CASE
        WHEN payer_name IS NOT NULL AND payer_message IS NOT NULL AND masked_phone_no IS NOT NULL
        THEN char(11) || json_quote(payer_name) || char(12) || json_quote(payer_message)
            || char(13) || json_quote(masked_phone_no)
    END;
