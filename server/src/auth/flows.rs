//! Sign-in, sign-out and account operations, independent of HTTP.
//!
//! Each function does one user-visible thing against the database and returns a typed outcome;
//! the handlers in `http::auth` only translate requests and outcomes.

use std::net::IpAddr;

use uuid::Uuid;

use super::at_rest::Column;
use super::{AuthState, password, redirect, tokens, totp};
use crate::db::{
    Db, DbError, LinkPurpose, NewSession, NewUser, PendingOidcLogin, Role, Session, StudyCode, User,
};

/// How long an OIDC login may take between the redirect and the callback.
const OIDC_LOGIN_SECONDS: i64 = 600;

/// Why a sign-in failed.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// Too many attempts from this address.
    #[error("too many sign-in attempts from this address; wait a minute")]
    Throttled,
    /// The account is locked after repeated failures.
    #[error("too many failed sign-ins; try again in {retry_after} s")]
    Locked {
        /// Seconds until the lock ends.
        retry_after: i64,
    },
    /// Unknown user, wrong password, disabled account: one answer for all.
    #[error("wrong username or password")]
    InvalidCredentials,
    /// The password was right; the account also needs a TOTP code.
    #[error("this account needs a one-time code from its authenticator app")]
    TotpRequired,
    /// The TOTP code was wrong or already used.
    #[error("the one-time code is wrong or was already used")]
    InvalidTotp,
    /// Local accounts are switched off on this server.
    #[error("local accounts are disabled on this server; use single sign-on")]
    LocalAccountsDisabled,
    /// A one-time link that is unknown, used or expired.
    #[error("this sign-in link is invalid, was already used, or has expired")]
    InvalidLink,
    /// OIDC failed (the code names the step).
    #[error("single sign-on failed: {0}")]
    Oidc(#[from] super::oidc::OidcError),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Anything else.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Checks a username, password and (if the account has TOTP) one-time code.
pub async fn password_sign_in(
    db: &Db,
    auth: &AuthState,
    client: IpAddr,
    username: &str,
    password_text: &str,
    totp_code: Option<&str>,
    now: i64,
) -> Result<User, SignInError> {
    if !auth.local_accounts {
        return Err(SignInError::LocalAccountsDisabled);
    }
    if !auth.throttle.allow(db, client, now).await? {
        return Err(SignInError::Throttled);
    }
    let user = match db.user_by_username(username).await {
        Ok(user) if !user.disabled => user,
        Ok(_) | Err(DbError::NotFound) => {
            // No usable account: the same answers, lockout and work as for a real one (a lock
            // is checked before the password, a failure costs the same argon2 verification), so
            // neither the answer nor its timing reveals which names exist.
            let phantom = &auth.phantom_lockouts;
            if let Some(until) = phantom.locked_until(db, username, now).await? {
                return Err(SignInError::Locked {
                    retry_after: until - now,
                });
            }
            password::verify(None, password_text.to_owned()).await;
            return Err(
                match phantom
                    .failure(db, username, now, password::lock_seconds)
                    .await?
                {
                    Some(until) => SignInError::Locked {
                        retry_after: until - now,
                    },
                    None => SignInError::InvalidCredentials,
                },
            );
        }
        Err(err) => return Err(err.into()),
    };
    let credentials = db.credentials(user.id).await?;
    if let Some(until) = credentials.locked_until_unix.filter(|until| *until > now) {
        return Err(SignInError::Locked {
            retry_after: until - now,
        });
    }
    let ok = password::verify(credentials.password_hash.clone(), password_text.to_owned()).await;
    if !ok {
        return Err(count_failure(db, auth, user.id, now).await);
    }
    if let Some(stored) = &credentials.totp_secret {
        check_totp(db, auth, user.id, stored, totp_code, now).await?;
    }
    db.clear_login_failures(user.id).await?;
    Ok(user)
}

async fn count_failure(db: &Db, auth: &AuthState, user_id: Uuid, now: i64) -> SignInError {
    match db
        .record_login_failure(user_id, auth.lockout_threshold, now, password::lock_seconds)
        .await
    {
        Ok(Some(until)) => {
            tracing::warn!(user_id = %user_id, "account locked after repeated sign-in failures");
            SignInError::Locked {
                retry_after: until - now,
            }
        }
        Ok(None) => SignInError::InvalidCredentials,
        Err(err) => err.into(),
    }
}

/// Uses a one-time sign-in link token. A link is a first factor like a password: an account
/// with TOTP must also give a current code (`totp_code`), and the link stays unused until it
/// does (the sign-in page asks and posts the link again with the code). With local accounts off
/// only the first administrator's bootstrap link is accepted (the break-glass path).
pub async fn link_sign_in(
    db: &Db,
    auth: &AuthState,
    client: IpAddr,
    token: &str,
    totp_code: Option<&str>,
    now: i64,
) -> Result<User, SignInError> {
    // Only wrong tokens spend the address's sign-in budget: guessing is what it limits, and a
    // valid link works once anyway.
    let invalid = || async {
        match auth.throttle.allow(db, client, now).await {
            Ok(true) => SignInError::InvalidLink,
            Ok(false) => SignInError::Throttled,
            Err(err) => err.into(),
        }
    };
    if !tokens::looks_like_token(token) {
        return Err(invalid().await);
    }
    let token_hash = tokens::hash_token(token);
    let (user_id, purpose) = match db.peek_signin_link(&token_hash, now).await {
        Ok(found) => found,
        Err(DbError::NotFound) => return Err(invalid().await),
        Err(err) => return Err(err.into()),
    };
    let user = db.user_by_id(user_id).await?;
    if user.disabled {
        return Err(SignInError::InvalidLink);
    }
    if !auth.local_accounts && !break_glass(db, purpose, user.id).await? {
        return Err(SignInError::LocalAccountsDisabled);
    }
    let credentials = db.credentials(user.id).await?;
    let second_factor = credentials.totp_secret.is_some();
    if let Some(stored) = &credentials.totp_secret {
        if let Some(until) = credentials.locked_until_unix.filter(|until| *until > now) {
            return Err(SignInError::Locked {
                retry_after: until - now,
            });
        }
        check_totp(db, auth, user.id, stored, totp_code, now).await?;
    }
    match db.redeem_signin_link(&token_hash, now).await {
        Ok(redeemed) if redeemed == user.id => {}
        Ok(_) | Err(DbError::NotFound) => return Err(SignInError::InvalidLink),
        Err(err) => return Err(err.into()),
    }
    if second_factor {
        db.clear_login_failures(user.id).await?;
    }
    Ok(user)
}

/// Whether a link may be used with local accounts off: only the bootstrap link, and only for an
/// account that (still) holds the admin role.
async fn break_glass(db: &Db, purpose: LinkPurpose, user_id: Uuid) -> Result<bool, DbError> {
    if purpose != LinkPurpose::Bootstrap {
        return Ok(false);
    }
    let grants = db.roles_of(user_id).await?;
    Ok(grants.iter().any(|grant| grant.role == Role::Admin))
}

/// The TOTP step of a sign-in: a missing code asks for one; a wrong or replayed one counts as a
/// failed sign-in (towards the lockout). `stored` is the secret as stored (sealed); one that
/// cannot be opened fails the sign-in with an internal error naming the user, not the secret.
async fn check_totp(
    db: &Db,
    auth: &AuthState,
    user_id: Uuid,
    stored: &str,
    code: Option<&str>,
    now: i64,
) -> Result<(), SignInError> {
    let Some(code) = code.filter(|c| !c.is_empty()) else {
        return Err(SignInError::TotpRequired);
    };
    let secret = auth
        .secrets
        .open(Column::TotpSecret, user_id, stored)
        .map_err(anyhow::Error::from)?;
    let step = totp::check(&secret, code, u64::try_from(now).unwrap_or(0));
    let accepted = match step {
        Some(step) => db.accept_totp_step(user_id, step).await?,
        None => false,
    };
    if accepted {
        return Ok(());
    }
    Err(match count_failure(db, auth, user_id, now).await {
        SignInError::InvalidCredentials => SignInError::InvalidTotp,
        other => other,
    })
}

/// Mints a one-time sign-in link for a user; returns its URL and expiry (Unix seconds).
pub async fn issue_link(
    db: &Db,
    auth: &AuthState,
    user_id: Uuid,
    created_by: Option<Uuid>,
    now: i64,
) -> Result<(String, i64), DbError> {
    issue_link_for(db, auth, user_id, created_by, LinkPurpose::SignIn, now).await
}

/// Mints a one-time sign-in link with a purpose (the bootstrap link is the break-glass one).
pub async fn issue_link_for(
    db: &Db,
    auth: &AuthState,
    user_id: Uuid,
    created_by: Option<Uuid>,
    purpose: LinkPurpose,
    now: i64,
) -> Result<(String, i64), DbError> {
    let token = tokens::random_token();
    let expires = now + auth.link_seconds;
    db.create_signin_link(
        user_id,
        &tokens::hash_token(&token),
        expires,
        created_by,
        purpose,
    )
    .await?;
    Ok((auth.signin_url(&token), expires))
}

/// Who signed in, and how.
#[derive(Debug, Clone)]
pub struct SessionStart {
    /// The user.
    pub user_id: Uuid,
    /// `password`, `link` or `oidc:<provider>`.
    pub auth_method: String,
    /// The IdP's ID token (OIDC sign-ins), in clear; [`start_session`] stores it sealed.
    pub id_token: Option<String>,
    /// The client's address.
    pub client: Option<IpAddr>,
}

/// A new session for a user who just signed in. Any session the browser already had is ended
/// first (the session id changes at every sign-in). Returns the cookie token and the session.
pub async fn start_session(
    db: &Db,
    auth: &AuthState,
    start: SessionStart,
    previous: Option<&Session>,
    now: i64,
) -> Result<(String, Session), DbError> {
    if let Some(previous) = previous {
        db.delete_session(previous.id).await?;
    }
    let token = tokens::random_token();
    let session = db
        .create_session(&NewSession {
            token_hash: tokens::hash_token(&token),
            user_id: start.user_id,
            csrf_token: tokens::random_token(),
            auth_method: start.auth_method,
            id_token: start
                .id_token
                .map(|id_token| auth.secrets.seal(Column::IdToken, start.user_id, &id_token)),
            expires_unix: now + auth.absolute_seconds,
            client_addr: start.client.map(|ip| ip.to_string()),
        })
        .await?;
    Ok((token, session))
}

/// Why a password change (or another change that needs the current password) was refused.
#[derive(Debug, thiserror::Error)]
pub enum PasswordChangeError {
    /// The current password is missing or wrong.
    #[error("the current password is wrong")]
    WrongCurrent,
    /// The account has no password yet, and this change needs one.
    #[error("set a password first: this change needs the current password")]
    NoPassword,
    /// Too many wrong passwords: the account is locked.
    #[error("too many failed sign-ins; try again in {retry_after} s")]
    Locked {
        /// Seconds until the lock ends.
        retry_after: i64,
    },
    /// The new password breaks a rule.
    #[error(transparent)]
    Rule(#[from] password::PasswordRule),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Anything else.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Checks the signed-in user's current password before a credential change. A wrong one counts
/// as a failed sign-in (so a stolen session cannot guess it without hitting the lockout), and a
/// locked account is refused. An account without a password passes only if `required` is false.
pub async fn check_current_password(
    db: &Db,
    auth: &AuthState,
    user: &User,
    current: Option<&str>,
    required: bool,
    now: i64,
) -> Result<(), PasswordChangeError> {
    let credentials = db.credentials(user.id).await?;
    let Some(stored) = credentials.password_hash else {
        return if required {
            Err(PasswordChangeError::NoPassword)
        } else {
            Ok(())
        };
    };
    if let Some(until) = credentials.locked_until_unix.filter(|until| *until > now) {
        return Err(PasswordChangeError::Locked {
            retry_after: until - now,
        });
    }
    let current = current.ok_or(PasswordChangeError::WrongCurrent)?;
    if password::verify(Some(stored), current.to_owned()).await {
        return Ok(());
    }
    match count_failure(db, auth, user.id, now).await {
        SignInError::Locked { retry_after } => Err(PasswordChangeError::Locked { retry_after }),
        SignInError::Db(err) => Err(err.into()),
        _ => Err(PasswordChangeError::WrongCurrent),
    }
}

/// Sets a new password. Once a password exists, the current one must be given. Every other
/// session of the user ends (`keep` is the session making the change); returns how many.
pub async fn change_password(
    db: &Db,
    auth: &AuthState,
    user: &User,
    keep: Uuid,
    current: Option<&str>,
    new_password: &str,
    now: i64,
) -> Result<u64, PasswordChangeError> {
    password::check_new_password(new_password, &user.username)?;
    check_current_password(db, auth, user, current, false, now).await?;
    let hash = password::hash(new_password.to_owned()).await?;
    db.set_password_hash(user.id, &hash).await?;
    Ok(db.delete_other_sessions(user.id, keep).await?)
}

/// Starts an OIDC sign-in: remembers the login and returns the provider's authorization URL
/// and the `state`, which the caller binds to the browser (a cookie checked at the callback).
pub async fn oidc_begin(
    db: &Db,
    auth: &AuthState,
    provider: &str,
    return_to: Option<&str>,
    login_hint: Option<&str>,
    now: i64,
) -> Result<(String, String), SignInError> {
    let (mut url, pending) = auth.oidc.begin(provider).await?;
    if let Some(hint) = login_hint.filter(|h| !h.is_empty() && h.len() <= 256) {
        url.query_pairs_mut().append_pair("login_hint", hint);
    }
    db.create_oidc_login(
        &tokens::hash_token(&pending.state),
        &PendingOidcLogin {
            provider: pending.provider.clone(),
            nonce: pending.nonce.clone(),
            pkce_verifier: pending.pkce_verifier.clone(),
            return_to: redirect::safe_return_to(return_to),
            expires_unix: now + OIDC_LOGIN_SECONDS,
        },
    )
    .await?;
    Ok((url.to_string(), pending.state))
}

/// A finished OIDC sign-in.
#[derive(Debug)]
pub struct OidcSignIn {
    /// The readroom user (created at first sign-in).
    pub user: User,
    /// The provider id.
    pub provider: String,
    /// The ID token (kept as the logout hint).
    pub id_token: String,
    /// Where to send the browser.
    pub return_to: String,
}

/// Completes an OIDC sign-in from the callback's `state`, `code` and `iss`: checks that the
/// browser is the one that began it (`bound`, the state its cookie carries; login CSRF),
/// verifies it, finds or creates the user, and replaces the user's claim-derived role grants.
#[allow(clippy::too_many_arguments)]
pub async fn oidc_finish(
    db: &Db,
    auth: &AuthState,
    provider: &str,
    state: &str,
    bound: Option<&str>,
    code: &str,
    iss: Option<&str>,
    now: i64,
) -> Result<OidcSignIn, SignInError> {
    use super::oidc::OidcError;
    // Compared as hashes, so the comparison's time does not depend on the secret.
    if bound.map(tokens::hash_token) != Some(tokens::hash_token(state)) {
        return Err(OidcError::InvalidCallback(
            "this browser did not begin the sign-in (no matching state cookie)".into(),
        )
        .into());
    }
    let pending = match db.take_oidc_login(&tokens::hash_token(state)).await {
        Ok(pending) => pending,
        Err(DbError::NotFound) => {
            return Err(OidcError::InvalidCallback("unknown or already used state".into()).into());
        }
        Err(err) => return Err(err.into()),
    };
    if pending.expires_unix <= now {
        return Err(OidcError::InvalidCallback("the sign-in took too long".into()).into());
    }
    if pending.provider != provider {
        return Err(OidcError::InvalidCallback("state belongs to another provider".into()).into());
    }
    let login = super::oidc::PendingLogin {
        provider: pending.provider.clone(),
        state: state.to_owned(),
        nonce: pending.nonce,
        pkce_verifier: pending.pkce_verifier,
    };
    let identity = auth.oidc.complete(&login, code, iss).await?;
    let user = match db
        .external_identity(&identity.provider, &identity.subject)
        .await?
    {
        Some(link) => {
            db.touch_external_identity(&identity.provider, &identity.subject)
                .await?;
            db.user_by_id(link.user_id).await?
        }
        None => {
            let user = db
                .create_user(&NewUser {
                    username: identity.username.clone(),
                    display_name: identity.display_name.clone(),
                    email: identity.email.clone(),
                })
                .await?;
            db.link_external_identity(&identity.provider, &identity.subject, user.id)
                .await?;
            tracing::info!(user_id = %user.id, provider = %identity.provider, "user created at first single sign-on");
            user
        }
    };
    if user.disabled {
        return Err(SignInError::InvalidCredentials);
    }
    let mut grants = Vec::new();
    for (role, study) in &identity.roles {
        let study_id = match study {
            None => None,
            Some(code) => match study_id(db, code).await? {
                Some(id) => Some(id),
                None => {
                    tracing::warn!(study = %code, "role claim names an unknown study; ignored");
                    continue;
                }
            },
        };
        grants.push((*role, study_id));
    }
    db.replace_idp_grants(user.id, &identity.provider, &grants)
        .await?;
    Ok(OidcSignIn {
        user,
        provider: identity.provider,
        id_token: identity.id_token,
        return_to: pending.return_to,
    })
}

async fn study_id(db: &Db, code: &StudyCode) -> Result<Option<Uuid>, DbError> {
    match db.study_by_code(code).await {
        Ok(study) => Ok(Some(study.id)),
        Err(DbError::NotFound) => Ok(None),
        Err(err) => Err(err),
    }
}
