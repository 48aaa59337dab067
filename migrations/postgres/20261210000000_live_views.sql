-- Views a worker has shown on a case in a stream that is still open (PostgreSQL), reported as
-- they happen (`SessionEvent::Viewed`), so that the grading form can tell what was looked at
-- before the stream's report arrives. Rows of a stream go when its end report is recorded
-- (`stream_sessions.views` holds them from then on). Same as
-- migrations/sqlite/20261210000000_live_views.sql.
CREATE TABLE live_views (
    stream_id  uuid   NOT NULL,
    case_id    uuid   NOT NULL,
    user_id    uuid   NOT NULL,
    view       text   NOT NULL CHECK (length(view) <= 200),
    shown_unix bigint NOT NULL,
    PRIMARY KEY (stream_id, case_id, view)
);
CREATE INDEX live_views_user_case ON live_views (user_id, case_id);
