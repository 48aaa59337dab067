-- Streaming sessions (SQLite): one row per ended WebRTC session, written from the worker's
-- report. Same tables and meaning as migrations/postgres/20261122120000_streaming.sql.
CREATE TABLE stream_sessions (
    id             BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 16),
    viewer_session TEXT    NOT NULL,
    user_id        BLOB    NOT NULL REFERENCES users (id),
    case_id        BLOB    NOT NULL REFERENCES cases (id),
    started_unix   INTEGER NOT NULL,
    duration_ms    INTEGER NOT NULL CHECK (duration_ms >= 0),
    frames         INTEGER NOT NULL CHECK (frames >= 0),
    bytes_sent     INTEGER NOT NULL CHECK (bytes_sent >= 0),
    messages       INTEGER NOT NULL CHECK (messages >= 0),
    refused        INTEGER NOT NULL CHECK (refused >= 0),
    -- closed | ice_failed | disconnected | connect_timeout | idle | shutdown
    end_reason     TEXT    NOT NULL,
    -- JSON: ["layout:exam", ...]
    views          TEXT    NOT NULL,
    -- JSON: [{"frame": n, "sha256": "...", "verified": true|false|null}, ...]
    lossless       TEXT    NOT NULL
) STRICT;
CREATE INDEX stream_sessions_case_idx ON stream_sessions (case_id);
CREATE INDEX stream_sessions_user_idx ON stream_sessions (user_id);
