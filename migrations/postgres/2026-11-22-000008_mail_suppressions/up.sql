-- Addresses that no longer get mail: a hard bounce (a 5xx reply to the recipient or the
-- message) or repeated soft bounces (messages that ended undelivered on 4xx replies).
-- One row an address, in lower case; a row with no `suppressed_at` only counts soft
-- bounces so far.
CREATE TABLE mail_suppressions (
    address TEXT PRIMARY KEY,
    -- `hard` (5xx), `soft` (repeated 4xx) or `manual` (an admin).
    reason TEXT NOT NULL,
    soft_bounces INTEGER NOT NULL DEFAULT 0,
    suppressed_at TIMESTAMP,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
