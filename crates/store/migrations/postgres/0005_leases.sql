-- Leases: which server process does a task that only one may do at a time (the closing task).
-- A holder renews its lease while it works; a process that dies stops renewing, and the lease
-- lapses at `expires_at` for another to take.
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL -- milliseconds since the Unix epoch
);
