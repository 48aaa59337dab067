//! Signing in through the real viewer in headless Chromium (Debian's, driven by playwright-core):
//! the local form, a one-time link (its token must leave the address bar) and the single
//! sign-on button against a real OpenID provider. Each run also asserts the page produced no
//! console errors, failed requests or Content-Security-Policy violations.

use crate::support;

use readroom_server::config::OidcProviderConfig;
use readroom_server::db::{AssignmentRole, Backend, Role};
use readroom_tests::browser;
use readroom_tests::oidc::{OidcClient, OidcProvider, OidcUser};
use serde_json::json;
use support::TestApp;

/// A grader with two of three cases assigned.
async fn world(app: &TestApp) -> readroom_server::db::User {
    let study = app.study("WEB").await;
    let grader = app.user("grader.kim", &[(Role::Grader, Some(study))]).await;
    for (n, subject) in ["S1", "S2", "S3"].into_iter().enumerate() {
        let case = app.case(study, subject).await;
        if n < 2 {
            app.assign(&case, &grader, AssignmentRole::Grader).await;
        }
    }
    grader
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_form_and_one_time_link_sign_in_in_chromium() {
    browser::check_prerequisites().expect("Chromium and playwright-core (scripts/setup)");
    let app = TestApp::start(Backend::Sqlite).await;
    let grader = world(&app).await;
    app.set_password(&grader, "correct horse battery staple")
        .await;

    let wrong = browser::sign_in(json!({
        "base_url": app.url, "mode": "local",
        "username": "grader.kim", "password": "not the password at all",
    }))
    .await
    .expect("browser run");
    assert_eq!(wrong["signed_in"], false, "{wrong}");
    assert!(
        !wrong["message"].as_str().unwrap_or("").is_empty(),
        "{wrong}"
    );

    let local = browser::sign_in(json!({
        "base_url": app.url, "mode": "local",
        "username": "grader.kim", "password": "correct horse battery staple",
    }))
    .await
    .expect("browser run");
    assert_eq!(local["signed_in"], true, "{local}");
    assert_eq!(local["username"], "grader.kim");
    assert_eq!(
        local["worklist_rows"], 2,
        "a grader sees only the assigned cases"
    );
    browser::assert_clean(&local, "signin");

    let link = app.link(&grader).await;
    let linked = browser::sign_in(json!({ "base_url": app.url, "mode": "link", "link_url": link }))
        .await
        .expect("browser run");
    assert_eq!(linked["signed_in"], true, "{linked}");
    assert_eq!(
        linked["link_token_in_url"], false,
        "the token must leave the address bar"
    );
    browser::assert_clean(&linked, "signin");
    // The link was used up by the browser.
    let again = browser::sign_in(json!({ "base_url": app.url, "mode": "link", "link_url": link }))
        .await
        .expect("browser run");
    assert_eq!(again["signed_in"], false, "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_sign_on_button_in_chromium() {
    browser::check_prerequisites().expect("Chromium and playwright-core (scripts/setup)");
    let port = support::free_port();
    let app_url = format!("http://127.0.0.1:{port}");
    let provider = OidcProvider::start(
        &[OidcClient {
            client_id: "readroom".into(),
            client_secret: "browser-test-secret-0123456789".into(),
            redirect_uris: vec![format!("{app_url}/api/auth/oidc/hospital/callback")],
            post_logout_redirect_uris: vec![format!("{app_url}/signin?signed_out=1")],
        }],
        &[OidcUser::new("dr.seo", &["eye-graders"])],
    )
    .expect("OIDC provider starts");
    let config = OidcProviderConfig {
        id: "hospital".into(),
        name: "Hospital SSO".into(),
        issuer: provider.issuer().to_owned(),
        client_id: "readroom".into(),
        client_secret: "browser-test-secret-0123456789".into(),
        scopes: vec!["profile".into(), "email".into(), "groups".into()],
        role_claim: "groups".into(),
        role_map: [("eye-graders".to_owned(), "grader:WEB".to_owned())].into(),
        ..OidcProviderConfig::default()
    };
    let app = TestApp::start_with(Backend::Sqlite, |c| {
        c.listen = format!("127.0.0.1:{port}").parse().unwrap();
        c.auth.oidc = vec![config];
    })
    .await;
    let study = app.study("WEB").await;
    let _ = app.case(study, "S1").await;

    let result = browser::sign_in(json!({
        "base_url": app.url, "mode": "oidc", "provider_id": "hospital", "login_hint": "dr.seo",
    }))
    .await
    .expect("browser run");
    assert_eq!(result["signed_in"], true, "{result}");
    assert_eq!(result["username"], "hospital:dr.seo");
    browser::assert_clean(&result, "signin");
}
