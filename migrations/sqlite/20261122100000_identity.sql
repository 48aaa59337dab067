-- Identity and access (SQLite): credentials, sessions, one-time sign-in links, pending OIDC
-- logins, external identities, and where a role grant came from.
-- Same tables and meaning as migrations/postgres/20261122100000_identity.sql.

-- Where a grant came from: 'manual' (admin, CLI, demo) or 'idp:<provider>' (claims at sign-in,
-- replaced at every sign-in through that provider).
ALTER TABLE role_grants ADD COLUMN source TEXT NOT NULL DEFAULT 'manual'
    CHECK (source = 'manual' OR source GLOB 'idp:?*');

-- Local-account secrets and sign-in throttling state; one row per user that has any.
CREATE TABLE credentials (
    user_id             BLOB    NOT NULL PRIMARY KEY REFERENCES users (id),
    -- argon2id PHC string; NULL until the user sets a password.
    password_hash       TEXT,
    password_changed_at TEXT,
    -- Base32 TOTP secret once enabled; the pending one between setup and confirmation.
    totp_secret         TEXT,
    totp_pending_secret TEXT,
    -- The last accepted TOTP time step: a code is accepted once.
    totp_last_step      INTEGER,
    -- Consecutive failed sign-ins, and how many lockouts in a row (the backoff exponent).
    failed_logins       INTEGER NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
    lockouts            INTEGER NOT NULL DEFAULT 0 CHECK (lockouts >= 0),
    -- Deadlines are Unix seconds (UTC), compared in SQL the same way on both backends.
    locked_until_unix   INTEGER
) STRICT;

-- Server-side sessions. The cookie holds a random token; only its SHA-256 is stored.
CREATE TABLE sessions (
    id           BLOB NOT NULL PRIMARY KEY CHECK (length(id) = 16),
    token_hash   TEXT NOT NULL CHECK (length(token_hash) = 64),
    user_id      BLOB NOT NULL REFERENCES users (id),
    csrf_token   TEXT NOT NULL,
    -- 'password', 'link' or 'oidc:<provider>'.
    auth_method  TEXT NOT NULL,
    -- The IdP's ID token, kept only as the hint for RP-initiated logout.
    id_token     TEXT,
    created_at   TEXT NOT NULL,
    -- Unix seconds: the last request (idle expiry is this + the idle time) and the absolute end.
    last_seen_unix INTEGER NOT NULL,
    expires_unix   INTEGER NOT NULL,
    client_addr  TEXT,
    CONSTRAINT sessions_token_hash_key UNIQUE (token_hash)
) STRICT;
CREATE INDEX sessions_user_idx ON sessions (user_id);
CREATE INDEX sessions_expires_idx ON sessions (expires_unix);

-- One-time sign-in links (first admin, demo users, password resets). Only the token's hash.
CREATE TABLE signin_links (
    id         BLOB NOT NULL PRIMARY KEY CHECK (length(id) = 16),
    token_hash TEXT NOT NULL CHECK (length(token_hash) = 64),
    user_id    BLOB NOT NULL REFERENCES users (id),
    created_at TEXT NOT NULL,
    expires_unix INTEGER NOT NULL,
    used_at    TEXT,
    created_by BLOB REFERENCES users (id),
    CONSTRAINT signin_links_token_hash_key UNIQUE (token_hash)
) STRICT;
CREATE INDEX signin_links_user_idx ON signin_links (user_id);

-- OIDC logins between the redirect to the provider and its callback, keyed by the state's hash.
CREATE TABLE oidc_logins (
    state_hash    TEXT NOT NULL PRIMARY KEY CHECK (length(state_hash) = 64),
    provider      TEXT NOT NULL,
    nonce         TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    return_to     TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    expires_unix  INTEGER NOT NULL
) STRICT;

-- A user's identity at an OIDC provider (the `sub` claim is stable per provider).
CREATE TABLE external_identities (
    provider      TEXT NOT NULL,
    subject       TEXT NOT NULL,
    user_id       BLOB NOT NULL REFERENCES users (id),
    created_at    TEXT NOT NULL,
    last_login_at TEXT NOT NULL,
    PRIMARY KEY (provider, subject)
) STRICT;
CREATE INDEX external_identities_user_idx ON external_identities (user_id);
