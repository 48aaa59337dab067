-- readroom schema v1 (SQLite): users, role grants, studies, bundles, cases, assignments.
-- Applied migrations are never edited; changes go into new, later-timestamped files.
--
-- Same tables, columns and constraint meaning as migrations/postgres, in SQLite's types:
-- uuids are 16-byte BLOBs, timestamps RFC 3339 UTC TEXT, booleans INTEGER 0/1, JSON TEXT.
-- These are the encodings sqlx uses for Uuid, OffsetDateTime, bool and serde_json::Value.
-- Tables are STRICT so a value of the wrong type is refused instead of stored.

CREATE TABLE users (
    id           BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 16),
    username     TEXT    NOT NULL,
    display_name TEXT    NOT NULL,
    email        TEXT,
    created_at   TEXT    NOT NULL,
    disabled     INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    CONSTRAINT users_username_key UNIQUE (username),
    CONSTRAINT users_username_check CHECK (length(username) BETWEEN 1 AND 64)
) STRICT;

CREATE TABLE studies (
    id         BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 16),
    code       TEXT    NOT NULL,
    title      TEXT    NOT NULL,
    -- The age recipients (public keys only) new bundles are encrypted to, one per line.
    recipients TEXT    NOT NULL,
    -- The number of the last case label handed out (C-0001 is 1); bumped inside each ingest.
    case_seq   INTEGER NOT NULL DEFAULT 0 CHECK (case_seq >= 0),
    created_at TEXT    NOT NULL,
    CONSTRAINT studies_code_key UNIQUE (code),
    -- Same rule as PostgreSQL's '^[A-Z0-9][A-Z0-9-]{0,31}$' (GLOB is case-sensitive).
    CONSTRAINT studies_code_check CHECK (
        length(code) BETWEEN 1 AND 32
        AND code NOT GLOB '*[^A-Z0-9-]*'
        AND substr(code, 1, 1) <> '-'
    )
) STRICT;

CREATE TABLE role_grants (
    id         BLOB NOT NULL PRIMARY KEY CHECK (length(id) = 16),
    user_id    BLOB NOT NULL REFERENCES users (id),
    role       TEXT NOT NULL
        CHECK (role IN ('grader', 'adjudicator', 'coordinator', 'auditor', 'admin')),
    -- NULL means the role holds in every study.
    study_id   BLOB REFERENCES studies (id),
    granted_at TEXT NOT NULL,
    -- NULL when the system granted it (bootstrap, demo seeding).
    granted_by BLOB REFERENCES users (id)
) STRICT;
-- One grant per user, role and scope; a global grant (NULL study) counts as one scope.
CREATE UNIQUE INDEX role_grants_scope_key
    ON role_grants (user_id, role, COALESCE(study_id, X'00000000000000000000000000000000'));
CREATE INDEX role_grants_study_idx ON role_grants (study_id);

CREATE TABLE bundles (
    id                     BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 16),
    study_id               BLOB    NOT NULL REFERENCES studies (id),
    subject                TEXT    NOT NULL,
    visit                  TEXT    NOT NULL,
    format                 TEXT    NOT NULL,
    object_key             TEXT    NOT NULL,
    ciphertext_sha256      TEXT    NOT NULL
        CHECK (length(ciphertext_sha256) = 64 AND ciphertext_sha256 NOT GLOB '*[^0-9a-f]*'),
    ciphertext_size        INTEGER NOT NULL CHECK (ciphertext_size >= 0),
    plaintext_size         INTEGER NOT NULL CHECK (plaintext_size >= 0),
    file_count             INTEGER NOT NULL CHECK (file_count >= 0),
    exam_count             INTEGER NOT NULL CHECK (exam_count >= 0),
    -- SHA-256 (hex) of the sorted recipients the ciphertext is encrypted to.
    recipients_fingerprint TEXT    NOT NULL
        CHECK (length(recipients_fingerprint) = 64 AND recipients_fingerprint NOT GLOB '*[^0-9a-f]*'),
    -- Non-PHI summary of the exams (ids, kinds, eyes, frame counts, dimensions).
    summary                TEXT    NOT NULL CHECK (json_valid(summary)),
    ingested_at            TEXT    NOT NULL,
    ingested_by            BLOB    REFERENCES users (id),
    CONSTRAINT bundles_object_key_key UNIQUE (object_key),
    CONSTRAINT bundles_study_subject_visit_key UNIQUE (study_id, subject, visit),
    -- Target of the cases' composite foreign keys, which keep a case and its bundles in one study.
    CONSTRAINT bundles_id_study_key UNIQUE (id, study_id)
) STRICT;

CREATE TABLE cases (
    id              BLOB NOT NULL PRIMARY KEY CHECK (length(id) = 16),
    study_id        BLOB NOT NULL REFERENCES studies (id),
    label           TEXT NOT NULL,
    bundle_id       BLOB NOT NULL,
    prior_bundle_id BLOB,
    created_at      TEXT NOT NULL,
    -- Demo lesion truth; never shown to graders.
    ground_truth    TEXT CHECK (ground_truth IS NULL OR json_valid(ground_truth)),
    CONSTRAINT cases_bundle_fkey FOREIGN KEY (bundle_id, study_id) REFERENCES bundles (id, study_id),
    CONSTRAINT cases_prior_bundle_fkey
        FOREIGN KEY (prior_bundle_id, study_id) REFERENCES bundles (id, study_id),
    CONSTRAINT cases_study_label_key UNIQUE (study_id, label),
    CONSTRAINT cases_bundle_key UNIQUE (bundle_id),
    CONSTRAINT cases_prior_bundle_check CHECK (prior_bundle_id IS NULL OR prior_bundle_id <> bundle_id)
) STRICT;
CREATE INDEX cases_prior_bundle_idx ON cases (prior_bundle_id);

CREATE TABLE assignments (
    id          BLOB NOT NULL PRIMARY KEY CHECK (length(id) = 16),
    case_id     BLOB NOT NULL REFERENCES cases (id),
    user_id     BLOB NOT NULL REFERENCES users (id),
    role        TEXT NOT NULL CHECK (role IN ('grader', 'adjudicator')),
    assigned_at TEXT NOT NULL,
    due_at      TEXT,
    status      TEXT NOT NULL DEFAULT 'assigned' CHECK (status IN ('assigned', 'in_progress', 'done')),
    CONSTRAINT assignments_case_user_role_key UNIQUE (case_id, user_id, role)
) STRICT;
CREATE INDEX assignments_user_idx ON assignments (user_id, status);
