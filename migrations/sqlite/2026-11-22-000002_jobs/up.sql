-- The durable job queue: every side effect that crosses the network is a row here first,
-- written in the same transaction as the change that causes it.
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    -- Two jobs with the same key are one job: enqueueing again is a no-op.
    idempotency_key TEXT UNIQUE,
    -- Jobs that share a partition (e.g. a remote host) can be throttled together.
    partition_key TEXT,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    run_at TIMESTAMP NOT NULL,
    locked_by TEXT,
    locked_until TIMESTAMP,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP
);
CREATE INDEX jobs_due ON jobs (status, run_at);
CREATE INDEX jobs_partition ON jobs (partition_key, status);
CREATE INDEX jobs_kind_status ON jobs (kind, status);
