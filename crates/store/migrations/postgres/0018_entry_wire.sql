-- Each entry keeps its Report API JSON, written by the store when the entry is (the store's
-- `wire_json`), so that a page is its entries' stored text joined instead of every field read and
-- escaped again per request. The field names are left out: each JSON-encoded value follows a
-- marker byte (chr(1) to chr(13)) that stands for its name. `wire` holds the ten fields every
-- reader gets, `wire_payer` the payer's three, when the payment has all three (given only to
-- readers with personal data). The entries already stored get theirs here: `to_json` escapes
-- strings as the store's writer does and writes an integer as its digits.
ALTER TABLE entries ADD COLUMN wire TEXT NOT NULL DEFAULT '';
ALTER TABLE entries ADD COLUMN wire_payer TEXT;
UPDATE entries SET
    wire = chr(1) || to_json(psp_reference)::text || chr(2) || to_json(time)::text
        || chr(3) || to_json(ledger_date)::text || chr(4) || to_json(entry_type)::text
        || chr(5) || to_json(reference)::text || chr(6) || to_json(currency)::text
        || chr(7) || to_json(amount)::text || chr(8) || to_json(balance_before)::text
        || chr(9) || to_json(balance_after)::text || chr(10) || to_json(recipient_handle)::text,
    wire_payer = CASE
        WHEN payer_name IS NOT NULL AND payer_message IS NOT NULL AND masked_phone_no IS NOT NULL
        THEN chr(11) || to_json(payer_name)::text || chr(12) || to_json(payer_message)::text
            || chr(13) || to_json(masked_phone_no)::text
    END;
-- Every entry is written with its JSON from now on.
ALTER TABLE entries ALTER COLUMN wire DROP DEFAULT;
