-- Views a worker has shown on a case in a stream that is still open (SQLite). Same table and
-- meaning as migrations/postgres/20261210000000_live_views.sql.
CREATE TABLE live_views (
    stream_id  BLOB    NOT NULL CHECK (length(stream_id) = 16),
    case_id    BLOB    NOT NULL CHECK (length(case_id) = 16),
    user_id    BLOB    NOT NULL CHECK (length(user_id) = 16),
    view       TEXT    NOT NULL CHECK (length(view) <= 200),
    shown_unix INTEGER NOT NULL,
    PRIMARY KEY (stream_id, case_id, view)
) STRICT;
CREATE INDEX live_views_user_case ON live_views (user_id, case_id);
