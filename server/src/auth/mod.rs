//! Authentication: who is making a request.
//!
//! - [`session`]: the session cookie and expiry rules.
//! - [`password`], [`totp`]: local-account secrets; [`tokens`]: random tokens and their hashes.
//! - [`lockout`]: lockout of names without an account (so lockout does not reveal accounts).
//! - [`oidc`]: OpenID Connect relying party.
//! - [`redirect`]: the open-redirect guard for `return_to`.
//! - [`throttle`]: per-address sign-in rate limit.
//! - [`refusals`]: refused sign-ins counted per address and window instead of one event each.
//! - [`keys`]: the streaming-ticket signing key and the server secrets key.
//! - [`at_rest`]: TOTP secrets and ID tokens sealed with the server secrets key;
//!   [`sealing`]: the start-up pass that seals plain values and checks the key.
//! - [`flows`]: the sign-in, sign-out and account operations the HTTP handlers call.
//!
//! What a signed-in user may *do* is decided in [`crate::access`].

pub mod at_rest;
pub mod flows;
pub mod keys;
pub mod lockout;
pub mod oidc;
pub mod password;
pub mod redirect;
pub mod refusals;
pub mod sealing;
pub mod session;
pub mod throttle;
pub mod ticket_seal;
pub mod tokens;
pub mod totp;

use readroom_domain::ticket::TicketSigner;
use time::OffsetDateTime;

use crate::access::{Grant, Principal};
use crate::config::Config;
use crate::db::{Db, DbError, Session, User};
use session::{CookiePolicy, SessionState};

/// Refused sign-ins of one address recorded one by one per window (the rest are counted).
pub const REFUSALS_RECORDED_PER_ADDRESS: u32 = 10;
/// Refused sign-ins of all addresses together recorded one by one per window.
pub const REFUSALS_RECORDED_PER_WINDOW: u32 = 300;

/// Everything authentication needs besides the database, built once at start-up.
pub struct AuthState {
    /// How the session cookie is written.
    pub cookie: CookiePolicy,
    /// The public origin (`scheme://host[:port]`), for the cross-site request check.
    pub origin: String,
    /// The public base URL (no trailing slash), for links and redirect URIs.
    pub public_url: String,
    /// Idle timeout, seconds.
    pub idle_seconds: i64,
    /// Absolute timeout, seconds.
    pub absolute_seconds: i64,
    /// Sign-in link lifetime, seconds.
    pub link_seconds: i64,
    /// Failures before a lockout.
    pub lockout_threshold: u32,
    /// Whether local accounts may sign in.
    pub local_accounts: bool,
    /// Lockout counters of usernames without a usable account.
    pub phantom_lockouts: lockout::PhantomLockouts,
    /// Per-address sign-in throttle (password, link and OIDC callback).
    pub throttle: throttle::LoginThrottle,
    /// Refused sign-ins, recorded one by one up to a budget, then counted.
    pub refusals: refusals::Refusals,
    /// Configured identity providers.
    pub oidc: oidc::OidcProviders,
    /// Signs streaming tickets.
    pub tickets: TicketSigner,
    /// Seals TOTP secrets and ID tokens stored in the database.
    pub secrets: at_rest::SecretsKey,
}

impl AuthState {
    /// Builds the state for a server reachable at `public_url`.
    pub fn new(config: &Config, public_url: &str) -> anyhow::Result<AuthState> {
        let public_url = public_url.trim_end_matches('/').to_owned();
        let cookie = CookiePolicy::for_public_url(&public_url)?;
        let parsed = url::Url::parse(&public_url)?;
        let origin = parsed.origin().ascii_serialization();
        let auth = &config.auth;
        let hours = |h: u64| i64::try_from(h.saturating_mul(3600)).unwrap_or(i64::MAX);
        Ok(AuthState {
            cookie,
            origin,
            idle_seconds: i64::try_from(auth.session_idle_minutes.max(1).saturating_mul(60))
                .unwrap_or(i64::MAX),
            absolute_seconds: hours(auth.session_absolute_hours.max(1)),
            link_seconds: hours(auth.link_ttl_hours.max(1)),
            lockout_threshold: auth.lockout_threshold.max(1),
            phantom_lockouts: lockout::PhantomLockouts::new(auth.lockout_threshold),
            local_accounts: auth.local_accounts,
            throttle: throttle::LoginThrottle::new(auth.login_attempts_per_minute),
            refusals: refusals::Refusals::new(
                auth.refusal_window_secs,
                REFUSALS_RECORDED_PER_ADDRESS,
                REFUSALS_RECORDED_PER_WINDOW,
            ),
            oidc: oidc::OidcProviders::new(&auth.oidc, &public_url)
                .map_err(|err| anyhow::anyhow!("invalid [[auth.oidc]] configuration: {err}"))?,
            tickets: keys::load_or_create_ticket_key(&config.ticket_key_path())?,
            secrets: keys::load_secrets_key(config)?,
            public_url,
        })
    }

    /// The one-time sign-in URL for a link token (the token travels in the fragment).
    pub fn signin_url(&self, token: &str) -> String {
        format!("{}/signin#token={token}", self.public_url)
    }
}

/// A request's signed-in user: session, account and grants.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The session.
    pub session: Session,
    /// The account.
    pub user: User,
    /// The account's grants, for [`crate::access`].
    pub principal: Principal,
    /// The address this request came from (set by the policy middleware).
    pub client: Option<std::net::IpAddr>,
}

/// Why a request has no signed-in user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoSession {
    /// No cookie, an unknown token, or a disabled account.
    Missing,
    /// The session timed out (idle or absolute); it has been deleted.
    Expired,
}

/// The current Unix second.
pub fn now_unix() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// Loads the grants of a user as a [`Principal`].
pub async fn principal(db: &Db, user_id: uuid::Uuid) -> Result<Principal, DbError> {
    let grants = db.roles_of(user_id).await?;
    Ok(Principal {
        user_id,
        grants: grants
            .into_iter()
            .map(|grant| Grant {
                role: grant.role,
                study: grant.study_id,
            })
            .collect(),
    })
}

/// Resolves the session cookie `token` at `now`: checks expiry (deleting an expired session),
/// refreshes `last_seen` at most once a minute, and loads the user and grants.
pub async fn resolve(
    db: &Db,
    auth: &AuthState,
    token: Option<&str>,
    now: i64,
) -> Result<Result<SignedIn, NoSession>, DbError> {
    let Some(token) = token.filter(|t| tokens::looks_like_token(t)) else {
        return Ok(Err(NoSession::Missing));
    };
    let found = match db
        .session_with_user_by_token_hash(&tokens::hash_token(token))
        .await
    {
        Ok(found) => found,
        Err(DbError::NotFound) => return Ok(Err(NoSession::Missing)),
        Err(err) => return Err(err),
    };
    let crate::db::SessionWithUser {
        session,
        user,
        grants,
    } = found;
    match session::session_state(&session, now, auth.idle_seconds) {
        SessionState::Active => {}
        SessionState::IdleExpired | SessionState::AbsoluteExpired => {
            db.delete_session(session.id).await?;
            return Ok(Err(NoSession::Expired));
        }
    }
    if user.disabled {
        db.delete_session(session.id).await?;
        return Ok(Err(NoSession::Missing));
    }
    if session::needs_touch(&session, now) {
        db.touch_session(session.id, now).await?;
    }
    let principal = Principal {
        user_id: user.id,
        grants: grants
            .into_iter()
            .map(|(role, study)| Grant { role, study })
            .collect(),
    };
    Ok(Ok(SignedIn {
        session,
        user,
        principal,
        client: None,
    }))
}
