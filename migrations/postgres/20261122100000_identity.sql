-- Identity and access (PostgreSQL): credentials, sessions, one-time sign-in links, pending OIDC
-- logins, external identities, and where a role grant came from.
-- Same tables and meaning as migrations/sqlite/20261122100000_identity.sql.

-- Where a grant came from: 'manual' (admin, CLI, demo) or 'idp:<provider>' (claims at sign-in,
-- replaced at every sign-in through that provider).
ALTER TABLE role_grants ADD COLUMN source text NOT NULL DEFAULT 'manual'
    CONSTRAINT role_grants_source_check CHECK (source = 'manual' OR source ~ '^idp:.+$');

-- Local-account secrets and sign-in throttling state; one row per user that has any.
CREATE TABLE credentials (
    user_id             uuid        NOT NULL,
    -- argon2id PHC string; NULL until the user sets a password.
    password_hash       text,
    password_changed_at timestamptz,
    -- Base32 TOTP secret once enabled; the pending one between setup and confirmation.
    totp_secret         text,
    totp_pending_secret text,
    -- The last accepted TOTP time step: a code is accepted once.
    totp_last_step      bigint,
    -- Consecutive failed sign-ins, and how many lockouts in a row (the backoff exponent).
    failed_logins       bigint      NOT NULL DEFAULT 0,
    lockouts            bigint      NOT NULL DEFAULT 0,
    -- Deadlines are Unix seconds (UTC), compared in SQL the same way on both backends.
    locked_until_unix   bigint,
    CONSTRAINT credentials_pkey PRIMARY KEY (user_id),
    CONSTRAINT credentials_user_fkey FOREIGN KEY (user_id) REFERENCES users (id),
    CONSTRAINT credentials_counts_check CHECK (failed_logins >= 0 AND lockouts >= 0)
);

-- Server-side sessions. The cookie holds a random token; only its SHA-256 is stored.
CREATE TABLE sessions (
    id           uuid        NOT NULL,
    token_hash   text        NOT NULL,
    user_id      uuid        NOT NULL,
    csrf_token   text        NOT NULL,
    -- 'password', 'link' or 'oidc:<provider>'.
    auth_method  text        NOT NULL,
    -- The IdP's ID token, kept only as the hint for RP-initiated logout.
    id_token     text,
    created_at   timestamptz NOT NULL,
    -- Unix seconds: the last request (idle expiry is this + the idle time) and the absolute end.
    last_seen_unix bigint NOT NULL,
    expires_unix   bigint NOT NULL,
    client_addr  text,
    CONSTRAINT sessions_pkey PRIMARY KEY (id),
    CONSTRAINT sessions_token_hash_key UNIQUE (token_hash),
    CONSTRAINT sessions_user_fkey FOREIGN KEY (user_id) REFERENCES users (id),
    CONSTRAINT sessions_token_hash_check CHECK (length(token_hash) = 64)
);
CREATE INDEX sessions_user_idx ON sessions (user_id);
CREATE INDEX sessions_expires_idx ON sessions (expires_unix);

-- One-time sign-in links (first admin, demo users, password resets). Only the token's hash.
CREATE TABLE signin_links (
    id         uuid        NOT NULL,
    token_hash text        NOT NULL,
    user_id    uuid        NOT NULL,
    created_at timestamptz NOT NULL,
    expires_unix bigint     NOT NULL,
    used_at    timestamptz,
    created_by uuid,
    CONSTRAINT signin_links_pkey PRIMARY KEY (id),
    CONSTRAINT signin_links_token_hash_key UNIQUE (token_hash),
    CONSTRAINT signin_links_user_fkey FOREIGN KEY (user_id) REFERENCES users (id),
    CONSTRAINT signin_links_created_by_fkey FOREIGN KEY (created_by) REFERENCES users (id),
    CONSTRAINT signin_links_token_hash_check CHECK (length(token_hash) = 64)
);
CREATE INDEX signin_links_user_idx ON signin_links (user_id);

-- OIDC logins between the redirect to the provider and its callback, keyed by the state's hash.
CREATE TABLE oidc_logins (
    state_hash    text        NOT NULL,
    provider      text        NOT NULL,
    nonce         text        NOT NULL,
    pkce_verifier text        NOT NULL,
    return_to     text        NOT NULL,
    created_at    timestamptz NOT NULL,
    expires_unix  bigint      NOT NULL,
    CONSTRAINT oidc_logins_pkey PRIMARY KEY (state_hash),
    CONSTRAINT oidc_logins_state_hash_check CHECK (length(state_hash) = 64)
);

-- A user's identity at an OIDC provider (the `sub` claim is stable per provider).
CREATE TABLE external_identities (
    provider      text        NOT NULL,
    subject       text        NOT NULL,
    user_id       uuid        NOT NULL,
    created_at    timestamptz NOT NULL,
    last_login_at timestamptz NOT NULL,
    CONSTRAINT external_identities_pkey PRIMARY KEY (provider, subject),
    CONSTRAINT external_identities_user_fkey FOREIGN KEY (user_id) REFERENCES users (id)
);
CREATE INDEX external_identities_user_idx ON external_identities (user_id);
