-- What a one-time sign-in link is for (SQLite). Same meaning as
-- migrations/postgres/20261206100000_signin_link_purpose.sql.
--   'signin'    every link issued by an admin, the CLI or the demo: refused when
--               auth.local_accounts = false (single sign-on only).
--   'bootstrap' the first administrator's link printed by `readroom serve` while no admin
--               exists: the documented break-glass path, accepted in SSO-only mode too.
ALTER TABLE signin_links ADD COLUMN purpose TEXT NOT NULL DEFAULT 'signin'
    CHECK (purpose IN ('signin', 'bootstrap'));
