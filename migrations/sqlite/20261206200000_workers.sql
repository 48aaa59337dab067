-- The worker pool (SQLite). Same tables and meaning as migrations/postgres/20261206200000_workers.sql.
-- workers: one row per registered worker process, refreshed by its heartbeats; every server
-- replica reads it to place sessions.
CREATE TABLE workers (
    id              TEXT    NOT NULL PRIMARY KEY,
    -- Ed25519 public key (hex) the worker signs its requests with
    public_key      TEXT    NOT NULL,
    control_url     TEXT    NOT NULL,
    media_address   TEXT    NOT NULL,
    capacity        INTEGER NOT NULL CHECK (capacity >= 0),
    active_sessions INTEGER NOT NULL CHECK (active_sessions >= 0),
    cpu_load        REAL    NOT NULL,
    draining        INTEGER NOT NULL CHECK (draining IN (0, 1)),
    registered_unix INTEGER NOT NULL,
    last_seen_unix  INTEGER NOT NULL
) STRICT;

-- live_streams: one row per open stream session (inserted as a reservation before the worker
-- is asked, completed with the worker's answer, deleted with its end report); the per-user
-- limit and revocation read it.
CREATE TABLE live_streams (
    id             BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 16),
    -- '' while reserved; 'embedded' for the in-process worker
    worker_id      TEXT    NOT NULL,
    user_id        BLOB    NOT NULL,
    case_id        BLOB    NOT NULL,
    -- the sign-in session that asked for it
    auth_session   BLOB    NOT NULL,
    viewer_session TEXT    NOT NULL,
    started_unix   INTEGER NOT NULL,
    -- set once when its access was found revoked (the end was requested)
    revoked_unix   INTEGER
) STRICT;
CREATE INDEX live_streams_user_idx ON live_streams (user_id);
CREATE INDEX live_streams_worker_idx ON live_streams (worker_id);
