-- Grading workflow (SQLite): study forms, batches, repeat assignments, drafts, grades and
-- their versions, adjudications. Same tables and meaning as
-- migrations/postgres/20261202100000_grading.sql. The rules live in domain/src/grading/.

CREATE TABLE study_forms (
    id          BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 16),
    study_id    BLOB    NOT NULL REFERENCES studies (id),
    version     INTEGER NOT NULL CHECK (version >= 1),
    definition  TEXT    NOT NULL CHECK (json_valid(definition)),
    fingerprint TEXT    NOT NULL CHECK (length(fingerprint) = 64),
    created_at  TEXT    NOT NULL,
    created_by  BLOB    REFERENCES users (id),
    CONSTRAINT study_forms_study_version_key UNIQUE (study_id, version)
) STRICT;

CREATE TABLE batches (
    id              BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 16),
    study_id        BLOB    NOT NULL REFERENCES studies (id),
    name            TEXT    NOT NULL,
    per_case        INTEGER NOT NULL CHECK (per_case BETWEEN 1 AND 10),
    repeat_fraction REAL    NOT NULL CHECK (repeat_fraction >= 0 AND repeat_fraction <= 0.5),
    due_at          TEXT,
    created_at      TEXT    NOT NULL,
    created_by      BLOB    REFERENCES users (id),
    CONSTRAINT batches_study_name_key UNIQUE (study_id, name)
) STRICT;

-- SQLite cannot change a table's constraints in place: rebuild assignments with the batch,
-- the kind ('primary' or a hidden 'repeat') and the uniqueness that includes the kind.
CREATE TABLE assignments_new (
    id          BLOB NOT NULL PRIMARY KEY CHECK (length(id) = 16),
    case_id     BLOB NOT NULL REFERENCES cases (id),
    user_id     BLOB NOT NULL REFERENCES users (id),
    role        TEXT NOT NULL CHECK (role IN ('grader', 'adjudicator')),
    assigned_at TEXT NOT NULL,
    due_at      TEXT,
    status      TEXT NOT NULL DEFAULT 'assigned' CHECK (status IN ('assigned', 'in_progress', 'done')),
    batch_id    BLOB REFERENCES batches (id),
    kind        TEXT NOT NULL DEFAULT 'primary' CHECK (kind IN ('primary', 'repeat')),
    CONSTRAINT assignments_case_user_role_key UNIQUE (case_id, user_id, role, kind)
) STRICT;
INSERT INTO assignments_new (id, case_id, user_id, role, assigned_at, due_at, status)
    SELECT id, case_id, user_id, role, assigned_at, due_at, status FROM assignments;
DROP TABLE assignments;
ALTER TABLE assignments_new RENAME TO assignments;
CREATE INDEX assignments_user_idx ON assignments (user_id, status);
CREATE INDEX assignments_batch_idx ON assignments (batch_id);

CREATE TABLE grade_drafts (
    assignment_id   BLOB    NOT NULL PRIMARY KEY REFERENCES assignments (id),
    form_id         BLOB    NOT NULL REFERENCES study_forms (id),
    grade_values    TEXT    NOT NULL CHECK (json_valid(grade_values)),
    revision        INTEGER NOT NULL CHECK (revision >= 1),
    render_state    TEXT,
    lossless_sha256 TEXT,
    started_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL
) STRICT;

CREATE TABLE grades (
    id              BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 16),
    assignment_id   BLOB    NOT NULL REFERENCES assignments (id),
    case_id         BLOB    NOT NULL REFERENCES cases (id),
    grader_id       BLOB    NOT NULL REFERENCES users (id),
    form_id         BLOB    NOT NULL REFERENCES study_forms (id),
    version         INTEGER NOT NULL CHECK (version >= 1),
    grade_values    TEXT    NOT NULL CHECK (json_valid(grade_values)),
    render_state    TEXT,
    lossless_sha256 TEXT,
    reason          TEXT,
    duration_ms     INTEGER,
    submitted_at    TEXT    NOT NULL,
    CONSTRAINT grades_assignment_version_key UNIQUE (assignment_id, version),
    CONSTRAINT grades_reason_check CHECK (version = 1 OR (reason IS NOT NULL AND length(reason) > 0))
) STRICT;
CREATE INDEX grades_case_idx ON grades (case_id);

CREATE TABLE adjudications (
    id              BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 16),
    case_id         BLOB    NOT NULL REFERENCES cases (id),
    round           INTEGER NOT NULL,
    disagreements   TEXT    NOT NULL CHECK (json_valid(disagreements)),
    grade_ids       TEXT    NOT NULL CHECK (json_valid(grade_ids)),
    status          TEXT    NOT NULL CHECK (status IN ('open', 'resolved')),
    created_at      TEXT    NOT NULL,
    adjudicator_id  BLOB    REFERENCES users (id),
    form_id         BLOB    REFERENCES study_forms (id),
    grade_values    TEXT,
    render_state    TEXT,
    lossless_sha256 TEXT,
    reason          TEXT,
    resolved_at     TEXT,
    CONSTRAINT adjudications_case_round_key UNIQUE (case_id, round),
    CONSTRAINT adjudications_resolved_check CHECK (
        status = 'open' OR (adjudicator_id IS NOT NULL AND grade_values IS NOT NULL AND resolved_at IS NOT NULL))
) STRICT;
CREATE INDEX adjudications_status_idx ON adjudications (status, case_id);
