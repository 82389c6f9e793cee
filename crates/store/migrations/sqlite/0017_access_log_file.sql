-- The access log moves to a database file of its own (`sqlite::access_log` in the store), so that
-- writing it never waits for the ledger database's one writer. This table is renamed rather than
-- dropped: the store copies its rows into that file when it starts and drops it only then, so a
-- crash in between loses no row. The new version also keeps earlier builds from writing rows here
-- again: they refuse a database migrated past what they know.
ALTER TABLE access_log RENAME TO access_log_moving;
