-- Streaming sessions (PostgreSQL): one row per ended WebRTC session, written from the worker's
-- report. Same tables and meaning as migrations/sqlite/20261122120000_streaming.sql.
CREATE TABLE stream_sessions (
    id             uuid    NOT NULL,
    viewer_session text    NOT NULL,
    user_id        uuid    NOT NULL,
    case_id        uuid    NOT NULL,
    started_unix   bigint  NOT NULL,
    duration_ms    bigint  NOT NULL,
    frames         bigint  NOT NULL,
    bytes_sent     bigint  NOT NULL,
    messages       bigint  NOT NULL,
    refused        bigint  NOT NULL,
    -- closed | ice_failed | disconnected | connect_timeout | idle | shutdown
    end_reason     text    NOT NULL,
    -- JSON: ["layout:exam", ...]
    views          text    NOT NULL,
    -- JSON: [{"frame": n, "sha256": "...", "verified": true|false|null}, ...]
    lossless       text    NOT NULL,
    CONSTRAINT stream_sessions_pkey PRIMARY KEY (id),
    CONSTRAINT stream_sessions_user_fkey FOREIGN KEY (user_id) REFERENCES users (id),
    CONSTRAINT stream_sessions_case_fkey FOREIGN KEY (case_id) REFERENCES cases (id),
    CONSTRAINT stream_sessions_counts_check CHECK (duration_ms >= 0 AND frames >= 0 AND bytes_sent >= 0 AND messages >= 0 AND refused >= 0)
);
CREATE INDEX stream_sessions_case_idx ON stream_sessions (case_id);
CREATE INDEX stream_sessions_user_idx ON stream_sessions (user_id);
