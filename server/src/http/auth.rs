//! `/api/auth/*`: sign-in (password, one-time link, OIDC), sign-out, password and TOTP.

use axum::Json;
use axum::extract::State;
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{AppendHeaders, IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::AppError;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::me::{Me, me_view};
use super::policy::ClientAddr;
use crate::audit::{event_by, user_target};
use crate::auth::at_rest::Column;
use crate::auth::flows::{self, PasswordChangeError, SessionStart, SignInError};
use crate::auth::refusals::{Note, Summary};
use crate::auth::{self, SignedIn, totp};
use crate::db::User;
use crate::state::AppState;
use readroom_domain::audit::{Action, Outcome};

/// `POST /api/auth/login` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Username.
    pub username: String,
    /// Password.
    pub password: String,
    /// Six-digit code, for accounts with TOTP.
    #[serde(default)]
    pub totp: Option<String>,
}

/// `POST /api/auth/link` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    /// The token from the link's `#token=` fragment.
    pub token: String,
    /// Six-digit code, for accounts with TOTP (the link is used only once it is right).
    #[serde(default)]
    pub totp: Option<String>,
}

/// The answer to a successful sign-in.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignedInView {
    /// The signed-in user.
    pub user: Me,
    /// The token to send as `X-CSRF-Token` on state-changing requests.
    pub csrf_token: String,
}

/// Identity providers the sign-in page offers.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProvidersView {
    /// Whether the local username/password form is offered.
    pub local: bool,
    /// Configured OIDC providers.
    pub providers: Vec<ProviderView>,
}

/// One OIDC provider.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderView {
    /// Id used in URLs.
    pub id: String,
    /// Button label.
    pub name: String,
}

fn sign_in_error(err: SignInError) -> AppError {
    let message = err.to_string();
    match err {
        SignInError::Throttled => AppError::TooManyRequests {
            code: "throttled",
            message,
            retry_after: Some(60),
        },
        SignInError::Locked { retry_after } => AppError::TooManyRequests {
            code: "locked",
            message,
            retry_after: Some(retry_after),
        },
        SignInError::InvalidCredentials => AppError::Unauthenticated {
            code: "invalid_credentials",
            message,
        },
        SignInError::TotpRequired => AppError::Unauthenticated {
            code: "totp_required",
            message,
        },
        SignInError::InvalidTotp => AppError::Unauthenticated {
            code: "invalid_totp",
            message,
        },
        SignInError::InvalidLink => AppError::Unauthenticated {
            code: "invalid_link",
            message,
        },
        SignInError::LocalAccountsDisabled => AppError::Forbidden {
            code: "local_accounts_disabled",
            message,
        },
        SignInError::Oidc(err) => AppError::BadRequest(err.to_string()),
        SignInError::Db(err) => err.into(),
        SignInError::Other(err) => err.into(),
    }
}

/// Starts a session for `user` (ending the browser's previous one) and answers with the
/// session cookie and the signed-in view.
async fn signed_in_response(
    state: &AppState,
    headers: &HeaderMap,
    client: Option<std::net::IpAddr>,
    user: User,
    method: &str,
) -> Result<Response, AppError> {
    let now = auth::now_unix();
    let previous = previous_session(state, headers).await?;
    let (token, session) = flows::start_session(
        &state.db,
        &state.auth,
        SessionStart {
            user_id: user.id,
            auth_method: method.to_owned(),
            id_token: None,
            client,
        },
        previous.as_ref(),
        now,
    )
    .await?;
    tracing::info!(user_id = %user.id, method, "signed in");
    let principal = auth::principal(&state.db, user.id).await?;
    let signed_in = SignedIn {
        session,
        user,
        principal,
        client,
    };
    audit_sign_in(state, &signed_in, method).await?;
    let me = me_view(state, &signed_in).await?;
    let body = SignedInView {
        csrf_token: me.csrf_token.clone(),
        user: me,
    };
    Ok(([(SET_COOKIE, state.auth.cookie.set(&token))], Json(body)).into_response())
}

/// Records a sign-in (`auth.login`).
async fn audit_sign_in(
    state: &AppState,
    signed_in: &SignedIn,
    method: &str,
) -> Result<(), AppError> {
    let draft = signed_in.event(
        Action::AuthLogin,
        Outcome::Success,
        Some(user_target(signed_in.user.id)),
        json!({ "method": method }),
    );
    state.audit.record(draft).await?;
    Ok(())
}

/// Records a refused sign-in (`auth.login_failed`) with the reason's code; `user` when the
/// attempt named an existing account. Past the per-address budget of the window the refusal is
/// only counted, and the window's count is recorded when it closes (`auth.refusals_counted`;
/// see [`crate::auth::refusals`]).
async fn audit_sign_in_failure(
    state: &AppState,
    client: Option<std::net::IpAddr>,
    user: Option<uuid::Uuid>,
    method: &str,
    reason: &str,
) -> Result<(), AppError> {
    let now = auth::now_unix();
    match state
        .auth
        .refusals
        .note(client, &format!("{method}:{reason}"), now)
    {
        Note::Record => {
            let draft = event_by(
                Action::AuthLoginFailed,
                Outcome::Failure,
                user,
                user.map(user_target),
                client,
                json!({ "method": method, "reason": reason }),
            );
            state.audit.record(draft).await?;
        }
        Note::Counted { start_flusher } => {
            if start_flusher {
                spawn_refusal_flusher(state.clone());
            }
        }
    }
    Ok(())
}

/// Writes the counted refusals of each window when it closes; ends when nothing is being
/// counted (the next counted refusal starts it again).
fn spawn_refusal_flusher(state: AppState) {
    tokio::spawn(async move {
        loop {
            let wait = state.auth.refusals.secs_to_close(auth::now_unix());
            let wait = u64::try_from(wait).unwrap_or(1);
            tokio::time::sleep(std::time::Duration::from_millis(wait * 1000 + 50)).await;
            let (closed, counting) = state.auth.refusals.take_closed(auth::now_unix());
            for summary in closed {
                if let Err(err) = state.audit.record(refusals_event(&summary)).await {
                    tracing::error!(error = %err, count = summary.count, "cannot record counted sign-in refusals");
                }
            }
            if !counting {
                break;
            }
        }
    });
}

/// The `auth.refusals_counted` event of one closed window.
fn refusals_event(summary: &Summary) -> readroom_domain::audit::EventDraft {
    let at = |secs: i64| {
        time::OffsetDateTime::from_unix_timestamp(secs)
            .map(crate::audit::timestamp)
            .unwrap_or_default()
    };
    let scope = match summary.client {
        None => "many_addresses",
        Some(std::net::IpAddr::V6(_)) => "ipv6_64",
        Some(std::net::IpAddr::V4(_)) => "address",
    };
    event_by(
        Action::AuthRefusalsCounted,
        Outcome::Failure,
        None,
        None,
        summary.client,
        json!({
            "count": summary.count,
            "reasons": summary.reasons,
            "first": at(summary.first),
            "last": at(summary.last),
            "window_secs": summary.window_secs,
            "scope": scope,
        }),
    )
}

/// The machine-readable reason of a refused sign-in, as the API answers it.
fn failure_code(err: &SignInError) -> &'static str {
    match err {
        SignInError::Throttled => "throttled",
        SignInError::Locked { .. } => "locked",
        SignInError::InvalidCredentials => "invalid_credentials",
        SignInError::TotpRequired => "totp_required",
        SignInError::InvalidTotp => "invalid_totp",
        SignInError::LocalAccountsDisabled => "local_accounts_disabled",
        SignInError::InvalidLink => "invalid_link",
        SignInError::Oidc(err) => err.code(),
        SignInError::Db(_) | SignInError::Other(_) => "unavailable",
    }
}

async fn previous_session(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<crate::db::Session>, AppError> {
    let token = state.auth.cookie.token_from(headers);
    Ok(
        auth::resolve(&state.db, &state.auth, token.as_deref(), auth::now_unix())
            .await?
            .ok()
            .map(|signed_in| signed_in.session),
    )
}

/// Sign in with a username and password.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth",
    extensions(("x-readroom-policy" = json!("public"))),
    request_body = LoginRequest,
    responses(
        (status = 200, body = SignedInView, description = "Signed in; sets the session cookie"),
        (status = 401, description = "`invalid_credentials`, `totp_required` or `invalid_totp`"),
        (status = 429, description = "`locked` or `throttled`, with Retry-After"),
    ))]
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Response, AppError> {
    let client_ip = client.unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let user = flows::password_sign_in(
        &state.db,
        &state.auth,
        client_ip,
        &body.username,
        &body.password,
        body.totp.as_deref(),
        auth::now_unix(),
    )
    .await;
    let user = match user {
        Ok(user) => user,
        Err(err) => {
            tracing::info!(reason = %err, "password sign-in refused");
            // A password that was right but needs a second factor is a step, not a failure.
            if !matches!(
                err,
                SignInError::TotpRequired | SignInError::Db(_) | SignInError::Other(_)
            ) {
                let named = state
                    .db
                    .user_by_username(&body.username)
                    .await
                    .ok()
                    .map(|u| u.id);
                audit_sign_in_failure(&state, client, named, "password", failure_code(&err))
                    .await?;
            }
            return Err(sign_in_error(err));
        }
    };
    signed_in_response(&state, &headers, client, user, "password").await
}

/// Sign in with a one-time link's token.
#[utoipa::path(post, path = "/api/auth/link", tag = "auth",
    extensions(("x-readroom-policy" = json!("public"))),
    request_body = LinkRequest,
    responses(
        (status = 200, body = SignedInView, description = "Signed in; sets the session cookie"),
        (status = 401, description = "`invalid_link`, `totp_required` or `invalid_totp`"),
        (status = 403, description = "`local_accounts_disabled` (single sign-on only)"),
        (status = 429, description = "`locked` or `throttled`, with Retry-After"),
    ))]
pub async fn link(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LinkRequest>,
) -> Result<Response, AppError> {
    let client_ip = client.unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let now = auth::now_unix();
    let signed_in = flows::link_sign_in(
        &state.db,
        &state.auth,
        client_ip,
        &body.token,
        body.totp.as_deref(),
        now,
    )
    .await;
    let user = match signed_in {
        Ok(user) => user,
        Err(err) => {
            tracing::info!(reason = %err, "link sign-in refused");
            // A link that needs its second factor is a step, not a failure.
            if !matches!(
                err,
                SignInError::TotpRequired | SignInError::Db(_) | SignInError::Other(_)
            ) {
                let named = link_owner(&state, &body.token, &err, now).await;
                audit_sign_in_failure(&state, client, named, "link", failure_code(&err)).await?;
            }
            return Err(sign_in_error(err));
        }
    };
    signed_in_response(&state, &headers, client, user, "link").await
}

/// The account a still-usable link belongs to, for the audit event of a refusal that got past
/// the link check (wrong code, locked, local accounts off).
async fn link_owner(
    state: &AppState,
    token: &str,
    err: &SignInError,
    now: i64,
) -> Option<uuid::Uuid> {
    if matches!(err, SignInError::InvalidLink | SignInError::Throttled)
        || !auth::tokens::looks_like_token(token)
    {
        return None;
    }
    let hash = auth::tokens::hash_token(token);
    state
        .db
        .peek_signin_link(&hash, now)
        .await
        .ok()
        .map(|(user, _)| user)
}

/// The sign-in methods this server offers.
#[utoipa::path(get, path = "/api/auth/providers", tag = "auth",
    extensions(("x-readroom-policy" = json!("public"))),
    responses((status = 200, body = ProvidersView)))]
pub async fn providers(State(state): State<AppState>) -> Json<ProvidersView> {
    Json(ProvidersView {
        local: state.auth.local_accounts,
        providers: state
            .auth
            .oidc
            .list()
            .into_iter()
            .map(|(id, name)| ProviderView { id, name })
            .collect(),
    })
}

/// Query of the OIDC start route.
#[derive(Debug, Deserialize, IntoParams)]
pub struct StartQuery {
    /// Local path to open after sign-in.
    pub return_to: Option<String>,
    /// Passed to the provider as `login_hint`.
    pub login_hint: Option<String>,
}

/// Redirects to the identity provider.
#[utoipa::path(get, path = "/api/auth/oidc/{provider}/start", tag = "auth",
    extensions(("x-readroom-policy" = json!("public"))),
    params(("provider" = String, Path, description = "Provider id"), StartQuery),
    responses((status = 303, description = "To the provider's authorization endpoint")))]
pub async fn oidc_start(
    State(state): State<AppState>,
    ApiPath(provider): ApiPath<String>,
    ApiQuery(query): ApiQuery<StartQuery>,
) -> Response {
    match flows::oidc_begin(
        &state.db,
        &state.auth,
        &provider,
        query.return_to.as_deref(),
        query.login_hint.as_deref(),
        auth::now_unix(),
    )
    .await
    {
        Ok((url, oidc_state)) => (
            StatusCode::SEE_OTHER,
            [
                (LOCATION, url),
                (SET_COOKIE, state.auth.cookie.set_oidc(&oidc_state)),
            ],
        )
            .into_response(),
        Err(err) => signin_error_redirect(&err),
    }
}

/// Query of the OIDC callback.
#[derive(Debug, Deserialize, IntoParams)]
pub struct CallbackQuery {
    /// Authorization code.
    pub code: Option<String>,
    /// The state sent at the start.
    pub state: Option<String>,
    /// RFC 9207 issuer identifier.
    pub iss: Option<String>,
    /// Error from the provider.
    pub error: Option<String>,
}

/// Completes an OIDC sign-in.
#[utoipa::path(get, path = "/api/auth/oidc/{provider}/callback", tag = "auth",
    extensions(("x-readroom-policy" = json!("public"))),
    params(("provider" = String, Path, description = "Provider id"), CallbackQuery),
    responses(
        (status = 303, description = "To `return_to`, or to `/signin?error=<code>`"),
        (status = 404, description = "No such provider (nothing is recorded)"),
    ))]
pub async fn oidc_callback(
    State(state): State<AppState>,
    ApiPath(provider): ApiPath<String>,
    ApiQuery(query): ApiQuery<CallbackQuery>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
) -> Response {
    if !state.auth.oidc.has(&provider) {
        // Not a sign-in through any provider of this server: nothing to record.
        return AppError::NotFound("no such identity provider".into()).into_response();
    }
    let method = format!("oidc:{provider}");
    if let Some(error) = &query.error {
        tracing::info!(provider, error = %error.chars().take(64).collect::<String>(), "provider returned an error");
        return callback_refused(&state, client, &method, "provider_error").await;
    }
    let (Some(code), Some(oidc_state)) = (query.code.as_deref(), query.state.as_deref()) else {
        return redirect_to("/signin?error=invalid_callback");
    };
    let now = auth::now_unix();
    let finished = match flows::oidc_finish(
        &state.db,
        &state.auth,
        &provider,
        oidc_state,
        state.auth.cookie.oidc_from(&headers).as_deref(),
        code,
        query.iss.as_deref(),
        now,
    )
    .await
    {
        Ok(finished) => finished,
        Err(err) => {
            tracing::info!(reason = %err, "single sign-on refused");
            let code = match &err {
                SignInError::InvalidCredentials => "account_disabled",
                SignInError::Db(_) | SignInError::Other(_) => "unavailable",
                other => failure_code(other),
            };
            return callback_refused(&state, client, &method, code).await;
        }
    };
    let previous = previous_session(&state, &headers).await.ok().flatten();
    let started = flows::start_session(
        &state.db,
        &state.auth,
        SessionStart {
            user_id: finished.user.id,
            auth_method: format!("oidc:{}", finished.provider),
            id_token: Some(finished.id_token),
            client,
        },
        previous.as_ref(),
        now,
    )
    .await;
    let started = match started {
        Ok((token, session)) => {
            let principal = auth::principal(&state.db, finished.user.id).await;
            match principal {
                Ok(principal) => {
                    let signed_in = SignedIn {
                        session,
                        user: finished.user.clone(),
                        principal,
                        client,
                    };
                    audit_sign_in(&state, &signed_in, &signed_in.session.auth_method)
                        .await
                        .map(|()| token)
                }
                Err(err) => Err(err.into()),
            }
        }
        Err(err) => Err(AppError::from(err)),
    };
    match started {
        Ok(token) => {
            tracing::info!(user_id = %finished.user.id, provider = %finished.provider, "signed in");
            (
                StatusCode::SEE_OTHER,
                AppendHeaders([
                    (LOCATION, finished.return_to),
                    (SET_COOKIE, state.auth.cookie.set(&token)),
                    (SET_COOKIE, state.auth.cookie.clear_oidc()),
                ]),
            )
                .into_response()
        }
        Err(err) => {
            tracing::error!(error = %err, "cannot create session");
            redirect_to("/signin?error=unavailable")
        }
    }
}

/// A refused callback: spends the address's sign-in budget (past it the answer is
/// `throttled`), records the refusal (or counts it) and sends the browser to the sign-in page.
async fn callback_refused(
    state: &AppState,
    client: Option<std::net::IpAddr>,
    method: &str,
    code: &str,
) -> Response {
    let client_ip = client.unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let code = match state
        .auth
        .throttle
        .allow(&state.db, client_ip, crate::auth::now_unix())
        .await
    {
        Ok(true) => code,
        Ok(false) => "throttled",
        Err(_) => return redirect_to("/signin?error=unavailable"),
    };
    if audit_sign_in_failure(state, client, None, method, code)
        .await
        .is_err()
    {
        return redirect_to("/signin?error=unavailable");
    }
    redirect_to(&format!("/signin?error={code}"))
}

fn signin_error_redirect(err: &SignInError) -> Response {
    let code = match err {
        SignInError::Oidc(err) => err.code(),
        SignInError::InvalidCredentials => "account_disabled",
        SignInError::Db(_) | SignInError::Other(_) => "unavailable",
        _ => "sign_in_failed",
    };
    tracing::info!(reason = %err, code, "single sign-on refused");
    redirect_to(&format!("/signin?error={code}"))
}

fn redirect_to(location: &str) -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, location.to_owned())]).into_response()
}

/// Answer to sign-out.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogoutView {
    /// Where to send the browser to end the provider's session too (OIDC), or null.
    pub redirect: Option<String>,
}

/// Ends this session.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth",
    extensions(("x-readroom-policy" = json!("signed-in"))),
    responses((status = 200, body = LogoutView)))]
pub async fn logout(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, AppError> {
    state.db.delete_session(signed_in.session.id).await?;
    let redirect = match (
        signed_in.session.auth_method.strip_prefix("oidc:"),
        &signed_in.session.id_token,
    ) {
        (Some(provider), Some(stored)) => {
            let user_id = signed_in.user.id;
            match state.auth.secrets.open(Column::IdToken, user_id, stored) {
                Ok(id_token) => state.auth.oidc.logout_url(provider, &id_token).await,
                // Signing out still works; only the provider's session stays open.
                Err(err) => {
                    tracing::error!(error = %err, "sign-out without the provider's logout");
                    None
                }
            }
        }
        _ => None,
    };
    tracing::info!(user_id = %signed_in.user.id, "signed out");
    let draft = signed_in.event(
        Action::AuthLogout,
        Outcome::Success,
        Some(user_target(signed_in.user.id)),
        json!({ "all": false }),
    );
    state.audit.record(draft).await?;
    Ok((
        [(SET_COOKIE, state.auth.cookie.clear())],
        Json(LogoutView { redirect }),
    )
        .into_response())
}

/// Ends every session of the signed-in user (all browsers and devices).
#[utoipa::path(post, path = "/api/auth/logout-all", tag = "auth",
    extensions(("x-readroom-policy" = json!("signed-in"))),
    responses((status = 200, description = "`{\"ended\": n}`")))]
pub async fn logout_all(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, AppError> {
    let ended = state.db.delete_user_sessions(signed_in.user.id).await?;
    tracing::info!(user_id = %signed_in.user.id, ended, "signed out everywhere");
    let draft = signed_in.event(
        Action::AuthLogout,
        Outcome::Success,
        Some(user_target(signed_in.user.id)),
        json!({ "all": true, "sessions_ended": ended }),
    );
    state.audit.record(draft).await?;
    Ok((
        [(SET_COOKIE, state.auth.cookie.clear())],
        Json(json!({ "ended": ended })),
    )
        .into_response())
}

/// `POST /api/auth/password` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordRequest {
    /// The current password (required once one is set).
    #[serde(default)]
    pub current_password: Option<String>,
    /// The new password (at least 12 characters).
    pub new_password: String,
}

/// Sets or changes the signed-in user's password.
#[utoipa::path(post, path = "/api/auth/password", tag = "auth",
    extensions(("x-readroom-policy" = json!("signed-in"))),
    request_body = PasswordRequest,
    responses((status = 204), (status = 400, description = "Rule broken or current password wrong"), (status = 429, description = "`locked` after repeated wrong passwords")))]
pub async fn change_password(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiJson(body): ApiJson<PasswordRequest>,
) -> Result<StatusCode, AppError> {
    let ended = flows::change_password(
        &state.db,
        &state.auth,
        &signed_in.user,
        signed_in.session.id,
        body.current_password.as_deref(),
        &body.new_password,
        auth::now_unix(),
    )
    .await
    .map_err(password_change_error)?;
    tracing::info!(user_id = %signed_in.user.id, sessions_ended = ended, "password changed");
    let draft = signed_in.event(
        Action::AuthPasswordChanged,
        Outcome::Success,
        Some(user_target(signed_in.user.id)),
        json!({ "sessions_ended": ended }),
    );
    state.audit.record(draft).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn password_change_error(err: PasswordChangeError) -> AppError {
    match err {
        PasswordChangeError::WrongCurrent
        | PasswordChangeError::NoPassword
        | PasswordChangeError::Rule(_) => AppError::BadRequest(err.to_string()),
        PasswordChangeError::Locked { retry_after } => AppError::TooManyRequests {
            code: "locked",
            message: err.to_string(),
            retry_after: Some(retry_after),
        },
        PasswordChangeError::Db(err) => err.into(),
        PasswordChangeError::Other(err) => err.into(),
    }
}

/// A pending TOTP set-up.
#[derive(Debug, Serialize, ToSchema)]
pub struct TotpSetupView {
    /// Base32 secret to type into an authenticator app.
    pub secret: String,
    /// `otpauth://` URL for apps that import one.
    pub otpauth_url: String,
}

/// A TOTP code, and the current password (TOTP changes need it).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpCode {
    /// Six digits.
    pub code: String,
    /// The account's current password.
    #[serde(default)]
    pub current_password: Option<String>,
}

/// The current-password check of a TOTP change.
async fn reauthenticate(
    state: &AppState,
    signed_in: &SignedIn,
    current: Option<&str>,
) -> Result<(), AppError> {
    flows::check_current_password(
        &state.db,
        &state.auth,
        &signed_in.user,
        current,
        true,
        auth::now_unix(),
    )
    .await
    .map_err(password_change_error)
}

/// Starts TOTP set-up: a new secret, active once confirmed with a code.
#[utoipa::path(post, path = "/api/auth/totp/setup", tag = "auth",
    extensions(("x-readroom-policy" = json!("signed-in"))),
    responses((status = 200, body = TotpSetupView)))]
pub async fn totp_setup(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Json<TotpSetupView>, AppError> {
    let secret = totp::new_secret();
    let url = totp::otpauth_url(&secret, &signed_in.user.username)
        .ok_or_else(|| AppError::Internal("cannot build otpauth URL".into()))?;
    let sealed = state
        .auth
        .secrets
        .seal(Column::TotpSecret, signed_in.user.id, &secret);
    state
        .db
        .set_totp_pending(signed_in.user.id, &sealed)
        .await?;
    Ok(Json(TotpSetupView {
        secret,
        otpauth_url: url,
    }))
}

/// Confirms the pending TOTP secret with a code from the app (needs the current password).
#[utoipa::path(post, path = "/api/auth/totp/enable", tag = "auth",
    extensions(("x-readroom-policy" = json!("signed-in"))),
    request_body = TotpCode,
    responses((status = 204), (status = 400, description = "Wrong password or code, no password set, or nothing pending"), (status = 429, description = "`locked`")))]
pub async fn totp_enable(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiJson(body): ApiJson<TotpCode>,
) -> Result<StatusCode, AppError> {
    reauthenticate(&state, &signed_in, body.current_password.as_deref()).await?;
    let credentials = state.db.credentials(signed_in.user.id).await?;
    let stored = credentials
        .totp_pending_secret
        .ok_or_else(|| AppError::BadRequest("start TOTP set-up first".into()))?;
    let pending = open_totp(&state, signed_in.user.id, &stored)?;
    let step = totp::check(&pending, &body.code, now_u64()).ok_or_else(|| {
        AppError::BadRequest("the code does not match; check the app's clock".into())
    })?;
    state.db.enable_totp(signed_in.user.id, step).await?;
    tracing::info!(user_id = %signed_in.user.id, "TOTP enabled");
    record_account_change(&state, &signed_in, Action::AuthTotpEnabled).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Turns TOTP off (needs the current password and a current code).
#[utoipa::path(post, path = "/api/auth/totp/disable", tag = "auth",
    extensions(("x-readroom-policy" = json!("signed-in"))),
    request_body = TotpCode,
    responses((status = 204), (status = 400, description = "Wrong password or code, or TOTP not enabled"), (status = 429, description = "`locked`")))]
pub async fn totp_disable(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiJson(body): ApiJson<TotpCode>,
) -> Result<StatusCode, AppError> {
    reauthenticate(&state, &signed_in, body.current_password.as_deref()).await?;
    let credentials = state.db.credentials(signed_in.user.id).await?;
    let stored = credentials
        .totp_secret
        .ok_or_else(|| AppError::BadRequest("TOTP is not enabled".into()))?;
    let secret = open_totp(&state, signed_in.user.id, &stored)?;
    let step = totp::check(&secret, &body.code, now_u64())
        .ok_or_else(|| AppError::BadRequest("the code does not match".into()))?;
    if !state.db.accept_totp_step(signed_in.user.id, step).await? {
        return Err(AppError::BadRequest("this code was already used".into()));
    }
    state.db.disable_totp(signed_in.user.id).await?;
    tracing::info!(user_id = %signed_in.user.id, "TOTP disabled");
    record_account_change(&state, &signed_in, Action::AuthTotpDisabled).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A stored (sealed) TOTP secret of `user_id` in clear; one that cannot be opened is an
/// internal error whose logged message names the user and the likely cause.
fn open_totp(state: &AppState, user_id: uuid::Uuid, stored: &str) -> Result<String, AppError> {
    state
        .auth
        .secrets
        .open(Column::TotpSecret, user_id, stored)
        .map_err(|err| AppError::Internal(err.to_string()))
}

/// Records a change a user made to their own account's credentials.
async fn record_account_change(
    state: &AppState,
    signed_in: &SignedIn,
    action: Action,
) -> Result<(), AppError> {
    let draft = signed_in.event(
        action,
        Outcome::Success,
        Some(user_target(signed_in.user.id)),
        json!({}),
    );
    state.audit.record(draft).await?;
    Ok(())
}

fn now_u64() -> u64 {
    u64::try_from(auth::now_unix()).unwrap_or(0)
}
