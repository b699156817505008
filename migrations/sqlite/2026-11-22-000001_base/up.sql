-- Accounts, blogs, posts, tags, media and web sessions.
-- Timestamps are UTC. Booleans are 0/1. Ids are 64-bit row ids.

CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    is_admin BOOLEAN NOT NULL DEFAULT 0,
    totp_secret TEXT,
    totp_enabled BOOLEAN NOT NULL DEFAULT 0,
    totp_last_step BIGINT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY NOT NULL,
    user_id BIGINT REFERENCES users (id) ON DELETE CASCADE,
    state TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE blogs (
    id INTEGER PRIMARY KEY,
    handle TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    role_title TEXT,
    organisation TEXT,
    bio_markdown TEXT NOT NULL DEFAULT '',
    bio_html TEXT NOT NULL DEFAULT '',
    photo_media_id BIGINT REFERENCES media (id) ON DELETE SET NULL,
    links TEXT NOT NULL DEFAULT '[]',
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE blog_members (
    blog_id BIGINT NOT NULL REFERENCES blogs (id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (blog_id, user_id)
);
CREATE INDEX blog_members_user_id ON blog_members (user_id);

CREATE TABLE media (
    id INTEGER PRIMARY KEY,
    blog_id BIGINT NOT NULL REFERENCES blogs (id) ON DELETE CASCADE,
    uploaded_by BIGINT REFERENCES users (id) ON DELETE SET NULL,
    file_name TEXT NOT NULL UNIQUE,
    content_type TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    byte_size BIGINT NOT NULL,
    alt_text TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX media_blog_id ON media (blog_id);

CREATE TABLE posts (
    id INTEGER PRIMARY KEY,
    blog_id BIGINT NOT NULL REFERENCES blogs (id) ON DELETE CASCADE,
    slug TEXT,
    title TEXT,
    summary TEXT,
    body_markdown TEXT NOT NULL,
    body_html TEXT NOT NULL,
    status TEXT NOT NULL,
    author_id BIGINT REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    published_at TIMESTAMP,
    edited_at TIMESTAMP,
    UNIQUE (blog_id, slug)
);
CREATE INDEX posts_listing ON posts (blog_id, status, published_at);
CREATE INDEX posts_published ON posts (status, published_at);
-- When a blog last changed (validators for its pages and feeds) without reading every post.
CREATE INDEX posts_changes ON posts (blog_id, updated_at);

CREATE TABLE post_tags (
    post_id BIGINT NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    name TEXT NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (post_id, tag)
);
CREATE INDEX post_tags_tag ON post_tags (tag);

-- Secrets the instance makes for itself on first start (e.g. the cookie key), kept in
-- the database so every node sharing it agrees.
CREATE TABLE instance_secrets (
    name TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
