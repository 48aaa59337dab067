-- The worker pool (PostgreSQL). Same tables and meaning as migrations/sqlite/20261206200000_workers.sql.
CREATE TABLE workers (
    id              text             NOT NULL,
    public_key      text             NOT NULL,
    control_url     text             NOT NULL,
    media_address   text             NOT NULL,
    capacity        bigint           NOT NULL,
    active_sessions bigint           NOT NULL,
    cpu_load        double precision NOT NULL,
    draining        boolean          NOT NULL,
    registered_unix bigint           NOT NULL,
    last_seen_unix  bigint           NOT NULL,
    CONSTRAINT workers_pkey PRIMARY KEY (id),
    CONSTRAINT workers_counts_check CHECK (capacity >= 0 AND active_sessions >= 0)
);

CREATE TABLE live_streams (
    id             uuid   NOT NULL,
    worker_id      text   NOT NULL,
    user_id        uuid   NOT NULL,
    case_id        uuid   NOT NULL,
    auth_session   uuid   NOT NULL,
    viewer_session text   NOT NULL,
    started_unix   bigint NOT NULL,
    revoked_unix   bigint,
    CONSTRAINT live_streams_pkey PRIMARY KEY (id)
);
CREATE INDEX live_streams_user_idx ON live_streams (user_id);
CREATE INDEX live_streams_worker_idx ON live_streams (worker_id);
