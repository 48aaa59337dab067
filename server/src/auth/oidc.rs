//! OpenID Connect relying party: authorization code flow with PKCE (S256), `state`, `nonce`,
//! the RFC 9207 `iss` check, ID token verification (issuer, audience, expiry, signature against
//! the provider's JWKS, nonce), required `acr`/`amr`, role mapping from a claim, and
//! RP-initiated logout.
//!
//! Discovery is lazy (first use) and cached per provider. When an ID token's signature does not
//! verify with the cached keys, the provider's metadata and JWKS are fetched again once and the
//! token is verified again: a provider that rotated its keys keeps working, a forged token still
//! fails. The HTTP client follows no redirects (the `openidconnect` docs' SSRF advice).
//!
//! Pure parts ([`map_roles`], [`check_acr`], [`check_amr`], [`make_username`]) are plain
//! functions with unit tests; tokens, codes and secrets never reach logs or error messages.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthenticationFlow, CoreClaimName, CoreClaimType, CoreClient,
    CoreClientAuthMethod, CoreGenderClaim, CoreGrantType, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm,
    CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalClaims, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, IdToken, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;

use crate::config::OidcProviderConfig;
use crate::db::{Role, StudyCode};

/// Time allowed for one request to a provider.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Claims besides the standard ones: whatever the provider sends (groups, roles…).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExtraClaims {
    #[serde(flatten)]
    other: BTreeMap<String, serde_json::Value>,
}
impl AdditionalClaims for ExtraClaims {}

type ReadroomIdToken = IdToken<
    ExtraClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

/// Discovery metadata beyond the core fields: the RP-initiated logout endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LogoutMetadata {
    #[serde(default)]
    end_session_endpoint: Option<String>,
}
impl openidconnect::AdditionalProviderMetadata for LogoutMetadata {}

type ProviderMetadata = openidconnect::ProviderMetadata<
    LogoutMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Why an OIDC step failed. Messages never contain tokens, codes or secrets.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// No provider with that id is configured.
    #[error("unknown identity provider")]
    UnknownProvider,
    /// The configuration is invalid.
    #[error("invalid OIDC configuration: {0}")]
    Config(String),
    /// Discovery or the JWKS could not be fetched.
    #[error("the identity provider cannot be reached: {0}")]
    Discovery(String),
    /// The callback is malformed, replayed, for another provider, or its `iss` is wrong.
    #[error("invalid sign-in callback: {0}")]
    InvalidCallback(String),
    /// The code exchange failed.
    #[error("the identity provider refused the code exchange: {0}")]
    TokenExchange(String),
    /// The ID token failed verification.
    #[error("the ID token is not valid: {0}")]
    InvalidIdToken(String),
    /// The sign-in lacks a required authentication context (`acr`).
    #[error("this server requires a stronger sign-in at the identity provider (acr)")]
    AcrNotSatisfied,
    /// The sign-in lacks a required authentication method (`amr`, e.g. MFA).
    #[error("this server requires multi-factor sign-in at the identity provider (amr)")]
    AmrNotSatisfied,
}

impl OidcError {
    /// Stable code for `/signin?error=<code>`.
    pub fn code(&self) -> &'static str {
        match self {
            OidcError::UnknownProvider => "unknown_provider",
            OidcError::Config(_) => "oidc_config",
            OidcError::Discovery(_) => "provider_unreachable",
            OidcError::InvalidCallback(_) => "invalid_callback",
            OidcError::TokenExchange(_) => "token_exchange",
            OidcError::InvalidIdToken(_) => "invalid_id_token",
            OidcError::AcrNotSatisfied => "acr_required",
            OidcError::AmrNotSatisfied => "mfa_required",
        }
    }
}

/// A login between the redirect to the provider and its callback (kept server-side).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingLogin {
    /// Provider id.
    pub provider: String,
    /// The `state` sent.
    pub state: String,
    /// The `nonce` sent.
    pub nonce: String,
    /// The PKCE verifier.
    pub pkce_verifier: String,
}

/// A verified identity from a provider.
#[derive(Debug, Clone)]
pub struct OidcIdentity {
    /// Provider id.
    pub provider: String,
    /// The provider's `sub`.
    pub subject: String,
    /// `{provider}:{username claim}`, sanitized, at most 64 characters.
    pub username: String,
    /// `name`, else the username.
    pub display_name: String,
    /// `email`.
    pub email: Option<String>,
    /// Roles mapped from the role claim.
    pub roles: Vec<(Role, Option<StudyCode>)>,
    /// The raw ID token (the logout hint).
    pub id_token: String,
}

/// One configured provider and its cached discovery.
struct Provider {
    config: OidcProviderConfig,
    secret: Option<String>,
    redirect: String,
    roles: Vec<(String, Role, Option<StudyCode>)>,
    cached: RwLock<Option<Arc<Discovered>>>,
}

struct Discovered {
    client: Client,
    end_session: Option<String>,
}

/// All configured providers.
pub struct OidcProviders {
    providers: Vec<Provider>,
    http: openidconnect::reqwest::Client,
    public_url: String,
}

impl std::fmt::Debug for OidcProviders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.providers.iter().map(|p| &p.config.id))
            .finish()
    }
}

/// Parses a `role_map` value: `grader` or `grader:STUDY`.
fn parse_role(value: &str) -> Result<(Role, Option<StudyCode>), String> {
    let (role, study) = match value.split_once(':') {
        Some((role, study)) => (role, Some(study)),
        None => (value, None),
    };
    let role: Role = role.parse().map_err(|err| format!("{err}"))?;
    let study = study
        .map(StudyCode::new)
        .transpose()
        .map_err(|err| err.to_string())?;
    if study.is_some() && matches!(role, Role::Admin | Role::Auditor) {
        return Err(format!("the {role} role is global; drop the study"));
    }
    Ok((role, study))
}

impl OidcProviders {
    /// Validates the configuration (no network).
    pub fn new(configs: &[OidcProviderConfig], public_url: &str) -> Result<Self, OidcError> {
        let mut providers: Vec<Provider> = Vec::new();
        for config in configs {
            let bad = |why: String| OidcError::Config(format!("provider {:?}: {why}", config.id));
            let id_ok = !config.id.is_empty()
                && config.id.len() <= 32
                && config
                    .id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !id_ok {
                return Err(bad("id must be 1-32 of a-z, 0-9, '-'".into()));
            }
            if providers.iter().any(|p| p.config.id == config.id) {
                return Err(bad("id is used twice".into()));
            }
            IssuerUrl::new(config.issuer.clone()).map_err(|err| bad(format!("issuer: {err}")))?;
            if config.client_id.is_empty() {
                return Err(bad("client_id is empty".into()));
            }
            let secret = if !config.client_secret.is_empty() {
                Some(config.client_secret.clone())
            } else if !config.client_secret_file.as_os_str().is_empty() {
                let text = std::fs::read_to_string(&config.client_secret_file).map_err(|err| {
                    bad(format!(
                        "cannot read client_secret_file {}: {err}",
                        config.client_secret_file.display()
                    ))
                })?;
                Some(text.lines().next().unwrap_or_default().trim().to_owned())
            } else {
                None
            };
            let mut roles = Vec::new();
            for (claim_value, role) in &config.role_map {
                let (role, study) = parse_role(role)
                    .map_err(|err| bad(format!("role_map {claim_value:?}: {err}")))?;
                roles.push((claim_value.clone(), role, study));
            }
            let redirect = format!(
                "{}/api/auth/oidc/{}/callback",
                public_url.trim_end_matches('/'),
                config.id
            );
            RedirectUrl::new(redirect.clone()).map_err(|err| bad(format!("redirect: {err}")))?;
            providers.push(Provider {
                config: config.clone(),
                secret,
                redirect,
                roles,
                cached: RwLock::new(None),
            });
        }
        let http = openidconnect::reqwest::ClientBuilder::new()
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(HTTP_TIMEOUT)
            .build()
            .map_err(|err| OidcError::Config(format!("HTTP client: {err}")))?;
        Ok(OidcProviders {
            providers,
            http,
            public_url: public_url.trim_end_matches('/').to_owned(),
        })
    }

    /// `(id, name)` of every provider, in configuration order.
    pub fn list(&self) -> Vec<(String, String)> {
        self.providers
            .iter()
            .map(|p| {
                let name = if p.config.name.is_empty() {
                    p.config.id.clone()
                } else {
                    p.config.name.clone()
                };
                (p.config.id.clone(), name)
            })
            .collect()
    }

    /// Whether a provider with this id is configured.
    pub fn has(&self, id: &str) -> bool {
        self.providers.iter().any(|p| p.config.id == id)
    }

    fn provider(&self, id: &str) -> Result<&Provider, OidcError> {
        self.providers
            .iter()
            .find(|p| p.config.id == id)
            .ok_or(OidcError::UnknownProvider)
    }

    async fn discovered(
        &self,
        provider: &Provider,
        refresh: bool,
    ) -> Result<Arc<Discovered>, OidcError> {
        if !refresh && let Some(found) = provider.cached.read().await.clone() {
            return Ok(found);
        }
        let issuer = IssuerUrl::new(provider.config.issuer.clone())
            .map_err(|err| OidcError::Config(err.to_string()))?;
        let metadata = ProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|err| OidcError::Discovery(error_chain(&err)))?;
        let end_session = metadata.additional_metadata().end_session_endpoint.clone();
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(provider.config.client_id.clone()),
            provider.secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(
            RedirectUrl::new(provider.redirect.clone())
                .map_err(|err| OidcError::Config(err.to_string()))?,
        );
        let found = Arc::new(Discovered {
            client,
            end_session,
        });
        *provider.cached.write().await = Some(found.clone());
        Ok(found)
    }

    /// The authorization URL (code flow, PKCE S256, `state`, `nonce`, scopes) and the login to
    /// keep server-side until the callback.
    pub async fn begin(&self, provider_id: &str) -> Result<(url::Url, PendingLogin), OidcError> {
        let provider = self.provider(provider_id)?;
        let discovered = self.discovered(provider, false).await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = discovered.client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for scope in &provider.config.scopes {
            if scope != "openid" {
                request = request.add_scope(Scope::new(scope.clone()));
            }
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        Ok((
            url,
            PendingLogin {
                provider: provider.config.id.clone(),
                state: state.secret().clone(),
                nonce: nonce.secret().clone(),
                pkce_verifier: verifier.secret().clone(),
            },
        ))
    }

    /// Finishes a login: checks `iss`, exchanges the code with the PKCE verifier, verifies the
    /// ID token and maps the identity. The caller has already matched `state` to `pending`.
    pub async fn complete(
        &self,
        pending: &PendingLogin,
        code: &str,
        iss: Option<&str>,
    ) -> Result<OidcIdentity, OidcError> {
        let provider = self.provider(&pending.provider)?;
        if let Some(iss) = iss
            && iss.trim_end_matches('/') != provider.config.issuer.trim_end_matches('/')
        {
            return Err(OidcError::InvalidCallback(
                "the `iss` parameter names another issuer (mix-up attack?)".into(),
            ));
        }
        if code.is_empty() || code.len() > 4096 {
            return Err(OidcError::InvalidCallback(
                "missing or oversized code".into(),
            ));
        }
        let discovered = self.discovered(provider, false).await?;
        let exchange = discovered
            .client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|err| OidcError::Config(err.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()));
        let response = exchange
            .request_async(&self.http)
            .await
            .map_err(|err| OidcError::TokenExchange(error_chain(&err)))?;
        let id_token = response
            .id_token()
            .ok_or_else(|| OidcError::InvalidIdToken("the token response has no ID token".into()))?
            .to_string();
        self.verify(provider, &id_token, &pending.nonce, None).await
    }

    /// Verifies an ID token as [`complete`](Self::complete) does, at time `now` instead of the
    /// clock (tests use it to check expiry without waiting).
    pub async fn verify_id_token_at(
        &self,
        provider_id: &str,
        id_token: &str,
        nonce: &str,
        now: time::OffsetDateTime,
    ) -> Result<OidcIdentity, OidcError> {
        let provider = self.provider(provider_id)?;
        self.verify(provider, id_token, nonce, Some(now)).await
    }

    async fn verify(
        &self,
        provider: &Provider,
        id_token: &str,
        nonce: &str,
        at: Option<time::OffsetDateTime>,
    ) -> Result<OidcIdentity, OidcError> {
        let token: ReadroomIdToken = id_token
            .parse()
            .map_err(|_| OidcError::InvalidIdToken("not a JWT".into()))?;
        let discovered = self.discovered(provider, false).await?;
        let result = verify_with(&discovered.client, &token, nonce, at);
        let claims = match result {
            Err(VerifyFailure::Signature(_)) => {
                // Perhaps the provider rotated its keys: fetch them again, once.
                tracing::info!(provider = %provider.config.id, "ID token signature did not verify; refreshing the provider's keys");
                let refreshed = self.discovered(provider, true).await?;
                verify_with(&refreshed.client, &token, nonce, at)
            }
            other => other,
        }
        .map_err(|failure| OidcError::InvalidIdToken(failure.message()))?;
        check_acr(&provider.config.required_acr, claims.acr.as_deref())?;
        check_amr(&provider.config.required_amr, &claims.amr)?;
        let username_claim = if provider.config.username_claim.is_empty() {
            "preferred_username"
        } else {
            provider.config.username_claim.as_str()
        };
        let username_value = match username_claim {
            "preferred_username" => claims.preferred_username.clone(),
            "email" => claims.email.clone(),
            "sub" => Some(claims.subject.clone()),
            other => claims
                .extra
                .get(other)
                .and_then(|v| v.as_str())
                .map(str::to_owned),
        }
        .unwrap_or_else(|| claims.subject.clone());
        let username = make_username(&provider.config.id, &username_value);
        let roles = if provider.config.role_claim.is_empty() {
            Vec::new()
        } else {
            let values = claim_strings(claims.extra.get(&provider.config.role_claim));
            map_roles(&provider.roles, &values)
        };
        Ok(OidcIdentity {
            provider: provider.config.id.clone(),
            subject: claims.subject,
            display_name: claims.name.unwrap_or_else(|| username.clone()),
            username,
            email: claims.email,
            roles,
            id_token: id_token.to_owned(),
        })
    }

    /// The RP-initiated logout URL (`end_session_endpoint` with `id_token_hint` and
    /// `post_logout_redirect_uri` = `{public_url}/signin`), if the provider has one.
    pub async fn logout_url(&self, provider_id: &str, id_token: &str) -> Option<String> {
        let provider = self.provider(provider_id).ok()?;
        let discovered = self.discovered(provider, false).await.ok()?;
        let endpoint = discovered.end_session.as_deref()?;
        let mut url = url::Url::parse(endpoint).ok()?;
        url.query_pairs_mut()
            .append_pair("id_token_hint", id_token)
            .append_pair("client_id", &provider.config.client_id)
            .append_pair(
                "post_logout_redirect_uri",
                &format!("{}/signin?signed_out=1", self.public_url),
            );
        Some(url.to_string())
    }
}

/// The verified claims readroom uses.
struct VerifiedClaims {
    subject: String,
    name: Option<String>,
    preferred_username: Option<String>,
    email: Option<String>,
    acr: Option<String>,
    amr: Vec<String>,
    extra: BTreeMap<String, serde_json::Value>,
}

enum VerifyFailure {
    Signature(String),
    Other(String),
}

impl VerifyFailure {
    fn message(self) -> String {
        match self {
            VerifyFailure::Signature(m) | VerifyFailure::Other(m) => m,
        }
    }
}

fn verify_with(
    client: &Client,
    token: &ReadroomIdToken,
    nonce: &str,
    at: Option<time::OffsetDateTime>,
) -> Result<VerifiedClaims, VerifyFailure> {
    let mut verifier = client.id_token_verifier();
    if let Some(at) = at {
        let at = chrono_time(at);
        verifier = verifier.set_time_fn(move || at);
    }
    let claims = token
        .claims(&verifier, &Nonce::new(nonce.to_owned()))
        .map_err(|err| {
            let text = err.to_string();
            if matches!(
                err,
                openidconnect::ClaimsVerificationError::SignatureVerification(_)
            ) {
                VerifyFailure::Signature(text)
            } else {
                VerifyFailure::Other(text)
            }
        })?;
    let localized = |value: Option<&openidconnect::LocalizedClaim<openidconnect::EndUserName>>| {
        value
            .and_then(|v| v.get(None))
            .map(|n| n.as_str().to_owned())
    };
    Ok(VerifiedClaims {
        subject: claims.subject().as_str().to_owned(),
        name: localized(claims.name()),
        preferred_username: claims.preferred_username().map(|u| u.as_str().to_owned()),
        email: claims.email().map(|e| e.as_str().to_owned()),
        acr: claims.auth_context_ref().map(|a| a.as_str().to_owned()),
        amr: claims
            .auth_method_refs()
            .map(|list| list.iter().map(|m| m.as_str().to_owned()).collect())
            .unwrap_or_default(),
        extra: claims.additional_claims().other.clone(),
    })
}

fn chrono_time(time: time::OffsetDateTime) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(time.unix_timestamp(), 0).unwrap_or_default()
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text.chars().take(300).collect()
}

/// The strings of a claim that is a string or an array of strings.
fn claim_strings(value: Option<&serde_json::Value>) -> Vec<String> {
    match value {
        Some(serde_json::Value::String(s)) => vec![s.clone()],
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// The roles a user gets from their role-claim values, by the configured map (unknown values
/// grant nothing; duplicates collapse).
pub fn map_roles(
    map: &[(String, Role, Option<StudyCode>)],
    values: &[String],
) -> Vec<(Role, Option<StudyCode>)> {
    let mut roles: Vec<(Role, Option<StudyCode>)> = Vec::new();
    for value in values {
        for (claim, role, study) in map {
            if claim == value && !roles.iter().any(|(r, s)| r == role && s == study) {
                roles.push((*role, study.clone()));
            }
        }
    }
    roles
}

/// `Ok` if no `acr` is required or the token's is one of them.
pub fn check_acr(required: &[String], acr: Option<&str>) -> Result<(), OidcError> {
    if required.is_empty() || acr.is_some_and(|acr| required.iter().any(|r| r == acr)) {
        Ok(())
    } else {
        Err(OidcError::AcrNotSatisfied)
    }
}

/// `Ok` if no `amr` is required or the token's contain one of them.
pub fn check_amr(required: &[String], amr: &[String]) -> Result<(), OidcError> {
    if required.is_empty() || amr.iter().any(|m| required.contains(m)) {
        Ok(())
    } else {
        Err(OidcError::AmrNotSatisfied)
    }
}

/// `{provider}:{name}` with anything but letters, digits, `.`, `-`, `_`, `@` replaced by `_`,
/// cut to 64 characters.
pub fn make_username(provider: &str, name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{provider}:{clean}").chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_mapped_from_claim_values() {
        let map = vec![
            (
                "graders".to_owned(),
                Role::Grader,
                Some(StudyCode::new("EYE-2026").unwrap()),
            ),
            ("admins".to_owned(), Role::Admin, None),
            (
                "also-graders".to_owned(),
                Role::Grader,
                Some(StudyCode::new("EYE-2026").unwrap()),
            ),
        ];
        let roles = map_roles(
            &map,
            &["graders".into(), "also-graders".into(), "unknown".into()],
        );
        assert_eq!(
            roles,
            vec![(Role::Grader, Some(StudyCode::new("EYE-2026").unwrap()))]
        );
        assert!(map_roles(&map, &[]).is_empty());
        assert_eq!(claim_strings(Some(&serde_json::json!("a"))), ["a"]);
        assert_eq!(
            claim_strings(Some(&serde_json::json!(["a", 1, "b"]))),
            ["a", "b"]
        );
        assert!(claim_strings(Some(&serde_json::json!({"a": 1}))).is_empty());
    }

    #[test]
    fn role_map_values_parse_or_explain() {
        assert_eq!(parse_role("grader"), Ok((Role::Grader, None)));
        assert_eq!(
            parse_role("coordinator:EYE-2026"),
            Ok((Role::Coordinator, Some(StudyCode::new("EYE-2026").unwrap())))
        );
        assert!(parse_role("root").is_err());
        assert!(parse_role("admin:EYE-2026").is_err());
        assert!(parse_role("grader:bad code").is_err());
    }

    #[test]
    fn acr_and_amr_requirements() {
        assert!(check_acr(&[], None).is_ok());
        let acr = vec!["urn:mfa".to_owned()];
        assert!(check_acr(&acr, Some("urn:mfa")).is_ok());
        assert!(check_acr(&acr, Some("urn:pwd")).is_err());
        assert!(check_acr(&acr, None).is_err());
        let amr = vec!["mfa".to_owned(), "otp".to_owned()];
        assert!(check_amr(&amr, &["pwd".into(), "otp".into()]).is_ok());
        assert!(matches!(
            check_amr(&amr, &["pwd".into()]),
            Err(OidcError::AmrNotSatisfied)
        ));
        assert!(check_amr(&[], &[]).is_ok());
    }

    #[test]
    fn usernames_are_prefixed_and_sanitized() {
        assert_eq!(make_username("kc", "kim.j"), "kc:kim.j");
        assert_eq!(make_username("kc", "김 안과/1"), "kc:_____1");
        assert_eq!(make_username("kc", &"x".repeat(100)).len(), 64);
    }

    #[test]
    fn configuration_is_validated_without_network() {
        let good = OidcProviderConfig {
            id: "hospital".into(),
            issuer: "https://sso.example".into(),
            client_id: "readroom".into(),
            role_map: [("g".to_owned(), "grader".to_owned())].into(),
            ..OidcProviderConfig::default()
        };
        assert!(OidcProviders::new(std::slice::from_ref(&good), "https://rr.example").is_ok());
        let mut bad_id = good.clone();
        bad_id.id = "Hospital SSO".into();
        assert!(OidcProviders::new(&[bad_id], "https://rr.example").is_err());
        assert!(OidcProviders::new(&[good.clone(), good.clone()], "https://rr.example").is_err());
        let mut bad_role = good.clone();
        bad_role.role_map = [("g".to_owned(), "superuser".to_owned())].into();
        let err = OidcProviders::new(&[bad_role], "https://rr.example").unwrap_err();
        assert!(err.to_string().contains("superuser"), "{err}");
        let mut no_issuer = good;
        no_issuer.issuer = "not a url".into();
        assert!(OidcProviders::new(&[no_issuer], "https://rr.example").is_err());
    }
}
