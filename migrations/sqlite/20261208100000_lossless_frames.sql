-- Lossless frames workers sent (SQLite). Same table and meaning as
-- migrations/postgres/20261208100000_lossless_frames.sql.
CREATE TABLE lossless_frames (
    stream_id BLOB    NOT NULL CHECK (length(stream_id) = 16),
    frame     INTEGER NOT NULL,
    user_id   BLOB    NOT NULL CHECK (length(user_id) = 16),
    case_id   BLOB    NOT NULL CHECK (length(case_id) = 16),
    sha256    TEXT    NOT NULL CHECK (length(sha256) = 64),
    bytes     INTEGER NOT NULL,
    revealed_px INTEGER NOT NULL,
    state     TEXT    NOT NULL,
    sent_unix INTEGER NOT NULL,
    PRIMARY KEY (stream_id, frame)
) STRICT;
CREATE INDEX lossless_frames_user_case ON lossless_frames (user_id, case_id, sha256);
CREATE INDEX lossless_frames_user_case_time ON lossless_frames (user_id, case_id, sent_unix);
