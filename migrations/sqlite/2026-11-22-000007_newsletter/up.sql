-- The newsletter: staff who subscribe by email to one or more blogs.

-- One row per email address. Tokens are stored only as SHA-256 hashes.
CREATE TABLE newsletter_subscribers (
    id INTEGER PRIMARY KEY,
    -- Lower-cased.
    email TEXT NOT NULL UNIQUE,
    -- pending | confirmed | unsubscribed
    status TEXT NOT NULL,
    paused BOOLEAN NOT NULL DEFAULT 0,
    -- The single-use confirmation token (hash) and when it stops working.
    confirm_token_hash TEXT,
    confirm_expires_at TIMESTAMP,
    -- Set when an editor subscribed the address directly, with the basis they recorded.
    lawful_basis TEXT,
    created_at TIMESTAMP NOT NULL,
    confirmed_at TIMESTAMP,
    updated_at TIMESTAMP NOT NULL
);

-- Which blogs a subscriber gets, and how often.
CREATE TABLE newsletter_subscriptions (
    subscriber_id BIGINT NOT NULL REFERENCES newsletter_subscribers (id) ON DELETE CASCADE,
    blog_id BIGINT NOT NULL REFERENCES blogs (id) ON DELETE CASCADE,
    -- each_post | daily | weekly
    cadence TEXT NOT NULL,
    -- pending (waits for the confirmation link) | active
    status TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (subscriber_id, blog_id)
);
CREATE INDEX newsletter_subscriptions_fanout
    ON newsletter_subscriptions (blog_id, cadence, status, subscriber_id);

-- One send of a blog's list: a post going out, or a digest for a period. The fan-out
-- walks subscribers in id order; `fanout_cursor` is the last one queued, so a crash resumes.
CREATE TABLE newsletter_sends (
    id INTEGER PRIMARY KEY,
    blog_id BIGINT NOT NULL REFERENCES blogs (id) ON DELETE CASCADE,
    -- post | daily | weekly
    kind TEXT NOT NULL,
    post_id BIGINT REFERENCES posts (id) ON DELETE SET NULL,
    -- post-<id>, or the digest's date (YYYY-MM-DD, Europe/London by default)
    period TEXT NOT NULL,
    fanout_cursor BIGINT NOT NULL DEFAULT 0,
    recipients BIGINT NOT NULL DEFAULT 0,
    -- Aggregate counts, kept only when an admin turns tracking on.
    opens BIGINT NOT NULL DEFAULT 0,
    clicks BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    UNIQUE (blog_id, kind, period)
);

-- Which posts each subscriber has been sent (by a post email or a digest): nothing is
-- sent twice, and a digest leaves out what its reader already has.
CREATE TABLE newsletter_received (
    subscriber_id BIGINT NOT NULL REFERENCES newsletter_subscribers (id) ON DELETE CASCADE,
    post_id BIGINT NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    send_id BIGINT NOT NULL REFERENCES newsletter_sends (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (subscriber_id, post_id)
);
