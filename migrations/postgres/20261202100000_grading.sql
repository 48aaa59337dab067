-- Grading workflow (PostgreSQL): study forms, batches, repeat assignments, drafts, grades and
-- their versions, adjudications. Same tables and meaning as
-- migrations/sqlite/20261202100000_grading.sql. The rules live in domain/src/grading/.

-- A study's grading form, versioned: grades keep the version they were made with.
CREATE TABLE study_forms (
    id          uuid        NOT NULL,
    study_id    uuid        NOT NULL,
    version     integer     NOT NULL,
    -- The form as data (readroom-form/1, docs/grading-forms.md).
    definition  text        NOT NULL,
    -- SHA-256 of the form's canonical JSON.
    fingerprint text        NOT NULL,
    created_at  timestamptz NOT NULL,
    created_by  uuid,
    CONSTRAINT study_forms_pkey PRIMARY KEY (id),
    CONSTRAINT study_forms_study_fkey FOREIGN KEY (study_id) REFERENCES studies (id),
    CONSTRAINT study_forms_user_fkey FOREIGN KEY (created_by) REFERENCES users (id),
    CONSTRAINT study_forms_study_version_key UNIQUE (study_id, version),
    CONSTRAINT study_forms_version_check CHECK (version >= 1)
);

-- A batch: cases handed out together, with how many graders each and a due date.
CREATE TABLE batches (
    id              uuid        NOT NULL,
    study_id        uuid        NOT NULL,
    name            text        NOT NULL,
    per_case        integer     NOT NULL,
    repeat_fraction double precision NOT NULL,
    due_at          timestamptz,
    created_at      timestamptz NOT NULL,
    created_by      uuid,
    CONSTRAINT batches_pkey PRIMARY KEY (id),
    CONSTRAINT batches_study_fkey FOREIGN KEY (study_id) REFERENCES studies (id),
    CONSTRAINT batches_user_fkey FOREIGN KEY (created_by) REFERENCES users (id),
    CONSTRAINT batches_study_name_key UNIQUE (study_id, name),
    CONSTRAINT batches_per_case_check CHECK (per_case BETWEEN 1 AND 10),
    CONSTRAINT batches_repeat_check CHECK (repeat_fraction >= 0 AND repeat_fraction <= 0.5)
);

-- Assignments belong to a batch (NULL for single assignments) and are either a first grading
-- ('primary') or a hidden repeat of a case the grader graded before ('repeat').
ALTER TABLE assignments ADD COLUMN batch_id uuid;
ALTER TABLE assignments ADD COLUMN kind text NOT NULL DEFAULT 'primary';
ALTER TABLE assignments ADD CONSTRAINT assignments_batch_fkey
    FOREIGN KEY (batch_id) REFERENCES batches (id);
ALTER TABLE assignments ADD CONSTRAINT assignments_kind_check
    CHECK (kind IN ('primary', 'repeat'));
ALTER TABLE assignments DROP CONSTRAINT assignments_case_user_role_key;
ALTER TABLE assignments ADD CONSTRAINT assignments_case_user_role_key
    UNIQUE (case_id, user_id, role, kind);
CREATE INDEX assignments_batch_idx ON assignments (batch_id);

-- The one open draft of an assignment; `revision` guards against stale overwrites.
CREATE TABLE grade_drafts (
    assignment_id   uuid        NOT NULL,
    form_id         uuid        NOT NULL,
    grade_values    text        NOT NULL,
    revision        bigint      NOT NULL,
    render_state    text,
    lossless_sha256 text,
    started_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    CONSTRAINT grade_drafts_pkey PRIMARY KEY (assignment_id),
    CONSTRAINT grade_drafts_assignment_fkey FOREIGN KEY (assignment_id) REFERENCES assignments (id),
    CONSTRAINT grade_drafts_form_fkey FOREIGN KEY (form_id) REFERENCES study_forms (id),
    CONSTRAINT grade_drafts_revision_check CHECK (revision >= 1)
);

-- Submitted grades: immutable; an amendment is a new version with a reason.
CREATE TABLE grades (
    id              uuid        NOT NULL,
    assignment_id   uuid        NOT NULL,
    case_id         uuid        NOT NULL,
    grader_id       uuid        NOT NULL,
    form_id         uuid        NOT NULL,
    version         integer     NOT NULL,
    grade_values    text        NOT NULL,
    -- The view the grade was made on, and the lossless frame's SHA-256 the browser verified.
    render_state    text,
    lossless_sha256 text,
    reason          text,
    -- Milliseconds from opening the draft to submitting.
    duration_ms     bigint,
    submitted_at    timestamptz NOT NULL,
    CONSTRAINT grades_pkey PRIMARY KEY (id),
    CONSTRAINT grades_assignment_fkey FOREIGN KEY (assignment_id) REFERENCES assignments (id),
    CONSTRAINT grades_case_fkey FOREIGN KEY (case_id) REFERENCES cases (id),
    CONSTRAINT grades_grader_fkey FOREIGN KEY (grader_id) REFERENCES users (id),
    CONSTRAINT grades_form_fkey FOREIGN KEY (form_id) REFERENCES study_forms (id),
    CONSTRAINT grades_assignment_version_key UNIQUE (assignment_id, version),
    CONSTRAINT grades_version_check CHECK (version >= 1),
    CONSTRAINT grades_reason_check CHECK (version = 1 OR (reason IS NOT NULL AND length(reason) > 0))
);
CREATE INDEX grades_case_idx ON grades (case_id);

-- Disagreements between a case's primary grades, and their resolution.
CREATE TABLE adjudications (
    id              uuid        NOT NULL,
    case_id         uuid        NOT NULL,
    round           integer     NOT NULL,
    -- JSON list of the disagreeing fields (field, eye, rule, a, b).
    disagreements   text        NOT NULL,
    -- JSON list of the grade ids compared.
    grade_ids       text        NOT NULL,
    status          text        NOT NULL,
    created_at      timestamptz NOT NULL,
    adjudicator_id  uuid,
    form_id         uuid,
    grade_values    text,
    render_state    text,
    lossless_sha256 text,
    reason          text,
    resolved_at     timestamptz,
    CONSTRAINT adjudications_pkey PRIMARY KEY (id),
    CONSTRAINT adjudications_case_fkey FOREIGN KEY (case_id) REFERENCES cases (id),
    CONSTRAINT adjudications_user_fkey FOREIGN KEY (adjudicator_id) REFERENCES users (id),
    CONSTRAINT adjudications_form_fkey FOREIGN KEY (form_id) REFERENCES study_forms (id),
    CONSTRAINT adjudications_case_round_key UNIQUE (case_id, round),
    CONSTRAINT adjudications_status_check CHECK (status IN ('open', 'resolved')),
    CONSTRAINT adjudications_resolved_check CHECK (
        status = 'open' OR (adjudicator_id IS NOT NULL AND grade_values IS NOT NULL AND resolved_at IS NOT NULL))
);
CREATE INDEX adjudications_status_idx ON adjudications (status, case_id);
