//! Single sign-on against a real OpenID Provider (npm `oidc-provider`) through the real server:
//! the browser-less authorization code flow with PKCE, role mapping from the groups claim,
//! open-redirect and replay attempts, the RFC 9207 `iss` check, MFA requirements, tampered ID
//! tokens (signature, audience, expiry, nonce), key rotation and RP-initiated logout.

use crate::support;

use readroom_server::auth::at_rest::Column;
use readroom_server::auth::oidc::{OidcError, OidcProviders};
use readroom_server::config::OidcProviderConfig;
use readroom_server::db::{Backend, Role};
use readroom_tests::oidc::{OidcClient, OidcProvider, OidcUser};
use support::TestApp;

const SECRET: &str = "test-client-secret-0123456789abcdef";

struct Sso {
    provider: OidcProvider,
    app: TestApp,
    study: uuid::Uuid,
}

fn provider_config(issuer: &str, client_id: &str) -> OidcProviderConfig {
    OidcProviderConfig {
        id: "hospital".into(),
        name: "Hospital SSO".into(),
        issuer: issuer.to_owned(),
        client_id: client_id.to_owned(),
        client_secret: SECRET.into(),
        scopes: vec!["profile".into(), "email".into(), "groups".into()],
        role_claim: "groups".into(),
        role_map: [
            ("eye-graders".to_owned(), "grader:SSO".to_owned()),
            ("it-admins".to_owned(), "admin".to_owned()),
        ]
        .into(),
        ..OidcProviderConfig::default()
    }
}

impl Sso {
    async fn start(backend: Backend, required_amr: &[&str]) -> Sso {
        let port = support::free_port();
        let app_url = format!("http://127.0.0.1:{port}");
        let provider = OidcProvider::start(
            &[OidcClient {
                client_id: "readroom".into(),
                client_secret: SECRET.into(),
                redirect_uris: vec![format!("{app_url}/api/auth/oidc/hospital/callback")],
                post_logout_redirect_uris: vec![format!("{app_url}/signin?signed_out=1")],
            }],
            &[
                OidcUser::new("alice", &["eye-graders", "unrelated"]),
                OidcUser::new("bob", &["it-admins"]),
                OidcUser::new("carol", &["eye-graders"]).with_mfa(),
            ],
        )
        .expect("OIDC provider starts");
        let mut config = provider_config(provider.issuer(), "readroom");
        config.required_amr = required_amr.iter().map(|s| (*s).to_owned()).collect();
        let app = TestApp::start_with(backend, |c| {
            c.listen = format!("127.0.0.1:{port}").parse().unwrap();
            c.auth.oidc = vec![config];
        })
        .await;
        let study = app.study("SSO").await;
        Sso {
            provider,
            app,
            study,
        }
    }

    fn browser(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_store(true)
            .build()
            .unwrap()
    }

    /// Follows redirects from `start` (a readroom URL) through the provider until the browser is
    /// sent back to readroom's callback; returns the callback URL without calling it.
    async fn to_callback(&self, browser: &reqwest::Client, start: &str) -> String {
        let mut url = start.to_owned();
        for _ in 0..10 {
            let response = browser.get(&url).send().await.unwrap();
            assert!(
                response.status().is_redirection(),
                "{url}: {} {}",
                response.status(),
                response.text().await.unwrap_or_default()
            );
            let location = response.headers()["location"].to_str().unwrap().to_owned();
            let next = reqwest::Url::parse(&url)
                .unwrap()
                .join(&location)
                .unwrap()
                .to_string();
            if next.contains("/api/auth/oidc/hospital/callback") {
                return next;
            }
            url = next;
        }
        panic!("no callback after 10 redirects");
    }

    /// Calls the callback; returns (status, Location).
    async fn callback(&self, browser: &reqwest::Client, url: &str) -> (u16, String) {
        let response = browser.get(url).send().await.unwrap();
        let location = response
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (response.status().as_u16(), location)
    }

    fn start_url(&self, user: &str, return_to: &str) -> String {
        format!(
            "{}/api/auth/oidc/hospital/start?login_hint={user}&return_to={}",
            self.app.url,
            urlencode(return_to)
        )
    }

    /// A complete sign-in; returns the browser (holding the session cookie) and Location.
    async fn sign_in(&self, user: &str, return_to: &str) -> (reqwest::Client, u16, String) {
        let browser = self.browser();
        let callback = self
            .to_callback(&browser, &self.start_url(user, return_to))
            .await;
        let (status, location) = self.callback(&browser, &callback).await;
        (browser, status, location)
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn fetch_me(app: &TestApp, browser: &reqwest::Client) -> (u16, serde_json::Value) {
    let response = browser
        .get(format!("{}/api/me", app.url))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

async fn code_flow_signs_in_and_maps_roles(backend: Backend) {
    let sso = Sso::start(backend, &[]).await;
    let (browser, status, location) = sso.sign_in("alice", "/cases/123").await;
    assert_eq!((status, location.as_str()), (303, "/cases/123"));
    let (status, me) = fetch_me(&sso.app, &browser).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["username"], "hospital:alice");
    assert_eq!(me["email"], "alice@hospital.example");
    assert_eq!(me["auth_method"], "oidc:hospital");
    assert_eq!(
        me["roles"],
        serde_json::json!([{ "role": "grader", "study": "SSO" }])
    );
    // The grant is recorded as coming from the IdP.
    let user = sso
        .app
        .db()
        .user_by_username("hospital:alice")
        .await
        .unwrap();
    let grants = sso.app.db().roles_of(user.id).await.unwrap();
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].source, "idp:hospital");
    assert_eq!(grants[0].study_id, Some(sso.study));

    // A second sign-in finds the same account.
    let (_, _, _) = sso.sign_in("alice", "/").await;
    let users = sso.app.db().list_users().await.unwrap();
    assert_eq!(
        users
            .iter()
            .filter(|u| u.username == "hospital:alice")
            .count(),
        1
    );

    // bob's group maps to the global admin role.
    let (bob, _, _) = sso.sign_in("bob", "/").await;
    let (_, me) = fetch_me(&sso.app, &bob).await;
    assert_eq!(
        me["roles"],
        serde_json::json!([{ "role": "admin", "study": null }])
    );
}

async fn return_to_cannot_leave_the_site(backend: Backend) {
    let sso = Sso::start(backend, &[]).await;
    for evil in [
        "https://evil.example/",
        "//evil.example",
        "/\\evil.example",
        "/api/admin/users",
    ] {
        let (_, status, location) = sso.sign_in("alice", evil).await;
        assert_eq!((status, location.as_str()), (303, "/"), "{evil}");
    }
}

async fn replayed_or_mixed_up_callbacks_are_refused(backend: Backend) {
    let sso = Sso::start(backend, &[]).await;
    let browser = sso.browser();
    let callback = sso
        .to_callback(&browser, &sso.start_url("alice", "/"))
        .await;
    assert!(
        callback.contains("iss="),
        "the provider sends RFC 9207 iss: {callback}"
    );
    // A mixed-up issuer is refused before the code is used...
    let mixed = callback.replace("iss=http", "iss=https");
    let (status, location) = sso.callback(&browser, &mixed).await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/signin?error=invalid_callback")
    );
    // ...and the state it carried is spent, so the genuine callback cannot be replayed either.
    let (_, location) = sso.callback(&browser, &callback).await;
    assert_eq!(location, "/signin?error=invalid_callback");
    // An unknown state, a missing code, a provider error, an unknown provider.
    for (path, code) in [
        (
            "/api/auth/oidc/hospital/callback?code=x&state=forged",
            "invalid_callback",
        ),
        (
            "/api/auth/oidc/hospital/callback?state=x",
            "invalid_callback",
        ),
        (
            "/api/auth/oidc/hospital/callback?error=access_denied&state=x",
            "provider_error",
        ),
        ("/api/auth/oidc/nope/start", "unknown_provider"),
    ] {
        let (_, location) = sso
            .callback(&browser, &format!("{}{path}", sso.app.url))
            .await;
        assert_eq!(location, format!("/signin?error={code}"), "{path}");
    }
    let (status, _) = fetch_me(&sso.app, &browser).await;
    assert_eq!(status, 401);
}

async fn mfa_can_be_required(backend: Backend) {
    let sso = Sso::start(backend, &["mfa"]).await;
    let (_, _, location) = sso.sign_in("alice", "/").await;
    assert_eq!(location, "/signin?error=mfa_required");
    let (carol, _, location) = sso.sign_in("carol", "/").await;
    assert_eq!(location, "/");
    assert_eq!(fetch_me(&sso.app, &carol).await.0, 200);
}

async fn tampered_id_tokens_are_refused_and_keys_can_rotate(backend: Backend) {
    let mut sso = Sso::start(backend, &[]).await;
    let (browser, _, _) = sso.sign_in("alice", "/").await;
    // The real ID token, stored for the logout hint sealed with the server secrets key (the
    // database layer returns the column as stored): the JWT is not in the row.
    let user = sso
        .app
        .db()
        .user_by_username("hospital:alice")
        .await
        .unwrap();
    let session = browser_session(&sso, &browser, user.id).await;
    let stored = session.id_token.clone().expect("ID token kept for logout");
    let secrets = &sso.app.state.auth.secrets;
    let id_token = secrets
        .open(Column::IdToken, user.id, &stored)
        .expect("the server's key opens it");
    assert!(stored.starts_with("v1:"), "{stored}");
    for part in id_token.split('.') {
        assert!(
            !stored.contains(part),
            "a part of the JWT is stored in clear"
        );
    }
    let claims: serde_json::Value = {
        let payload = id_token.split('.').nth(1).unwrap();
        use base64::Engine;
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap()
    };
    let nonce = claims["nonce"]
        .as_str()
        .expect("nonce in the ID token")
        .to_owned();
    let now = time::OffsetDateTime::now_utc();
    let oidc = &sso.app.state.auth.oidc;
    oidc.verify_id_token_at("hospital", &id_token, &nonce, now)
        .await
        .expect("the genuine token verifies");

    // Change one character in the middle of the signature (the last one may be padding bits).
    let signature_start = id_token.rfind('.').unwrap() + 1;
    let middle = signature_start + (id_token.len() - signature_start) / 2;
    let mut forged = id_token.clone();
    let replacement = if &id_token[middle..=middle] == "A" {
        "B"
    } else {
        "A"
    };
    forged.replace_range(middle..=middle, replacement);
    let refused = [
        (
            "signature",
            oidc.verify_id_token_at("hospital", &forged, &nonce, now)
                .await,
        ),
        (
            "expiry",
            oidc.verify_id_token_at(
                "hospital",
                &id_token,
                &nonce,
                now + time::Duration::hours(2),
            )
            .await,
        ),
        (
            "nonce",
            oidc.verify_id_token_at("hospital", &id_token, "other-nonce", now)
                .await,
        ),
        (
            "not a JWT",
            oidc.verify_id_token_at("hospital", "abc.def", &nonce, now)
                .await,
        ),
    ];
    for (what, result) in refused {
        assert!(
            matches!(result, Err(OidcError::InvalidIdToken(_))),
            "{what}: {result:?}"
        );
    }
    // A relying party registered under another client id refuses the token (audience).
    let other = OidcProviders::new(
        &[provider_config(sso.provider.issuer(), "someone-else")],
        &sso.app.url,
    )
    .unwrap();
    let audience = other
        .verify_id_token_at("hospital", &id_token, &nonce, now)
        .await;
    assert!(
        matches!(audience, Err(OidcError::InvalidIdToken(_))),
        "{audience:?}"
    );

    // RP-initiated logout sends the browser to the provider with the token as hint.
    let logout = browser
        .post(format!("{}/api/auth/logout", sso.app.url))
        .header("origin", &sso.app.url)
        .header("x-csrf-token", session.csrf_token)
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = logout.json().await.unwrap();
    let redirect = body["redirect"].as_str().expect("logout redirect");
    assert!(
        redirect.starts_with(&format!("{}/session/end?", sso.provider.issuer())),
        "{redirect}"
    );
    // The hint is the token itself (opened from its sealed form), not the stored text.
    assert!(
        redirect.contains(&format!("id_token_hint={id_token}")),
        "{redirect}"
    );

    // Key rotation: the provider restarts with a new signing key; the server's cached keys no
    // longer match, it refetches them once, and sign-in keeps working.
    sso.provider.restart().expect("provider restarts");
    let (again, _, location) = sso.sign_in("alice", "/").await;
    assert_eq!(location, "/");
    assert_eq!(fetch_me(&sso.app, &again).await.0, 200);
    // The old token no longer verifies (its key is gone), even after the refresh.
    let old = oidc
        .verify_id_token_at("hospital", &id_token, &nonce, now)
        .await;
    assert!(matches!(old, Err(OidcError::InvalidIdToken(_))), "{old:?}");
}

/// The server-side session this browser holds (matched by the CSRF token `/api/me` shows).
async fn browser_session(
    sso: &Sso,
    browser: &reqwest::Client,
    user_id: uuid::Uuid,
) -> readroom_server::db::Session {
    let (_, me) = fetch_me(&sso.app, browser).await;
    let csrf = me["csrf_token"].as_str().unwrap().to_owned();
    sso.app
        .db()
        .sessions_of_user(user_id)
        .await
        .unwrap()
        .into_iter()
        .find(|session| session.csrf_token == csrf)
        .expect("the browser's session")
}

async fn roles_from_the_idp_follow_each_sign_in(backend: Backend) {
    let sso = Sso::start(backend, &[]).await;
    let (_, _, _) = sso.sign_in("alice", "/").await;
    let user = sso
        .app
        .db()
        .user_by_username("hospital:alice")
        .await
        .unwrap();
    // A manual grant survives sign-ins; the IdP's grants are replaced each time.
    sso.app
        .db()
        .grant_role(user.id, Role::Auditor, None, None)
        .await
        .unwrap();
    let (_, _, _) = sso.sign_in("alice", "/").await;
    let roles: Vec<(Role, String)> = sso
        .app
        .db()
        .roles_of(user.id)
        .await
        .unwrap()
        .into_iter()
        .map(|g| (g.role, g.source))
        .collect();
    assert!(
        roles.contains(&(Role::Auditor, "manual".into())),
        "{roles:?}"
    );
    assert!(
        roles.contains(&(Role::Grader, "idp:hospital".into())),
        "{roles:?}"
    );
    assert_eq!(roles.len(), 2);
}

/// Finding 7 (login CSRF): the callback is accepted only from the browser that began the
/// sign-in, which holds the `state` in a cookie set by the start route.
async fn the_callback_needs_the_browser_that_began_the_sign_in(backend: Backend) {
    let sso = Sso::start(backend, &[]).await;
    let start = sso
        .browser()
        .get(sso.start_url("alice", "/"))
        .send()
        .await
        .unwrap();
    let cookie = start.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("readroom_oidc="), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=600"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    // The attacker signs in at the provider as themselves and hands the callback URL to a
    // victim's browser, which never began a sign-in.
    let attacker = sso.browser();
    let callback = sso
        .to_callback(&attacker, &sso.start_url("alice", "/cases/1"))
        .await;
    let victim = sso.browser();
    let (status, location) = sso.callback(&victim, &callback).await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/signin?error=invalid_callback")
    );
    assert_eq!(fetch_me(&sso.app, &victim).await.0, 401);
    // The browser that began it completes it, and the binding cookie is cleared.
    let response = attacker.get(&callback).send().await.unwrap();
    assert_eq!(response.headers()["location"], "/cases/1");
    let cleared = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap().starts_with("readroom_oidc=;"));
    assert!(cleared);
    assert_eq!(fetch_me(&sso.app, &attacker).await.0, 200);
}

crate::on_both_backends!(
    the_callback_needs_the_browser_that_began_the_sign_in,
    code_flow_signs_in_and_maps_roles,
    return_to_cannot_leave_the_site,
    replayed_or_mixed_up_callbacks_are_refused,
    mfa_can_be_required,
    tampered_id_tokens_are_refused_and_keys_can_rotate,
    roles_from_the_idp_follow_each_sign_in,
);
