-- Sign-in counters every server replica shares (before this they were kept in each process's
-- memory, so two replicas gave an attacker twice the budget, and a name without an account
-- locked after more failures than a real account does: an enumeration oracle).
-- signin_throttle: attempts per client address (an IPv6 /64 counts as one) in the current
-- one-minute window.
CREATE TABLE signin_throttle (
    client       TEXT   NOT NULL PRIMARY KEY,
    window_start BIGINT NOT NULL,
    attempts     BIGINT NOT NULL CHECK (attempts >= 0)
);

-- phantom_lockouts: failure counters of usernames that have no usable account (unknown or
-- disabled), keyed by the SHA-256 (hex) of the lowercased name: no username is stored. The same
-- rule as credentials.failed_logins / lockouts / locked_until_unix.
CREATE TABLE phantom_lockouts (
    name_sha256       TEXT   NOT NULL PRIMARY KEY,
    failed            BIGINT NOT NULL CHECK (failed >= 0),
    lockouts          BIGINT NOT NULL CHECK (lockouts >= 0),
    locked_until_unix BIGINT,
    last_unix         BIGINT NOT NULL
);
CREATE INDEX phantom_lockouts_last ON phantom_lockouts (last_unix);
