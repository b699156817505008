-- The editorial workflow: revisions, sign-off, scheduling, comments, presence, team
-- invitations, the publishing freeze and the tamper-evident audit log.

-- Every save of a post is a revision. Rows never change, except that an autosave is
-- marked `coalesced` when the same person's next autosave follows it (history then
-- shows the run as one entry).
CREATE TABLE post_revisions (
    id INTEGER PRIMARY KEY,
    post_id BIGINT NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    -- 1, 2, 3... per post.
    number INTEGER NOT NULL,
    author_id BIGINT REFERENCES users (id) ON DELETE SET NULL,
    -- Kept so history still names someone whose account has gone.
    author_name TEXT NOT NULL,
    -- save | autosave | merge | restore | command
    kind TEXT NOT NULL,
    title TEXT,
    summary TEXT,
    body_markdown TEXT NOT NULL,
    -- Tag names, comma-separated, in order.
    tags TEXT NOT NULL DEFAULT '',
    slug TEXT,
    -- SHA-256 of the content (title, summary, body, tags, address): what an approval names.
    content_hash TEXT NOT NULL,
    -- The revision the editor was showing when this was saved.
    based_on BIGINT,
    change_summary TEXT NOT NULL,
    coalesced BOOLEAN NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (post_id, number)
);

-- Where each post is in sign-off. A post with no row is a draft (or published, if it is).
CREATE TABLE post_workflow (
    post_id BIGINT PRIMARY KEY NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    -- draft | in_review | approved | scheduled | published
    stage TEXT NOT NULL,
    head_revision_id BIGINT,
    live_revision_id BIGINT,
    approval_id BIGINT,
    submitted_by BIGINT REFERENCES users (id) ON DELETE SET NULL,
    submitted_at TIMESTAMP,
    scheduled_for TIMESTAMP,
    scheduled_revision_id BIGINT,
    scheduled_by BIGINT REFERENCES users (id) ON DELETE SET NULL,
    -- Set when the scheduled time came during a publishing freeze.
    held_at TIMESTAMP,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX post_workflow_stage ON post_workflow (stage, scheduled_for);

-- Sign-offs: who approved which revision, and a hash of exactly what they approved.
CREATE TABLE post_approvals (
    id INTEGER PRIMARY KEY,
    post_id BIGINT NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    revision_id BIGINT NOT NULL REFERENCES post_revisions (id) ON DELETE CASCADE,
    approver_id BIGINT REFERENCES users (id) ON DELETE SET NULL,
    approver_name TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    -- approved | published_by_owner
    kind TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX post_approvals_post ON post_approvals (post_id, created_at);

-- Per-blog rules: whether only the owner (or their delegate) may approve.
CREATE TABLE blog_editorial (
    blog_id BIGINT PRIMARY KEY NOT NULL REFERENCES blogs (id) ON DELETE CASCADE,
    owner_sign_off BOOLEAN NOT NULL DEFAULT 1,
    approval_delegate_id BIGINT REFERENCES users (id) ON DELETE SET NULL,
    updated_at TIMESTAMP NOT NULL
);

-- Invitations to a blog's team: a single-use link, sent by email, that expires.
CREATE TABLE blog_invitations (
    id INTEGER PRIMARY KEY,
    blog_id BIGINT NOT NULL REFERENCES blogs (id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    role TEXT NOT NULL,
    -- SHA-256 of the link's token: a copy of the table accepts nothing.
    token_hash TEXT NOT NULL UNIQUE,
    invited_by BIGINT REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    accepted_at TIMESTAMP,
    accepted_by BIGINT REFERENCES users (id) ON DELETE SET NULL,
    revoked_at TIMESTAMP
);
CREATE INDEX blog_invitations_blog ON blog_invitations (blog_id, created_at);

-- Who has a post open in the editor: rows the editor refreshes every few seconds, kept
-- in the database so every node sharing it sees them.
CREATE TABLE editor_presence (
    post_id BIGINT NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- One per open editor (a person may have two tabs).
    client_id TEXT NOT NULL,
    opened_at TIMESTAMP NOT NULL,
    seen_at TIMESTAMP NOT NULL,
    PRIMARY KEY (post_id, user_id, client_id)
);
CREATE INDEX editor_presence_seen ON editor_presence (seen_at);

-- The team's comments on a post; never published, federated or emailed.
CREATE TABLE post_comments (
    id INTEGER PRIMARY KEY,
    post_id BIGINT NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    author_id BIGINT REFERENCES users (id) ON DELETE SET NULL,
    author_name TEXT NOT NULL,
    body TEXT NOT NULL,
    -- The passage the comment is about, as quoted when it was written.
    quote TEXT,
    revision_id BIGINT,
    created_at TIMESTAMP NOT NULL,
    resolved_at TIMESTAMP,
    resolved_by BIGINT REFERENCES users (id) ON DELETE SET NULL
);
CREATE INDEX post_comments_post ON post_comments (post_id, created_at);

-- Instance-wide publishing freezes (pre-election periods). At most one is in force.
CREATE TABLE publishing_freezes (
    id INTEGER PRIMARY KEY,
    message TEXT NOT NULL,
    started_at TIMESTAMP NOT NULL,
    started_by BIGINT REFERENCES users (id) ON DELETE SET NULL,
    lifted_at TIMESTAMP,
    lifted_by BIGINT REFERENCES users (id) ON DELETE SET NULL
);
CREATE UNIQUE INDEX publishing_freezes_one_in_force ON publishing_freezes ((lifted_at IS NULL)) WHERE lifted_at IS NULL;

-- The audit log: append-only, each entry carrying the hash of the one before. Ids are
-- given by the writer (one more than the last), under the write lock. No foreign keys:
-- an entry outlives the account, blog or post it names.
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    occurred_at TIMESTAMP NOT NULL,
    actor_id BIGINT,
    actor_name TEXT NOT NULL,
    -- web | command | system
    source TEXT NOT NULL,
    action TEXT NOT NULL,
    blog_id BIGINT,
    post_id BIGINT,
    subject TEXT,
    details TEXT NOT NULL,
    address TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_log_occurred ON audit_log (occurred_at);
CREATE INDEX audit_log_action ON audit_log (action, id);
CREATE INDEX audit_log_actor ON audit_log (actor_id, id);
CREATE INDEX audit_log_blog ON audit_log (blog_id, id);

-- Append-only in the database too: changing or removing an entry needs the trigger
-- dropped first, and the hash chain shows what was done.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
