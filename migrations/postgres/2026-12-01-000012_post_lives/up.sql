-- How many times a post was published again after being withdrawn. Mastodon keeps a
-- tombstone for every id it was told is deleted and refuses to create it again, so each
-- new life on the fediverse has an id of its own: the page's address, then `?v=2`, `?v=3`...
ALTER TABLE posts ADD COLUMN republished INTEGER NOT NULL DEFAULT 0;
