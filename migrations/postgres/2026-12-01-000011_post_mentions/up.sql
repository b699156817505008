-- The fediverse accounts a post's text mentions (`@user@server`), as resolved when it
-- went out: its Mention tags, the extra audience of its Create, Update and Delete, and
-- the links in its text. One row an account a post.
CREATE TABLE post_mentions (
    post_id BIGINT NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    -- `user@server` in lower case, the server as an ASCII host (with a port if written).
    acct TEXT NOT NULL,
    -- The account on another server; NULL for a blog on this one.
    actor_id BIGINT REFERENCES actors (id) ON DELETE CASCADE,
    -- The account's ActivityPub id (the Mention's href).
    href TEXT NOT NULL,
    -- Its profile page (the link in the text).
    profile_url TEXT NOT NULL,
    -- False once an edit took the mention out of the text: the account keeps getting the
    -- post's Update and Delete, so its copy is corrected, as Mastodon does.
    active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (post_id, acct)
);
CREATE INDEX post_mentions_actor_id ON post_mentions (actor_id);
-- Resolving again reuses what an earlier post found for the same account.
CREATE INDEX post_mentions_acct ON post_mentions (acct);
