-- Viewer sessions the server issued (SQLite). Same table and meaning as
-- migrations/postgres/20261208000000_viewer_sessions.sql.
CREATE TABLE viewer_sessions (
    id           BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 16),
    user_id      BLOB    NOT NULL REFERENCES users (id),
    auth_session BLOB    NOT NULL CHECK (length(auth_session) = 16),
    created_unix INTEGER NOT NULL
) STRICT;
CREATE INDEX viewer_sessions_user ON viewer_sessions (user_id);
