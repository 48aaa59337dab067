-- Viewer sessions the server issued. The viewer session id is what the invisible watermark
-- carries, so a frame traces back to one user; before this table the browser chose the id, and
-- a grader could stream their own cases marked with another grader's id. Now the server
-- generates every id, binds it to the user and the sign-in session that asked for it, and
-- refuses an id it did not issue to that sign-in. Rows are kept (they map a decoded mark to
-- its user).
CREATE TABLE viewer_sessions (
    id           uuid   NOT NULL PRIMARY KEY,
    user_id      uuid   NOT NULL REFERENCES users (id),
    auth_session uuid   NOT NULL,
    created_unix bigint NOT NULL
);
CREATE INDEX viewer_sessions_user ON viewer_sessions (user_id);
