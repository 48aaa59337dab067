-- The tamper-evident audit log (SQLite). Same table and meaning as
-- migrations/postgres/20261202000000_audit.sql; the chain is defined in domain/src/audit.rs.
-- Every column is stored as the text the hash covers, so verification needs no conversion.
CREATE TABLE audit_events (
    seq       INTEGER NOT NULL PRIMARY KEY CHECK (seq >= 1),
    at        TEXT    NOT NULL,
    -- The user id (UUID text); NULL for the system or an unidentified client.
    actor     TEXT,
    action    TEXT    NOT NULL,
    target    TEXT,
    outcome   TEXT    NOT NULL CHECK (outcome IN ('success', 'denied', 'failure')),
    client    TEXT,
    -- Canonical JSON object (sorted keys, no whitespace).
    details   TEXT    NOT NULL,
    prev_hash TEXT    NOT NULL CHECK (length(prev_hash) = 64),
    hash      TEXT    NOT NULL CHECK (length(hash) = 64)
) STRICT;
CREATE INDEX audit_events_actor_idx ON audit_events (actor, seq);
CREATE INDEX audit_events_target_idx ON audit_events (target, seq);
CREATE INDEX audit_events_action_idx ON audit_events (action, seq);

-- The chain head, one row: a writer's first statement updates it, which takes SQLite's write
-- lock before anything is read, so concurrent appends (server and CLI processes) never fork.
CREATE TABLE audit_head (
    id   INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL CHECK (seq >= 0),
    hash TEXT    NOT NULL CHECK (length(hash) = 64)
) STRICT;
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Append-only: rows are never changed or removed.
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only: UPDATE refused');
END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only: DELETE refused');
END;
