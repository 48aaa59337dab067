//! Sign-in, sessions and their attacks, against a real server on SQLite and PostgreSQL:
//! cookie attributes, rotation, expiry, replay and forgery, CSRF, brute force and lockout,
//! TOTP, one-time links, sign-out everywhere, disabled accounts, streaming tickets.

use crate::support;

use readroom_domain::ticket::TicketError;
use readroom_server::auth;
use readroom_server::db::{AssignmentRole, Backend, Role};
use serde_json::json;
use support::{Browser, TestApp};

const PASSWORD: &str = "correct horse battery staple";

async fn password_sign_in_sets_a_strict_http_only_cookie(backend: Backend) {
    let app = TestApp::start(backend).await;
    let user = app.user("kim", &[]).await;
    app.set_password(&user, PASSWORD).await;
    let mut browser = Browser::new(&app);
    let reply = browser
        .post(
            "/api/auth/login",
            json!({ "username": "kim", "password": PASSWORD }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let cookie = reply.headers["set-cookie"].to_str().unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    // Plain-http loopback development: no Secure (browsers would drop it), no __Host- prefix.
    assert!(cookie.starts_with("readroom_session="), "{cookie}");
    assert_eq!(reply.body["user"]["username"], "kim");
    let me = browser.get("/api/me").await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["auth_method"], "password");
    assert_eq!(me.body["password_set"], true);
    assert_eq!(me.body["session"]["idle_timeout_s"], 1800);
    // The raw token is not what the database stores.
    let token = browser.cookie.clone().unwrap();
    let token = token.split('=').nth(1).unwrap();
    assert!(matches!(
        app.db().session_by_token_hash(token).await,
        Err(readroom_server::db::DbError::NotFound)
    ));
}

async fn sign_in_rotates_the_session(backend: Backend) {
    let app = TestApp::start(backend).await;
    let user = app.user("kim", &[]).await;
    app.set_password(&user, PASSWORD).await;
    let mut browser = app.sign_in(&user).await;
    let before = browser.cookie.clone().unwrap();
    let reply = browser
        .post(
            "/api/auth/login",
            json!({ "username": "kim", "password": PASSWORD }),
        )
        .await;
    assert_eq!(reply.status, 200);
    let after = browser.cookie.clone().unwrap();
    assert_ne!(before, after, "a sign-in must issue a new session id");
    // The old cookie is dead.
    let mut old = Browser::new(&app);
    old.cookie = Some(before);
    assert_eq!(old.get("/api/me").await.status, 401);
    assert_eq!(browser.get("/api/me").await.status, 200);
}

async fn wrong_passwords_and_unknown_users_look_the_same(backend: Backend) {
    let app = TestApp::start(backend).await;
    let user = app.user("kim", &[]).await;
    app.set_password(&user, PASSWORD).await;
    let mut browser = Browser::new(&app);
    let wrong = browser
        .post(
            "/api/auth/login",
            json!({ "username": "kim", "password": "nope nope nope" }),
        )
        .await;
    let unknown = browser
        .post(
            "/api/auth/login",
            json!({ "username": "lee", "password": "nope nope nope" }),
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.body, unknown.body);
    assert_eq!(wrong.code(), "invalid_credentials");
    assert!(browser.cookie.is_none());
    // Malformed bodies get a clear 400, not a crash.
    let bad = browser
        .send("POST", "/api/auth/login", Some(json!({ "user": "kim" })))
        .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(
        bad.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("username")
    );
}

async fn brute_force_hits_the_lockout(backend: Backend) {
    let app = TestApp::start(backend).await;
    let user = app.user("kim", &[]).await;
    let admin = app.user("root", &[(Role::Admin, None)]).await;
    app.set_password(&user, PASSWORD).await;
    let mut attacker = Browser::new(&app);
    let mut statuses = Vec::new();
    for attempt in 0..7 {
        let reply = attacker
            .post(
                "/api/auth/login",
                json!({ "username": "kim", "password": format!("guess number {attempt}") }),
            )
            .await;
        statuses.push(reply.status);
        if reply.status == 429 {
            assert_eq!(reply.code(), "locked");
            let retry: i64 = reply.headers["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=60).contains(&retry), "{retry}");
        }
    }
    assert_eq!(statuses, [401, 401, 401, 401, 429, 429, 429]);
    // The right password does not get through while locked.
    let locked = attacker
        .post(
            "/api/auth/login",
            json!({ "username": "kim", "password": PASSWORD }),
        )
        .await;
    assert_eq!(locked.status, 429);
    // An admin lifts the lock.
    let mut admin_browser = app.sign_in(&admin).await;
    let unlock = admin_browser
        .post(&format!("/api/admin/users/{}/unlock", user.id), json!({}))
        .await;
    assert_eq!(unlock.status, 200, "{}", unlock.body);
    let ok = attacker
        .post(
            "/api/auth/login",
            json!({ "username": "kim", "password": PASSWORD }),
        )
        .await;
    assert_eq!(ok.status, 200);
}

async fn one_address_is_throttled(backend: Backend) {
    let app =
        TestApp::start_with(backend, |config| config.auth.login_attempts_per_minute = 3).await;
    let mut browser = Browser::new(&app);
    let mut statuses = Vec::new();
    for n in 0..5 {
        let reply = browser
            .post(
                "/api/auth/login",
                json!({ "username": format!("user{n}"), "password": "whatever whatever" }),
            )
            .await;
        statuses.push((reply.status, reply.code().to_owned()));
    }
    assert_eq!(statuses[3], (429, "throttled".to_owned()), "{statuses:?}");
    assert_eq!(statuses[4].0, 429);
}

async fn csrf_and_cross_site_requests_are_refused(backend: Backend) {
    let app = TestApp::start(backend).await;
    let user = app.user("kim", &[]).await;
    app.set_password(&user, PASSWORD).await;
    let mut browser = app.sign_in(&user).await;
    let token = browser.csrf.take();
    let no_token = browser.post("/api/auth/logout", json!({})).await;
    assert_eq!((no_token.status, no_token.code()), (403, "csrf"));
    browser.csrf = Some("forged".into());
    let forged = browser.post("/api/auth/logout", json!({})).await;
    assert_eq!((forged.status, forged.code()), (403, "csrf"));
    // Still signed in: the refused requests changed nothing.
    browser.csrf = token;
    assert_eq!(browser.get("/api/me").await.status, 200);

    // A cross-site page cannot sign someone in (login CSRF) or post with their cookie.
    let client = app.http();
    for (header, value) in [
        ("origin", "http://evil.example"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let reply = client
            .post(format!("{}/api/auth/login", app.url))
            .header(header, value)
            .json(&json!({ "username": "kim", "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 403, "{header}");
        let reply = client
            .post(format!("{}/api/auth/logout", app.url))
            .header(header, value)
            .header("cookie", browser.cookie.clone().unwrap())
            .header("x-csrf-token", browser.csrf.clone().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 403, "{header}");
    }
    assert_eq!(browser.get("/api/me").await.status, 200);
    // With the token, sign-out works and the cookie is cleared.
    let out = browser.post("/api/auth/logout", json!({})).await;
    assert_eq!(out.status, 200);
    assert!(
        out.headers["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
}

async fn expired_replayed_and_forged_cookies_are_refused(backend: Backend) {
    let app = TestApp::start(backend).await;
    let user = app.user("kim", &[]).await;

    // Forged: a well-formed random token and junk.
    for forged in [
        format!("readroom_session={}", auth::tokens::random_token()),
        "readroom_session=x".into(),
    ] {
        let mut browser = Browser::new(&app);
        browser.cookie = Some(forged);
        let reply = browser.get("/api/me").await;
        assert_eq!((reply.status, reply.code()), (401, "unauthenticated"));
    }

    // Replayed after sign-out.
    let mut browser = app.sign_in(&user).await;
    let cookie = browser.cookie.clone();
    assert_eq!(
        browser.post("/api/auth/logout", json!({})).await.status,
        200
    );
    let mut replay = Browser::new(&app);
    replay.cookie = cookie;
    assert_eq!(replay.get("/api/me").await.status, 401);

    // Idle timeout: no request for longer than 30 minutes.
    let browser = app.sign_in(&user).await;
    let token = browser.cookie.clone().unwrap();
    let token = token.split('=').nth(1).unwrap().to_owned();
    let session = app
        .db()
        .session_by_token_hash(&auth::tokens::hash_token(&token))
        .await
        .unwrap();
    app.db()
        .touch_session(session.id, auth::now_unix() - 31 * 60)
        .await
        .unwrap();
    let mut idle = Browser::new(&app);
    idle.cookie = browser.cookie.clone();
    let reply = idle.get("/api/me").await;
    assert_eq!((reply.status, reply.code()), (401, "session_expired"));
    // And it is gone, not just refused once.
    assert_eq!(idle.get("/api/me").await.code(), "unauthenticated");

    // Absolute timeout: a session stays usable at most 12 hours even when active.
    let app = TestApp::start_with(backend, |config| config.auth.session_absolute_hours = 1).await;
    let user = app.user("kim", &[]).await;
    let mut browser = app.sign_in(&user).await;
    let me = browser.get("/api/me").await;
    let expires = time::OffsetDateTime::parse(
        me.body["session"]["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let in_an_hour = auth::now_unix() + 3600;
    assert!((expires.unix_timestamp() - in_an_hour).abs() <= 5);
}

async fn one_time_links_work_once(backend: Backend) {
    let app = TestApp::start(backend).await;
    let user = app.user("kim", &[]).await;
    let link = app.link(&user).await;
    assert!(
        link.starts_with(&format!("{}/signin#token=", app.url)),
        "{link}"
    );
    let token = link.split("#token=").nth(1).unwrap();
    let mut first = Browser::new(&app);
    let reply = first
        .post("/api/auth/link", json!({ "token": token }))
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["user"]["password_set"], false);
    let mut second = Browser::new(&app);
    let again = second
        .post("/api/auth/link", json!({ "token": token }))
        .await;
    assert_eq!((again.status, again.code()), (401, "invalid_link"));
    // A first password is set without a current one; afterwards the current one is required.
    let set = first
        .post("/api/auth/password", json!({ "new_password": PASSWORD }))
        .await;
    assert_eq!(set.status, 204, "{}", set.body);
    let change = first
        .post(
            "/api/auth/password",
            json!({ "new_password": "another long passphrase" }),
        )
        .await;
    assert_eq!(change.status, 400);
    let short = first
        .post(
            "/api/auth/password",
            json!({ "current_password": PASSWORD, "new_password": "short" }),
        )
        .await;
    assert_eq!(short.status, 400);
    assert!(
        short.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("12")
    );
}

async fn sign_out_everywhere_and_disabling_end_every_session(backend: Backend) {
    let app = TestApp::start(backend).await;
    let user = app.user("kim", &[]).await;
    let admin = app.user("root", &[(Role::Admin, None)]).await;
    let mut laptop = app.sign_in(&user).await;
    let mut tablet = app.sign_in(&user).await;
    let reply = laptop.post("/api/auth/logout-all", json!({})).await;
    assert_eq!(reply.body["ended"], 2);
    assert_eq!(tablet.get("/api/me").await.status, 401);
    assert_eq!(laptop.get("/api/me").await.status, 401);

    let mut kim = app.sign_in(&user).await;
    let mut root = app.sign_in(&admin).await;
    let disable = root
        .send(
            "PATCH",
            &format!("/api/admin/users/{}", user.id),
            Some(json!({ "disabled": true })),
        )
        .await;
    assert_eq!(disable.status, 200, "{}", disable.body);
    assert_eq!(kim.get("/api/me").await.status, 401);
    let link = app.link(&user).await;
    let token = link.split("#token=").nth(1).unwrap();
    let mut again = Browser::new(&app);
    assert_eq!(
        again
            .post("/api/auth/link", json!({ "token": token }))
            .await
            .status,
        401
    );
    // Admins cannot lock themselves out.
    let own = root
        .send(
            "PATCH",
            &format!("/api/admin/users/{}", admin.id),
            Some(json!({ "disabled": true })),
        )
        .await;
    assert_eq!(own.status, 400);
}

async fn totp_is_required_once_enabled_and_codes_work_once(backend: Backend) {
    let app = TestApp::start(backend).await;
    let user = app.user("kim", &[]).await;
    app.set_password(&user, PASSWORD).await;
    let mut browser = app.sign_in(&user).await;
    let setup = browser.post("/api/auth/totp/setup", json!({})).await;
    assert_eq!(setup.status, 200);
    let secret = setup.body["secret"].as_str().unwrap().to_owned();
    assert!(
        setup.body["otpauth_url"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/readroom:kim")
    );
    let now = u64::try_from(auth::now_unix()).unwrap();
    let wrong = browser
        .post(
            "/api/auth/totp/enable",
            json!({ "code": "000000", "current_password": PASSWORD }),
        )
        .await;
    assert_eq!(wrong.status, 400);
    let enable_code = auth::totp::code_at(&secret, now - 30).unwrap();
    let enabled = browser
        .post(
            "/api/auth/totp/enable",
            json!({ "code": enable_code, "current_password": PASSWORD }),
        )
        .await;
    assert_eq!(enabled.status, 204, "{}", enabled.body);

    let mut other = Browser::new(&app);
    let needs = other
        .post(
            "/api/auth/login",
            json!({ "username": "kim", "password": PASSWORD }),
        )
        .await;
    assert_eq!((needs.status, needs.code()), (401, "totp_required"));
    // The code that confirmed set-up cannot be replayed.
    let replay = other
        .post(
            "/api/auth/login",
            json!({ "username": "kim", "password": PASSWORD, "totp": enable_code }),
        )
        .await;
    assert_eq!((replay.status, replay.code()), (401, "invalid_totp"));
    let code = auth::totp::code_at(&secret, now).unwrap();
    let ok = other
        .post(
            "/api/auth/login",
            json!({ "username": "kim", "password": PASSWORD, "totp": code }),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let again = Browser::new(&app)
        .post(
            "/api/auth/login",
            json!({ "username": "kim", "password": PASSWORD, "totp": code }),
        )
        .await;
    assert_eq!(again.code(), "invalid_totp");
}

/// The invisible watermark carries the viewer session id, so a grader who could choose it could
/// mark their frames with another grader's id. The server issues every id, and refuses one it did
/// not issue to the same user and sign-in: another grader's (for their own, assigned case), a
/// made-up one, and the grader's own from an earlier sign-in. Each refusal is audited.
async fn viewer_sessions_are_issued_not_chosen(
    app: &TestApp,
    study: uuid::Uuid,
    kims_viewer: &str,
) {
    let lee = app.user("lee", &[(Role::Grader, Some(study))]).await;
    let lees_case = app.case(study, "S9").await;
    app.assign(&lees_case, &lee, AssignmentRole::Grader).await;
    let mut lee_browser = app.sign_in(&lee).await;
    let path = format!("/api/cases/{}/ticket", lees_case.id);
    let own = lee_browser.post(&path, json!({})).await;
    assert_eq!(own.status, 200, "{}", own.body);
    assert_ne!(own.body["viewer_session"], kims_viewer);
    let made_up = uuid::Uuid::new_v4().to_string();
    for (what, viewer) in [("another grader's", kims_viewer), ("a made-up", &made_up)] {
        let refused = lee_browser
            .post(&path, json!({ "viewer_session": viewer }))
            .await;
        assert_eq!(
            refused.status, 403,
            "{what} viewer session: {}",
            refused.body
        );
        assert_eq!(refused.code(), "viewer_session");
        assert!(refused.body.get("ticket").is_none());
        let stream = lee_browser
            .post(
                &format!("/api/cases/{}/stream", lees_case.id),
                json!({ "offer": { "type": "offer", "sdp": "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n" },
                        "viewport": { "width": 640, "height": 480, "dpr": 1.0 },
                        "viewer_session": viewer }),
            )
            .await;
        assert_eq!(
            stream.status, 403,
            "{what} viewer session on /stream: {}",
            stream.body
        );
    }
    // Lee's own id, from another sign-in (another browser): refused too.
    let earlier = own.body["viewer_session"].as_str().unwrap().to_owned();
    let mut again = app.sign_in(&lee).await;
    let stale = again
        .post(&path, json!({ "viewer_session": earlier }))
        .await;
    assert_eq!(stale.status, 403, "{}", stale.body);
    let denials = app
        .db()
        .audit_page(0, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|row| {
            row.action == "case.denied" && row.details.contains("viewer_session_not_issued")
        })
        .count();
    assert_eq!(denials, 5, "each refusal is audited");
}

async fn tickets_bind_user_case_and_expiry(backend: Backend) {
    let app = TestApp::start(backend).await;
    let study = app.study("T").await;
    let case = app.case(study, "S1").await;
    let other_case = app.case(study, "S2").await;
    let grader = app.user("kim", &[(Role::Grader, Some(study))]).await;
    app.assign(&case, &grader, AssignmentRole::Grader).await;
    let mut browser = app.sign_in(&grader).await;
    let reply = browser
        .post(&format!("/api/cases/{}/ticket", case.id), json!({}))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let ticket = reply.body["ticket"].as_str().unwrap();
    // Sealed to the study's workers: the browser that carries it reads nothing of it.
    assert!(ticket.starts_with("rt2."), "{ticket}");
    assert!(!ticket.contains(&case.id.to_string()));
    let verifier = app.state.auth.tickets.verifier();
    assert!(verifier.verify(ticket, auth::now_unix()).is_err());
    let signed = app.open_ticket(ticket);
    let claims = verifier.verify(&signed, auth::now_unix()).unwrap();
    assert_eq!(claims.user, grader.id.to_string());
    assert_eq!(claims.case, case.id.to_string());
    assert_eq!(
        claims.session,
        reply.body["viewer_session"].as_str().unwrap()
    );
    assert!(claims.expires - auth::now_unix() <= 60);
    assert_eq!(
        verifier.verify(&signed, claims.expires),
        Err(TicketError::Expired)
    );
    // The worker admits the ticket once, with the server's public key and its own identity,
    // and keeps every request within the ticket's case. Without the identity it cannot.
    let mut keyless = readroom_worker::admission::TicketGate::new(verifier.clone());
    assert_eq!(
        keyless
            .admit(ticket, auth::now_unix())
            .unwrap_err()
            .to_string(),
        "malformed ticket: sealed ticket does not open with this worker's identities"
    );
    let mut gate = app.ticket_gate();
    let admission = gate
        .admit(ticket, auth::now_unix())
        .expect("worker admits the ticket");
    assert_eq!(admission.check_case(&case.id.to_string()), Ok(()));
    assert!(admission.check_case(&other_case.id.to_string()).is_err());
    assert_eq!(
        gate.admit(ticket, auth::now_unix()),
        Err(readroom_worker::admission::AdmissionError::Replayed)
    );
    // The same viewer session can be carried to the next case.
    let next = browser
        .post(
            &format!("/api/cases/{}/ticket", case.id),
            json!({ "viewer_session": claims.session }),
        )
        .await;
    assert_eq!(next.body["viewer_session"], claims.session.as_str());
    assert_eq!(
        app.db()
            .viewer_session_owner(claims.session.parse().unwrap())
            .await
            .unwrap(),
        Some(grader.id),
        "the server issued the id and knows whose it is"
    );
    viewer_sessions_are_issued_not_chosen(&app, study, &claims.session).await;
    // Another grader's case: not found, and no ticket.
    let denied = browser
        .post(&format!("/api/cases/{}/ticket", other_case.id), json!({}))
        .await;
    assert_eq!(denied.status, 404);
    assert!(denied.body.get("ticket").is_none());
    // Revoking the grader role ends access even though the assignment remains.
    let grants = app.db().roles_of(grader.id).await.unwrap();
    app.db()
        .revoke_grant(grader.id, grants[0].id)
        .await
        .unwrap();
    let revoked = browser
        .post(&format!("/api/cases/{}/ticket", case.id), json!({}))
        .await;
    assert_eq!(revoked.status, 404);
    assert_eq!(browser.get("/api/worklist").await.body, json!([]));
}

async fn security_headers_are_on_every_answer(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = app.http();
    for path in ["/", "/signin", "/api/me", "/api/openapi.json", "/nope"] {
        let reply = client
            .get(format!("{}{path}", app.url))
            .send()
            .await
            .unwrap();
        let headers = reply.headers();
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
            "{path}"
        );
        assert!(!csp.contains("unsafe-inline"));
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["referrer-policy"], "no-referrer");
    }
}

/// Every `/api/` answer, whatever its status, is `Cache-Control: no-store` (finding 7).
async fn api_answers_are_never_cached(backend: Backend) {
    let app = TestApp::start(backend).await;
    let user = app.user("kim", &[]).await;
    let mut browser = app.sign_in(&user).await;
    let mut anonymous = Browser::new(&app);
    let replies = [
        browser.get("/api/me").await,
        browser.get("/api/worklist").await,
        anonymous.get("/api/me").await,
        anonymous.get("/api/openapi.json").await,
        anonymous.get("/api/no/such/route").await,
        anonymous
            .post(
                "/api/auth/login",
                json!({ "username": "kim", "password": "wrong wrong wrong" }),
            )
            .await,
        anonymous.get("/api/auth/oidc/none/start").await,
    ];
    for reply in &replies {
        assert_eq!(
            reply
                .headers
                .get("cache-control")
                .map(|v| v.to_str().unwrap()),
            Some("no-store"),
            "{} {}",
            reply.status,
            reply.body
        );
    }
    // The viewer's shell may be cached as before: the header is for the API.
    let page = app
        .http()
        .get(format!("{}/signin", app.url))
        .send()
        .await
        .unwrap();
    assert_ne!(
        page.headers()
            .get("cache-control")
            .map(|v| v.to_str().unwrap()),
        Some("no-store")
    );
}

/// The JSON a page carries in `<script type="application/json" id="{id}">`, if any.
fn embedded_json(page: &str, id: &str) -> Option<serde_json::Value> {
    let open = format!("<script type=\"application/json\" id=\"{id}\">");
    let rest = &page[page.find(&open)? + open.len()..];
    let json = &rest[..rest.find("</script>").expect("the element is closed")];
    Some(serde_json::from_str(json).expect("the element holds JSON"))
}

/// A signed-in page load carries who is signed in (and a case page its ICE settings) so that the
/// viewer's first render waits on no API round trip; such a page is never stored, and a page
/// without a valid session carries nothing.
async fn the_entry_page_carries_the_signed_in_user_only_for_them(backend: Backend) {
    let app = TestApp::start(backend).await;
    let user = app.user("kim", &[(Role::Grader, None)]).await;
    let mut browser = app.sign_in(&user).await;
    let me = browser.get("/api/me").await.body;
    let page = browser.get("/cases/6f1c-AB12").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.headers["cache-control"], "no-store");
    let html = page.body.as_str().expect("an HTML page");
    let embedded = embedded_json(html, "readroom-me").expect("the signed-in user in the page");
    assert_eq!(embedded["id"], me["id"]);
    assert_eq!(embedded["username"], "kim");
    assert_eq!(embedded["roles"], me["roles"]);
    assert_eq!(embedded["csrf_token"], me["csrf_token"]);
    let config = embedded_json(html, "readroom-stream-config").expect("the ICE settings");
    assert_eq!(config, browser.get("/api/stream/config").await.body);
    assert!(
        html.contains("<link rel=\"preload\" href=\"/api/cases/6f1c-AB12\""),
        "{html}"
    );
    // Other pages carry the user, not the stream settings.
    let worklist = browser.get("/").await;
    let html = worklist.body.as_str().unwrap();
    assert!(embedded_json(html, "readroom-me").is_some());
    assert!(embedded_json(html, "readroom-stream-config").is_none());
    // Signed out, a forged cookie, or a session that has ended: nothing in the page, and the
    // shell may be cached again.
    let stale = browser.cookie.clone();
    browser.post("/api/auth/logout", json!({})).await;
    let mut anonymous = Browser::new(&app);
    let mut forged = Browser::new(&app);
    forged.cookie = Some("readroom_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into());
    let mut ended = Browser::new(&app);
    ended.cookie = stale;
    for visitor in [&mut anonymous, &mut forged, &mut ended] {
        let page = visitor.get("/cases/6f1c-AB12").await;
        assert_eq!(page.status, 200);
        assert_eq!(page.headers["cache-control"], "no-cache");
        let html = page.body.as_str().unwrap();
        assert!(
            !html.contains("readroom-me") && !html.contains("readroom-stream-config"),
            "{html}"
        );
    }
}

/// Opens `POST path` over a raw connection announcing a 100-byte JSON body and sends one byte
/// of it (a slowloris client): the server waits for the rest.
async fn stall_post(address: &str, path: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

/// Polls `GET path` until `done` holds of the reply (or 10 s pass); returns the last reply.
async fn poll_until(
    browser: &mut Browser,
    path: &str,
    done: impl Fn(&support::Reply) -> bool,
) -> support::Reply {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let reply = browser.get(path).await;
        if done(&reply) || std::time::Instant::now() > deadline {
            return reply;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// When as many requests are being answered as the server takes at once (here: two signed-in
/// users' writes stuck behind a database that another process holds locked), every further
/// request is refused with 503 and `Retry-After` after waiting at most a second for a place, not
/// queued until it times out; health checks still answer, and the server serves again by itself
/// once the database frees up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overloaded_server_sheds_load_and_recovers() {
    use sqlx::Connection;
    let app = TestApp::start_with(Backend::Sqlite, |config| config.max_in_flight = 2).await;
    let user = app.user("kim", &[]).await;
    let mut writers = vec![app.sign_in(&user).await, app.sign_in(&user).await];
    // Another process holds the database's write lock: the users' writes wait for it.
    let mut locker = sqlx::SqliteConnection::connect(&app.state.config.database_url())
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut locker)
        .await
        .unwrap();
    let held: Vec<_> = writers
        .drain(..)
        .map(|mut writer| {
            tokio::spawn(async move { writer.post("/api/auth/totp/setup", json!({})).await })
        })
        .collect();
    let mut browser = Browser::new(&app);
    let asked = std::time::Instant::now();
    let refused = poll_until(&mut browser, "/api/me", |reply| reply.status == 503).await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    // Refused after the bounded wait for a place, long before the request timeout.
    assert!(
        asked.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(refused.headers["retry-after"], "1");
    assert_eq!(refused.body["error"]["code"], "overloaded");
    assert_eq!(browser.get("/healthz").await.status, 200);
    assert_eq!(browser.get("/").await.status, 503);
    sqlx::query("COMMIT").execute(&mut locker).await.unwrap();
    let served = poll_until(&mut browser, "/api/me", |reply| reply.status != 503).await;
    assert_eq!(served.status, 401, "{}", served.body);
    assert_eq!(browser.get("/").await.status, 200);
    // The writes that held the places went through once the database was free.
    for writer in held {
        let reply = writer.await.unwrap();
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
}

/// Clients that open requests and send their bodies slowly or never (slowloris; no account
/// needed) hold no place of the requests being answered: with more of them than the server
/// answers at once, a signed-in grader's reads and writes are still served, and each stalled
/// body is ended with 408 `body_timeout` after the body deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_do_not_hold_the_answering_budget() {
    use tokio::io::AsyncReadExt;
    let app = TestApp::start_with(Backend::Sqlite, |config| config.max_in_flight = 4).await;
    let user = app.user("kim", &[]).await;
    let mut grader = app.sign_in(&user).await;
    let address = app.url.trim_start_matches("http://").to_owned();
    let started = std::time::Instant::now();
    let mut stalled = Vec::new();
    for _ in 0..3 {
        stalled.push(stall_post(&address, "/api/auth/login").await);
    }
    // Three of four body places are taken; the answering budget is untouched.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    for _ in 0..20 {
        let me = grader.get("/api/me").await;
        assert_eq!(me.status, 200, "{}", me.body);
    }
    let changed = grader.post("/api/auth/totp/setup", json!({})).await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    // One more stalled body fills the body budget: a new body is refused, reads still served.
    let fourth = stall_post(&address, "/api/auth/login").await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let refused = grader.post("/api/auth/totp/setup", json!({})).await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert_eq!(refused.body["error"]["code"], "overloaded");
    assert_eq!(grader.get("/api/me").await.status, 200);
    // Each stalled body is ended after the deadline.
    let mut answer = vec![0; 1024];
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        stalled[0].read(&mut answer),
    )
    .await
    .expect("a stalled body is answered within the deadline")
    .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("body_timeout"), "{answer}");
    assert!(started.elapsed() >= readroom_server::http::BODY_DEADLINE);
    drop(fourth);
    drop(stalled);
    // Once they are gone, bodies are taken again.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let served = loop {
        let reply = grader.post("/api/auth/totp/setup", json!({})).await;
        if reply.status != 503 || std::time::Instant::now() > deadline {
            break reply;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(served.status, 200, "{}", served.body);
}

/// `/metrics` is not public: 404 without a configured token, 401 without the right one.
async fn metrics_need_the_bearer_token(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = app.http();
    let url = format!("{}/metrics", app.url);
    assert_eq!(client.get(&url).send().await.unwrap().status(), 404);
    let token = "a-metrics-token-for-tests";
    let app = TestApp::start_with(backend, |config| config.metrics_token = token.into()).await;
    let url = format!("{}/metrics", app.url);
    for auth in [
        None,
        Some("Bearer nope"),
        Some("Basic a-metrics-token-for-tests"),
    ] {
        let mut request = client.get(&url);
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let reply = request.send().await.unwrap();
        assert_eq!(reply.status(), 401, "{auth:?}");
        assert!(reply.headers().contains_key("www-authenticate"));
    }
    let reply = client.get(&url).bearer_auth(token).send().await.unwrap();
    assert_eq!(reply.status(), 200);
}

/// Turns TOTP on for a signed-in user whose password is [`PASSWORD`]; returns the secret.
async fn enable_totp(browser: &mut Browser) -> String {
    let setup = browser.post("/api/auth/totp/setup", json!({})).await;
    assert_eq!(setup.status, 200, "{}", setup.body);
    let secret = setup.body["secret"].as_str().unwrap().to_owned();
    let now = u64::try_from(auth::now_unix()).unwrap();
    let code = auth::totp::code_at(&secret, now - 30).unwrap();
    let enabled = browser
        .post(
            "/api/auth/totp/enable",
            json!({ "code": code, "current_password": PASSWORD }),
        )
        .await;
    assert_eq!(enabled.status, 204, "{}", enabled.body);
    secret
}

/// A code that is not the current one (nor one step either side).
fn wrong_code(secret: &str) -> String {
    let now = u64::try_from(auth::now_unix()).unwrap();
    let near: Vec<String> = [now - 30, now, now + 30]
        .iter()
        .map(|t| auth::totp::code_at(secret, *t).unwrap())
        .collect();
    (0..10)
        .map(|d| format!("{d}{d}{d}{d}{d}{d}"))
        .find(|code| !near.contains(code))
        .unwrap()
}

/// Finding 3: an admin-issued link is a first factor; an account with TOTP also needs a code,
/// and the link stays unused until the code is right.
async fn one_time_links_need_the_second_factor(backend: Backend) {
    let app = TestApp::start(backend).await;
    let user = app.user("kim", &[]).await;
    let admin = app.user("root", &[(Role::Admin, None)]).await;
    app.set_password(&user, PASSWORD).await;
    let mut kim = app.sign_in(&user).await;
    let secret = enable_totp(&mut kim).await;

    let mut root = app.sign_in(&admin).await;
    let issued = root
        .post(
            &format!("/api/admin/users/{}/signin-link", user.id),
            json!({}),
        )
        .await;
    assert_eq!(issued.status, 200, "{}", issued.body);
    let url = issued.body["signin_url"].as_str().unwrap();
    let token = url.split("#token=").nth(1).unwrap().to_owned();

    let mut thief = Browser::new(&app);
    let needs = thief
        .post("/api/auth/link", json!({ "token": token }))
        .await;
    assert_eq!((needs.status, needs.code()), (401, "totp_required"));
    assert!(thief.cookie.is_none(), "no session without the code");
    let wrong = thief
        .post(
            "/api/auth/link",
            json!({ "token": token, "totp": wrong_code(&secret) }),
        )
        .await;
    assert_eq!((wrong.status, wrong.code()), (401, "invalid_totp"));
    assert!(thief.cookie.is_none());

    // The owner, with the code, signs in with the same (still unused) link.
    let code = auth::totp::code_at(&secret, u64::try_from(auth::now_unix()).unwrap()).unwrap();
    let mut owner = Browser::new(&app);
    let ok = owner
        .post("/api/auth/link", json!({ "token": token, "totp": code }))
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["user"]["username"], "kim");
    assert_eq!(owner.get("/api/me").await.body["auth_method"], "link");
    let again = Browser::new(&app)
        .post("/api/auth/link", json!({ "token": token, "totp": code }))
        .await;
    assert_eq!((again.status, again.code()), (401, "invalid_link"));

    // Wrong codes through links count towards the lockout like password sign-ins.
    let link = app.link(&user).await;
    let token = link.split("#token=").nth(1).unwrap().to_owned();
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let reply = thief
            .post(
                "/api/auth/link",
                json!({ "token": token, "totp": wrong_code(&secret) }),
            )
            .await;
        statuses.push(reply.status);
    }
    assert_eq!(statuses, [401, 401, 401, 401, 429]);
}

/// Finding 3: with `auth.local_accounts = false` links are refused, except the first admin's
/// bootstrap link (the documented break-glass path).
async fn single_sign_on_only_refuses_links_but_the_bootstrap_one(backend: Backend) {
    let app = TestApp::start_with(backend, |config| config.auth.local_accounts = false).await;
    let bootstrap = readroom_server::accounts::bootstrap_admin(&app.state)
        .await
        .unwrap()
        .expect("no admin yet: a bootstrap link");
    let token = bootstrap.split("#token=").nth(1).unwrap().to_owned();
    let mut admin = Browser::new(&app);
    let reply = admin
        .post("/api/auth/link", json!({ "token": token }))
        .await;
    assert_eq!(reply.status, 200, "break-glass link: {}", reply.body);
    assert_eq!(reply.body["user"]["username"], "admin");

    // Admins cannot mint links in this mode…
    let user = app.user("kim", &[]).await;
    let refused = admin
        .post(
            &format!("/api/admin/users/{}/signin-link", user.id),
            json!({}),
        )
        .await;
    assert_eq!(
        (refused.status, refused.code()),
        (403, "local_accounts_disabled")
    );
    // …and a link minted anyway (CLI, or before the switch) does not sign anyone in.
    for who in [&user, &app.db().user_by_username("admin").await.unwrap()] {
        let link = app.link(who).await;
        let token = link.split("#token=").nth(1).unwrap().to_owned();
        let mut browser = Browser::new(&app);
        let reply = browser
            .post("/api/auth/link", json!({ "token": token }))
            .await;
        assert_eq!(
            (reply.status, reply.code()),
            (403, "local_accounts_disabled"),
            "{}",
            reply.body
        );
        assert!(browser.cookie.is_none());
    }
}

/// Finding 7: a password change ends the user's other sessions (not the one making it).
async fn a_password_change_ends_the_other_sessions(backend: Backend) {
    let app = TestApp::start(backend).await;
    let user = app.user("kim", &[]).await;
    app.set_password(&user, PASSWORD).await;
    let mut laptop = app.sign_in(&user).await;
    let mut stolen = app.sign_in(&user).await;
    let changed = laptop
        .post(
            "/api/auth/password",
            json!({ "current_password": PASSWORD, "new_password": "another long passphrase" }),
        )
        .await;
    assert_eq!(changed.status, 204, "{}", changed.body);
    assert_eq!(stolen.get("/api/me").await.status, 401);
    assert_eq!(laptop.get("/api/me").await.status, 200);
    let rows = app.db().search_audit(&Default::default(), 1).await.unwrap();
    assert_eq!(rows[0].action, "auth.password_changed");
    assert!(
        rows[0].details.contains("\"sessions_ended\":1"),
        "{}",
        rows[0].details
    );
}

/// Finding 7: turning TOTP on or off needs the current password, and guessing it through a
/// session hits the lockout.
async fn totp_changes_need_the_current_password(backend: Backend) {
    let app = TestApp::start(backend).await;
    let user = app.user("kim", &[]).await;
    app.set_password(&user, PASSWORD).await;
    let mut kim = app.sign_in(&user).await;
    let setup = kim.post("/api/auth/totp/setup", json!({})).await;
    let secret = setup.body["secret"].as_str().unwrap().to_owned();
    let now = u64::try_from(auth::now_unix()).unwrap();
    let code = auth::totp::code_at(&secret, now).unwrap();
    for body in [
        json!({ "code": code }),
        json!({ "code": code, "current_password": "not the password" }),
    ] {
        let reply = kim.post("/api/auth/totp/enable", body).await;
        assert_eq!(reply.status, 400, "{}", reply.body);
    }
    assert_eq!(kim.get("/api/me").await.body["totp_enabled"], false);
    let enabled = kim
        .post(
            "/api/auth/totp/enable",
            json!({ "code": code, "current_password": PASSWORD }),
        )
        .await;
    assert_eq!(enabled.status, 204, "{}", enabled.body);
    let next = auth::totp::code_at(&secret, now + 30).unwrap();
    let disable = kim
        .post("/api/auth/totp/disable", json!({ "code": next }))
        .await;
    assert_eq!(disable.status, 400, "{}", disable.body);
    assert_eq!(kim.get("/api/me").await.body["totp_enabled"], true);
    // A stolen session guessing the password: the account locks (1 wrong above, 4 more).
    let mut statuses = Vec::new();
    for n in 0..4 {
        let reply = kim
            .post(
                "/api/auth/totp/disable",
                json!({ "code": next, "current_password": format!("guess {n} guess") }),
            )
            .await;
        statuses.push((reply.status, reply.code().to_owned()));
    }
    assert_eq!(statuses[3], (429, "locked".to_owned()), "{statuses:?}");

    // An account without a password cannot turn TOTP on.
    let lee = app.user("lee", &[]).await;
    let mut lee = app.sign_in(&lee).await;
    let setup = lee.post("/api/auth/totp/setup", json!({})).await;
    let secret = setup.body["secret"].as_str().unwrap().to_owned();
    let code = auth::totp::code_at(&secret, now).unwrap();
    let reply = lee
        .post("/api/auth/totp/enable", json!({ "code": code }))
        .await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("set a password first")
    );
}

/// Finding 7: unknown usernames lock like real ones, so the lockout does not tell them apart.
async fn lockout_does_not_reveal_which_accounts_exist(backend: Backend) {
    let app = TestApp::start(backend).await;
    let user = app.user("kim", &[]).await;
    app.set_password(&user, PASSWORD).await;
    let disabled = app.user("old", &[]).await;
    app.set_password(&disabled, PASSWORD).await;
    app.db().set_user_disabled(disabled.id, true).await.unwrap();
    let mut attacker = Browser::new(&app);
    let mut seen = Vec::new();
    for name in ["kim", "nobody", "old"] {
        let mut answers = Vec::new();
        for attempt in 0..7 {
            let reply = attacker
                .post(
                    "/api/auth/login",
                    json!({ "username": name, "password": format!("guess number {attempt}") }),
                )
                .await;
            let retry = reply
                .headers
                .get("retry-after")
                .map(|v| v.to_str().unwrap().parse::<i64>().unwrap() > 0);
            answers.push((reply.status, reply.code().to_owned(), retry));
        }
        seen.push(answers);
    }
    assert_eq!(seen[0][4], (429, "locked".to_owned(), Some(true)));
    assert_eq!(seen[0], seen[1], "unknown name");
    assert_eq!(seen[0], seen[2], "disabled account");
}

/// Finding 7: the data directory is 0700, the SQLite database and its WAL 0600.
async fn data_files_are_private(backend: Backend) {
    use std::os::unix::fs::PermissionsExt;
    if backend != Backend::Sqlite {
        return;
    }
    let app = TestApp::start(backend).await;
    let user = app.user("kim", &[]).await;
    app.sign_in(&user).await;
    let data = app.state.config.data_dir.clone();
    let mode = |path: &std::path::Path| {
        std::fs::metadata(path)
            .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("keys")), 0o700);
    for file in [
        "readroom.db",
        "readroom.db-wal",
        "readroom.db-shm",
        "keys/ticket.key",
    ] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
}

crate::on_both_backends!(
    password_sign_in_sets_a_strict_http_only_cookie,
    sign_in_rotates_the_session,
    wrong_passwords_and_unknown_users_look_the_same,
    brute_force_hits_the_lockout,
    one_address_is_throttled,
    csrf_and_cross_site_requests_are_refused,
    expired_replayed_and_forged_cookies_are_refused,
    one_time_links_work_once,
    sign_out_everywhere_and_disabling_end_every_session,
    totp_is_required_once_enabled_and_codes_work_once,
    tickets_bind_user_case_and_expiry,
    security_headers_are_on_every_answer,
    api_answers_are_never_cached,
    the_entry_page_carries_the_signed_in_user_only_for_them,
    metrics_need_the_bearer_token,
    one_time_links_need_the_second_factor,
    single_sign_on_only_refuses_links_but_the_bootstrap_one,
    a_password_change_ends_the_other_sessions,
    totp_changes_need_the_current_password,
    lockout_does_not_reveal_which_accounts_exist,
    data_files_are_private,
);
