-- Portal notifications: what a portal user has been told (of grants created, changed, removed,
-- about to expire or expired), written in the same transaction as the change with the mail that
-- tells the same. read_at is set when the user marks it read. Times are wire-form text.
CREATE TABLE notifications (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES portal_users(id),
    kind        TEXT NOT NULL,
    text        TEXT NOT NULL,
    link        TEXT,
    created_at  TEXT NOT NULL,
    read_at     TEXT
);
-- A user's notifications, newest first, and the unread ones for the count in the nav bar.
CREATE INDEX notifications_by_user ON notifications (user_id, id);
CREATE INDEX notifications_unread ON notifications (user_id) WHERE read_at IS NULL;

-- The expiry notices a grant has been given, recorded as the expiry they were for, so each is
-- written once per expiry however many server processes look (the UPDATE that records it is
-- the one that writes it) and a new expiry set by a scope change is told of again.
ALTER TABLE grants ADD COLUMN expiring_notice_for TEXT;
ALTER TABLE grants ADD COLUMN expired_notice_for TEXT;
