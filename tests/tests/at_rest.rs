//! Secrets at rest, on SQLite and PostgreSQL: TOTP secrets set up through the real API are
//! stored sealed with the server secrets key (the raw rows, and on SQLite the database files,
//! do not hold them), sign-in with a code still works, plain values from an earlier version are
//! sealed when a server starts, and a server given the wrong key refuses to start with an error
//! that names the problem. The ID-token half through the real provider is in `oidc.rs`
//! (`tampered_id_tokens_are_refused_and_keys_can_rotate`).

use crate::support;

use readroom_server::auth::at_rest::{Column, SecretsKey};
use readroom_server::auth::{self, totp};
use readroom_server::config::{Config, Overrides};
use readroom_server::db::{Backend, NewSession, User};
use readroom_server::serve::Server;
use serde_json::json;
use sqlx::Connection;
use support::{Browser, TestApp};
use uuid::Uuid;

const PASSWORD: &str = "correct horse battery staple";
/// A base32 TOTP secret planted as an earlier version would have stored it.
const PLAIN_SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
/// An ID token as an earlier version would have stored it (only its shape matters here).
const PLAIN_ID_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJraW0ifQ.c2lnbmF0dXJlLWJ5dGVz";

/// The stored TOTP columns of a user, read with SQL on the app's database (not through `Db`).
async fn raw_totp(app: &TestApp, user_id: Uuid) -> (Option<String>, Option<String>) {
    const QUERY: &str =
        "SELECT totp_secret, totp_pending_secret FROM credentials WHERE user_id = $1";
    let url = app.state.config.database_url();
    match app.db().backend() {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::query_as(QUERY)
                .bind(user_id)
                .fetch_one(&mut conn)
                .await
                .unwrap()
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::query_as(QUERY)
                .bind(user_id)
                .fetch_one(&mut conn)
                .await
                .unwrap()
        }
    }
}

/// The stored ID token of a session, read with SQL.
async fn raw_id_token(app: &TestApp, session_id: Uuid) -> Option<String> {
    const QUERY: &str = "SELECT id_token FROM sessions WHERE id = $1";
    let url = app.state.config.database_url();
    let (id_token,): (Option<String>,) = match app.db().backend() {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::query_as(QUERY)
                .bind(session_id)
                .fetch_one(&mut conn)
                .await
                .unwrap()
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::query_as(QUERY)
                .bind(session_id)
                .fetch_one(&mut conn)
                .await
                .unwrap()
        }
    };
    id_token
}

fn assert_sealed(stored: Option<&str>, plain: &str) {
    let stored = stored.expect("a stored value");
    assert!(stored.starts_with("v1:"), "not sealed: {stored}");
    assert!(!stored.contains(plain), "the plain value is in the row");
}

fn now() -> u64 {
    u64::try_from(auth::now_unix()).unwrap()
}

async fn password_sign_in(app: &TestApp, username: &str, code: Option<&str>) -> support::Reply {
    let mut body = json!({ "username": username, "password": PASSWORD });
    if let Some(code) = code {
        body["totp"] = json!(code);
    }
    Browser::new(app).post("/api/auth/login", body).await
}

async fn user_with_password(app: &TestApp, username: &str) -> User {
    let user = app.user(username, &[]).await;
    app.set_password(&user, PASSWORD).await;
    user
}

async fn totp_secrets_set_up_through_the_api_are_sealed(backend: Backend) {
    let app = TestApp::start(backend).await;
    let user = user_with_password(&app, "kim").await;
    let mut browser = app.sign_in(&user).await;
    let setup = browser.post("/api/auth/totp/setup", json!({})).await;
    assert_eq!(setup.status, 200, "{}", setup.body);
    let secret = setup.body["secret"].as_str().unwrap().to_owned();
    let (active, pending) = raw_totp(&app, user.id).await;
    assert_eq!(active, None);
    assert_sealed(pending.as_deref(), &secret);

    let code = totp::code_at(&secret, now() - 30).unwrap();
    let enabled = browser
        .post(
            "/api/auth/totp/enable",
            json!({ "code": code, "current_password": PASSWORD }),
        )
        .await;
    assert_eq!(enabled.status, 204, "{}", enabled.body);
    let (active, pending) = raw_totp(&app, user.id).await;
    assert_eq!(pending, None);
    assert_sealed(active.as_deref(), &secret);

    // The sealed secret still checks codes: a sign-in needs one and accepts a current one.
    let needs = password_sign_in(&app, "kim", None).await;
    assert_eq!((needs.status, needs.code()), (401, "totp_required"));
    let code = totp::code_at(&secret, now()).unwrap();
    let signed_in = password_sign_in(&app, "kim", Some(&code)).await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.body);

    // On SQLite nothing the server wrote holds the secret: not the database, not its WAL.
    if backend == Backend::Sqlite {
        let data = &app.state.config.data_dir;
        for file in ["readroom.db", "readroom.db-wal"] {
            let bytes = std::fs::read(data.join(file)).unwrap_or_default();
            let found = bytes
                .windows(secret.len())
                .any(|window| window == secret.as_bytes());
            assert!(!found, "the TOTP secret is in {file}");
        }
    }
    // The key file is the server's alone.
    use std::os::unix::fs::PermissionsExt;
    let key_path = app.state.config.secrets_key_path().unwrap();
    let mode = std::fs::metadata(&key_path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{}", key_path.display());
}

/// A server started on a database an earlier version wrote (plain TOTP secrets and ID tokens)
/// seals them before it answers, and they keep working.
async fn plain_values_from_an_earlier_version_are_sealed_at_start(backend: Backend) {
    let old = TestApp::start(backend).await;
    let user = user_with_password(&old, "kim").await;
    // Written through the database layer, which stores what it is given: as before sealing.
    old.db()
        .set_totp_pending(user.id, PLAIN_SECRET)
        .await
        .unwrap();
    old.db().enable_totp(user.id, 0).await.unwrap();
    let session = old
        .db()
        .create_session(&NewSession {
            token_hash: "ab".repeat(32),
            user_id: user.id,
            csrf_token: "csrf".into(),
            auth_method: "oidc:hospital".into(),
            id_token: Some(PLAIN_ID_TOKEN.into()),
            expires_unix: auth::now_unix() + 3600,
            client_addr: None,
        })
        .await
        .unwrap();
    assert_eq!(
        raw_totp(&old, user.id).await.0.as_deref(),
        Some(PLAIN_SECRET)
    );

    // A new server on the same database and key.
    let database_url = old.state.config.database_url();
    let key_path = old.state.config.secrets_key_path().unwrap();
    let new = TestApp::start_with(backend, |config| {
        config.database_url = database_url;
        config.auth.secrets_key_file = key_path;
    })
    .await;
    let (active, _) = raw_totp(&new, user.id).await;
    assert_sealed(active.as_deref(), PLAIN_SECRET);
    let stored_token = raw_id_token(&new, session.id).await;
    assert_sealed(stored_token.as_deref(), PLAIN_ID_TOKEN);
    let secrets = &new.state.auth.secrets;
    assert_eq!(
        secrets
            .open(Column::IdToken, user.id, stored_token.as_deref().unwrap())
            .unwrap(),
        PLAIN_ID_TOKEN
    );
    let code = totp::code_at(PLAIN_SECRET, now()).unwrap();
    let signed_in = password_sign_in(&new, "kim", Some(&code)).await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.body);

    // Starting again changes nothing: sealed values are not sealed twice.
    let sealed_once = raw_totp(&new, user.id).await.0;
    let database_url = old.state.config.database_url();
    let key_path = old.state.config.secrets_key_path().unwrap();
    let again = TestApp::start_with(backend, |config| {
        config.database_url = database_url;
        config.auth.secrets_key_file = key_path;
    })
    .await;
    assert_eq!(raw_totp(&again, user.id).await.0, sealed_once);
}

/// The wrong key stops the server at start, with an error that says so; a single value that
/// does not open (beside ones that do) fails only its own user's sign-in, without a panic and
/// without the value in the answer.
async fn a_wrong_key_is_named_not_guessed(backend: Backend) {
    let app = TestApp::start(backend).await;
    let kim = user_with_password(&app, "kim").await;
    let secrets = &app.state.auth.secrets;
    let sealed = secrets.seal(Column::TotpSecret, kim.id, PLAIN_SECRET);
    app.db().set_totp_pending(kim.id, &sealed).await.unwrap();
    app.db().enable_totp(kim.id, 0).await.unwrap();

    // Another key file for the same database.
    let dir = tempfile::tempdir().unwrap();
    let wrong_key = dir.path().join("keys/server-secrets.key");
    let mut config = Config::load(
        None,
        Overrides {
            data_dir: Some(dir.path().join("data")),
            listen: Some("127.0.0.1:0".parse().unwrap()),
        },
    )
    .unwrap();
    config.database_url = app.state.config.database_url();
    config.auth.secrets_key_file = wrong_key.clone();
    let Err(err) = Server::bind(config, false).await else {
        panic!("a server with the wrong secrets key started");
    };
    let message = format!("{err:#}");
    assert!(
        message.contains("decrypts none of the sealed secrets in the database (1 of them)")
            && message.contains("wrong auth.secrets_key_file?")
            && message.contains(&wrong_key.display().to_string())
            && message.contains(&kim.id.to_string()),
        "{message}"
    );
    assert!(!message.contains(PLAIN_SECRET) && !message.contains(&sealed[3..]));

    // One value sealed with another key beside kim's good one: lee's sign-in with a code is an
    // internal error (logged with lee's id and the cause), kim's still works.
    let lee = user_with_password(&app, "lee").await;
    let other_key = SecretsKey::from_bytes(&[9; 32]);
    let foreign = other_key.seal(Column::TotpSecret, lee.id, PLAIN_SECRET);
    app.db().set_totp_pending(lee.id, &foreign).await.unwrap();
    app.db().enable_totp(lee.id, 0).await.unwrap();
    let code = totp::code_at(PLAIN_SECRET, now()).unwrap();
    let refused = password_sign_in(&app, "lee", Some(&code)).await;
    assert_eq!((refused.status, refused.code()), (500, "internal"));
    assert!(!refused.body.to_string().contains(PLAIN_SECRET));
    let signed_in = password_sign_in(&app, "kim", Some(&code)).await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.body);

    // The same secret copied into lee's row from kim's does not open either (bound to kim).
    sqlx_copy_totp(&app, kim.id, lee.id).await;
    let moved = password_sign_in(&app, "lee", Some(&code)).await;
    assert_eq!(moved.status, 500, "{}", moved.body);
}

/// Copies one user's stored TOTP secret into another's row, as someone with write access to
/// the database could.
async fn sqlx_copy_totp(app: &TestApp, from: Uuid, to: Uuid) {
    let (stored, _) = raw_totp(app, from).await;
    const QUERY: &str = "UPDATE credentials SET totp_secret = $2 WHERE user_id = $1";
    let url = app.state.config.database_url();
    match app.db().backend() {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::query(QUERY)
                .bind(to)
                .bind(stored)
                .execute(&mut conn)
                .await
                .unwrap();
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::query(QUERY)
                .bind(to)
                .bind(stored)
                .execute(&mut conn)
                .await
                .unwrap();
        }
    }
}

crate::on_both_backends!(
    totp_secrets_set_up_through_the_api_are_sealed,
    plain_values_from_an_earlier_version_are_sealed_at_start,
    a_wrong_key_is_named_not_guessed,
);
