-- Federation: remote accounts, followers, replies, reactions, moderation.

-- Per-blog (and the instance's own) signing keys; the private key never leaves the server.
CREATE TABLE actor_keys (
    -- 'blog:<id>' or 'instance'
    owner TEXT PRIMARY KEY NOT NULL,
    public_key_pem TEXT NOT NULL,
    private_key_pem TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

-- Accounts on other servers we have seen (followers, repliers, reporters).
CREATE TABLE actors (
    id INTEGER PRIMARY KEY,
    ap_id TEXT NOT NULL UNIQUE,
    domain TEXT NOT NULL,
    username TEXT NOT NULL,
    display_name TEXT,
    profile_url TEXT,
    icon_url TEXT,
    inbox TEXT NOT NULL,
    shared_inbox TEXT,
    public_key_id TEXT,
    public_key_pem TEXT,
    moved_to TEXT,
    fetched_at TIMESTAMP NOT NULL,
    deleted_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX actors_domain ON actors (domain);
CREATE INDEX actors_public_key_id ON actors (public_key_id);

CREATE TABLE followers (
    blog_id BIGINT NOT NULL REFERENCES blogs (id) ON DELETE CASCADE,
    actor_id BIGINT NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    -- pending | accepted
    status TEXT NOT NULL,
    follow_ap_id TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (blog_id, actor_id)
);
CREATE INDEX followers_actor_id ON followers (actor_id);

-- Replies to our posts (and mentions of our blogs): from remote accounts, or written by
-- the blog in answer.
CREATE TABLE replies (
    id INTEGER PRIMARY KEY,
    blog_id BIGINT NOT NULL REFERENCES blogs (id) ON DELETE CASCADE,
    -- The post replied to; NULL for a mention that answers no post of ours.
    post_id BIGINT REFERENCES posts (id) ON DELETE CASCADE,
    ap_id TEXT NOT NULL UNIQUE,
    -- The remote author; NULL when the blog itself answered.
    actor_id BIGINT REFERENCES actors (id) ON DELETE CASCADE,
    -- The reply this answers, when it is part of a thread under the post.
    parent_id BIGINT REFERENCES replies (id) ON DELETE SET NULL,
    in_reply_to TEXT NOT NULL,
    url TEXT,
    content_html TEXT NOT NULL,
    summary TEXT,
    sensitive BOOLEAN NOT NULL DEFAULT 0,
    -- held | approved | rejected | hidden
    status TEXT NOT NULL,
    published_at TIMESTAMP NOT NULL,
    edited_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX replies_post_status ON replies (post_id, status, published_at);
CREATE INDEX replies_actor_id ON replies (actor_id);
CREATE INDEX replies_blog_status ON replies (blog_id, status, created_at);

-- Likes and boosts of our posts.
CREATE TABLE reactions (
    id INTEGER PRIMARY KEY,
    post_id BIGINT NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    actor_id BIGINT NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    -- like | announce
    kind TEXT NOT NULL,
    ap_id TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX reactions_once ON reactions (post_id, actor_id, kind);

-- Ids of activities already handled, so a redelivery is a no-op.
CREATE TABLE received_activities (
    ap_id TEXT PRIMARY KEY NOT NULL,
    received_at TIMESTAMP NOT NULL
);
CREATE INDEX received_activities_received_at ON received_activities (received_at);

-- Instance-wide domain blocks: reject everything, or hold every reply for moderation.
CREATE TABLE domain_blocks (
    domain TEXT PRIMARY KEY NOT NULL,
    -- reject | hold
    severity TEXT NOT NULL,
    reason TEXT,
    created_at TIMESTAMP NOT NULL
);

-- Instance-wide account blocks.
CREATE TABLE account_blocks (
    actor_ap_id TEXT PRIMARY KEY NOT NULL,
    reason TEXT,
    created_at TIMESTAMP NOT NULL
);

-- A blog's own blocks: an account, or a whole domain, whose replies it drops.
CREATE TABLE blog_blocks (
    blog_id BIGINT NOT NULL REFERENCES blogs (id) ON DELETE CASCADE,
    -- account | domain
    kind TEXT NOT NULL,
    -- The account's id, or the domain.
    target TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (blog_id, kind, target)
);

-- Reports (Flag activities) from other servers.
CREATE TABLE reports (
    id INTEGER PRIMARY KEY,
    ap_id TEXT NOT NULL UNIQUE,
    actor_id BIGINT REFERENCES actors (id) ON DELETE SET NULL,
    -- JSON list of the reported ids (accounts, posts, replies)
    objects TEXT NOT NULL,
    content TEXT,
    -- open | resolved
    status TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

ALTER TABLE blogs ADD COLUMN manually_approves_followers BOOLEAN NOT NULL DEFAULT 0;
ALTER TABLE blogs ADD COLUMN articles_as_notes BOOLEAN NOT NULL DEFAULT 0;
-- held | followers | open
ALTER TABLE blogs ADD COLUMN reply_policy TEXT NOT NULL DEFAULT 'held';
ALTER TABLE blogs ADD COLUMN header_media_id BIGINT REFERENCES media (id) ON DELETE SET NULL;
ALTER TABLE blogs ADD COLUMN discoverable BOOLEAN NOT NULL DEFAULT 1;

ALTER TABLE posts ADD COLUMN replies_closed BOOLEAN NOT NULL DEFAULT 0;
ALTER TABLE posts ADD COLUMN content_warning TEXT;
ALTER TABLE posts ADD COLUMN pinned_at TIMESTAMP;
