-- The access log as a merchant reads it: what was asked (topic, ledger date or the feed position
-- a page starts after, personal data) and the result in words. Rows written before this migration
-- keep NULLs and an empty result, which the portal shows from their status.
ALTER TABLE access_log ADD COLUMN topic TEXT;
ALTER TABLE access_log ADD COLUMN ledger_date TEXT;
ALTER TABLE access_log ADD COLUMN feed_after INTEGER;
ALTER TABLE access_log ADD COLUMN personal_data TEXT;
ALTER TABLE access_log ADD COLUMN result TEXT NOT NULL DEFAULT '';
-- Pruning by age and the date filters read by time; a partner's page reads by its keys.
CREATE INDEX access_log_by_at ON access_log (at);
CREATE INDEX access_log_by_partner ON access_log (partner_id, id);
