-- readroom schema v1 (PostgreSQL): users, role grants, studies, bundles, cases, assignments.
-- Applied migrations are never edited; changes go into new, later-timestamped files.
-- Constraint names are explicit because the server maps them to error messages.

CREATE TABLE users (
    id           uuid        NOT NULL,
    username     text        NOT NULL,
    display_name text        NOT NULL,
    email        text,
    created_at   timestamptz NOT NULL,
    disabled     boolean     NOT NULL DEFAULT false,
    CONSTRAINT users_pkey PRIMARY KEY (id),
    CONSTRAINT users_username_key UNIQUE (username),
    CONSTRAINT users_username_check CHECK (length(username) BETWEEN 1 AND 64)
);

CREATE TABLE studies (
    id         uuid        NOT NULL,
    code       text        NOT NULL,
    title      text        NOT NULL,
    -- The age recipients (public keys only) new bundles are encrypted to, one per line.
    recipients text        NOT NULL,
    -- The number of the last case label handed out (C-0001 is 1); bumped inside each ingest.
    case_seq   bigint      NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL,
    CONSTRAINT studies_pkey PRIMARY KEY (id),
    CONSTRAINT studies_code_key UNIQUE (code),
    CONSTRAINT studies_code_check CHECK (code ~ '^[A-Z0-9][A-Z0-9-]{0,31}$'),
    CONSTRAINT studies_case_seq_check CHECK (case_seq >= 0)
);

CREATE TABLE role_grants (
    id         uuid        NOT NULL,
    user_id    uuid        NOT NULL,
    role       text        NOT NULL,
    -- NULL means the role holds in every study.
    study_id   uuid,
    granted_at timestamptz NOT NULL,
    -- NULL when the system granted it (bootstrap, demo seeding).
    granted_by uuid,
    CONSTRAINT role_grants_pkey PRIMARY KEY (id),
    CONSTRAINT role_grants_user_fkey FOREIGN KEY (user_id) REFERENCES users (id),
    CONSTRAINT role_grants_study_fkey FOREIGN KEY (study_id) REFERENCES studies (id),
    CONSTRAINT role_grants_granted_by_fkey FOREIGN KEY (granted_by) REFERENCES users (id),
    CONSTRAINT role_grants_role_check
        CHECK (role IN ('grader', 'adjudicator', 'coordinator', 'auditor', 'admin'))
);
-- One grant per user, role and scope; a global grant (NULL study) counts as one scope.
CREATE UNIQUE INDEX role_grants_scope_key
    ON role_grants (user_id, role, COALESCE(study_id, '00000000-0000-0000-0000-000000000000'::uuid));
CREATE INDEX role_grants_study_idx ON role_grants (study_id);

CREATE TABLE bundles (
    id                     uuid        NOT NULL,
    study_id               uuid        NOT NULL,
    subject                text        NOT NULL,
    visit                  text        NOT NULL,
    format                 text        NOT NULL,
    object_key             text        NOT NULL,
    ciphertext_sha256      text        NOT NULL,
    ciphertext_size        bigint      NOT NULL,
    plaintext_size         bigint      NOT NULL,
    file_count             bigint      NOT NULL,
    exam_count             bigint      NOT NULL,
    -- SHA-256 (hex) of the sorted recipients the ciphertext is encrypted to.
    recipients_fingerprint text        NOT NULL,
    -- Non-PHI summary of the exams (ids, kinds, eyes, frame counts, dimensions).
    summary                jsonb       NOT NULL,
    ingested_at            timestamptz NOT NULL,
    ingested_by            uuid,
    CONSTRAINT bundles_pkey PRIMARY KEY (id),
    CONSTRAINT bundles_study_fkey FOREIGN KEY (study_id) REFERENCES studies (id),
    CONSTRAINT bundles_ingested_by_fkey FOREIGN KEY (ingested_by) REFERENCES users (id),
    CONSTRAINT bundles_object_key_key UNIQUE (object_key),
    CONSTRAINT bundles_study_subject_visit_key UNIQUE (study_id, subject, visit),
    -- Target of the cases' composite foreign keys, which keep a case and its bundles in one study.
    CONSTRAINT bundles_id_study_key UNIQUE (id, study_id),
    CONSTRAINT bundles_ciphertext_sha256_check CHECK (ciphertext_sha256 ~ '^[0-9a-f]{64}$'),
    CONSTRAINT bundles_recipients_fingerprint_check CHECK (recipients_fingerprint ~ '^[0-9a-f]{64}$'),
    CONSTRAINT bundles_sizes_check
        CHECK (ciphertext_size >= 0 AND plaintext_size >= 0 AND file_count >= 0 AND exam_count >= 0)
);

CREATE TABLE cases (
    id              uuid        NOT NULL,
    study_id        uuid        NOT NULL,
    label           text        NOT NULL,
    bundle_id       uuid        NOT NULL,
    prior_bundle_id uuid,
    created_at      timestamptz NOT NULL,
    -- Demo lesion truth; never shown to graders.
    ground_truth    jsonb,
    CONSTRAINT cases_pkey PRIMARY KEY (id),
    CONSTRAINT cases_study_fkey FOREIGN KEY (study_id) REFERENCES studies (id),
    CONSTRAINT cases_bundle_fkey FOREIGN KEY (bundle_id, study_id) REFERENCES bundles (id, study_id),
    CONSTRAINT cases_prior_bundle_fkey
        FOREIGN KEY (prior_bundle_id, study_id) REFERENCES bundles (id, study_id),
    CONSTRAINT cases_study_label_key UNIQUE (study_id, label),
    CONSTRAINT cases_bundle_key UNIQUE (bundle_id),
    CONSTRAINT cases_prior_bundle_check CHECK (prior_bundle_id IS NULL OR prior_bundle_id <> bundle_id)
);
CREATE INDEX cases_prior_bundle_idx ON cases (prior_bundle_id);

CREATE TABLE assignments (
    id          uuid        NOT NULL,
    case_id     uuid        NOT NULL,
    user_id     uuid        NOT NULL,
    role        text        NOT NULL,
    assigned_at timestamptz NOT NULL,
    due_at      timestamptz,
    status      text        NOT NULL DEFAULT 'assigned',
    CONSTRAINT assignments_pkey PRIMARY KEY (id),
    CONSTRAINT assignments_case_fkey FOREIGN KEY (case_id) REFERENCES cases (id),
    CONSTRAINT assignments_user_fkey FOREIGN KEY (user_id) REFERENCES users (id),
    CONSTRAINT assignments_case_user_role_key UNIQUE (case_id, user_id, role),
    CONSTRAINT assignments_role_check CHECK (role IN ('grader', 'adjudicator')),
    CONSTRAINT assignments_status_check CHECK (status IN ('assigned', 'in_progress', 'done'))
);
CREATE INDEX assignments_user_idx ON assignments (user_id, status);
