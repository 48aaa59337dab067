-- The tamper-evident audit log (PostgreSQL). Same table and meaning as
-- migrations/sqlite/20261202000000_audit.sql; the chain is defined in domain/src/audit.rs.
-- Every column is stored as the text the hash covers, so verification needs no conversion.
CREATE TABLE audit_events (
    seq       bigint NOT NULL,
    at        text   NOT NULL,
    -- The user id (UUID text); NULL for the system or an unidentified client.
    actor     text,
    action    text   NOT NULL,
    target    text,
    outcome   text   NOT NULL,
    client    text,
    -- Canonical JSON object (sorted keys, no whitespace).
    details   text   NOT NULL,
    prev_hash text   NOT NULL,
    hash      text   NOT NULL,
    CONSTRAINT audit_events_pkey PRIMARY KEY (seq),
    CONSTRAINT audit_events_seq_check CHECK (seq >= 1),
    CONSTRAINT audit_events_outcome_check CHECK (outcome IN ('success', 'denied', 'failure')),
    CONSTRAINT audit_events_hash_check CHECK (length(prev_hash) = 64 AND length(hash) = 64)
);
CREATE INDEX audit_events_actor_idx ON audit_events (actor, seq);
CREATE INDEX audit_events_target_idx ON audit_events (target, seq);
CREATE INDEX audit_events_action_idx ON audit_events (action, seq);

-- The chain head, one row: writers lock it (SELECT … FOR UPDATE) so appends from every server
-- replica are serialized and the chain never forks.
CREATE TABLE audit_head (
    id   integer NOT NULL,
    seq  bigint  NOT NULL,
    hash text    NOT NULL,
    CONSTRAINT audit_head_pkey PRIMARY KEY (id),
    CONSTRAINT audit_head_one_row CHECK (id = 1)
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Append-only: UPDATE, DELETE and TRUNCATE are refused by triggers, whoever asks.
CREATE FUNCTION audit_events_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_refuse();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_refuse();

-- And the role that runs readroom (the one applying this migration, which owns the table)
-- gives up its own right to change or remove rows; nobody else ever had it.
REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM PUBLIC;
DO $$ BEGIN
    EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM %I', current_user);
END $$;
