-- Sign-in counters every server replica shares (SQLite). Same tables and meaning as
-- migrations/postgres/20261207000000_shared_signin_counters.sql.
CREATE TABLE signin_throttle (
    client       TEXT    NOT NULL PRIMARY KEY,
    window_start INTEGER NOT NULL,
    attempts     INTEGER NOT NULL CHECK (attempts >= 0)
) STRICT;

CREATE TABLE phantom_lockouts (
    name_sha256       TEXT    NOT NULL PRIMARY KEY,
    failed            INTEGER NOT NULL CHECK (failed >= 0),
    lockouts          INTEGER NOT NULL CHECK (lockouts >= 0),
    locked_until_unix INTEGER,
    last_unix         INTEGER NOT NULL
) STRICT;
CREATE INDEX phantom_lockouts_last ON phantom_lockouts (last_unix);
