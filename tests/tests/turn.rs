//! Graders behind firewalls that allow only outbound TCP: the stream goes through a TURN relay
//! (Debian's coturn on loopback, REST API shared secret). The server hands out short-lived
//! credentials and `iceTransportPolicy: "relay"` through `GET /api/stream/config`; Chromium
//! reaches the relay over TCP only, streams a case, changes the view and grades it; the relay
//! itself refuses forged and expired credentials.

use crate::support;

use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use readroom_domain::stream_config::{IceTransportPolicy, TurnConfig};
use readroom_server::db::{AssignmentRole, Backend, Role};
use readroom_tests::browser;
use readroom_tests::coturn::Coturn;
use serde_json::{Value, json};
use support::{Browser, TestApp};

/// Credentials minted for this long.
const TTL_SECS: u64 = 600;

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// base64(HMAC-SHA1(secret, username)), as coturn computes it.
fn credential(secret: &str, username: &str) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// A demo server whose browsers must relay through `relay`, reached over TCP only.
async fn relayed_app(relay: &Coturn) -> TestApp {
    let urls = vec![relay.tcp_url()];
    let secret_file = relay.secret_file().to_path_buf();
    TestApp::start_demo_with(Backend::Sqlite, move |config| {
        config.stream.turn = TurnConfig {
            urls,
            shared_secret_file: secret_file,
            ttl_secs: TTL_SECS,
        };
        config.stream.ice_transport_policy = IceTransportPolicy::Relay;
    })
    .await
}

/// The TURN entry of a `GET /api/stream/config` answer (the one with a username).
fn turn_entry(config: &Value) -> Option<&Value> {
    config["ice_servers"]
        .as_array()?
        .iter()
        .find(|server| server.get("username").is_some())
}

/// Who gets credentials: graders (and adjudicators) only, fresh, bound to their user id and
/// verifiable with the shared secret; nobody signed out; no caching.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turn_credentials_are_short_lived_and_only_for_streamers() {
    let relay = Coturn::start().expect("coturn (scripts/setup installs it)");
    let app = relayed_app(&relay).await;
    let study = app.demo_study().await;
    let grader = app
        .user("grader.turn", &[(Role::Grader, Some(study.id))])
        .await;
    let coordinator = app
        .user("coord.turn", &[(Role::Coordinator, Some(study.id))])
        .await;

    let signed_out = Browser::new(&app).get("/api/stream/config").await;
    assert_eq!(signed_out.status, 401, "{}", signed_out.body);
    assert!(!signed_out.body.to_string().contains(&relay.tcp_url()));

    let mut browser = app.sign_in(&grader).await;
    let before = now_unix();
    let reply = browser.get("/api/stream/config").await;
    let after = now_unix();
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.headers.get("cache-control").unwrap(),
        "no-store",
        "credentials must not be cached"
    );
    assert_eq!(reply.body["ice_transport_policy"], "relay");
    assert_eq!(reply.body["credentials_expire_in_secs"], TTL_SECS);
    let turn = turn_entry(&reply.body).expect("a TURN server with credentials");
    assert_eq!(turn["urls"], json!([relay.tcp_url()]));
    let username = turn["username"].as_str().unwrap();
    let (expiry, user) = username.split_once(':').expect("<expiry>:<user id>");
    let expiry: u64 = expiry.parse().expect("unix time");
    assert!(
        (before + TTL_SECS..=after + TTL_SECS).contains(&expiry),
        "expiry {expiry} is now + ttl ({before}..{after} + {TTL_SECS})"
    );
    assert_eq!(user, grader.id.to_string());
    let given = turn["credential"].as_str().unwrap();
    assert_eq!(given, credential(&relay.secret, username));
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(relay.secret.as_bytes()).unwrap();
    mac.update(username.as_bytes());
    mac.verify_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(given)
            .unwrap(),
    )
    .expect("the credential is HMAC-SHA1(secret, username)");
    assert!(
        !reply.body.to_string().contains(&relay.secret),
        "the secret itself is never handed out"
    );

    // A user who may not stream gets the policy but no credentials for the relay.
    let mut coordinator_browser = app.sign_in(&coordinator).await;
    let reply = coordinator_browser.get("/api/stream/config").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(turn_entry(&reply.body).is_none(), "{}", reply.body);
    assert!(reply.body.get("credentials_expire_in_secs").is_none());
}

/// A grader on a relay-only network streams, changes the view and grades a case through coturn
/// over TCP; coturn refuses credentials that are forged or expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_only_grader_streams_and_grades_through_coturn() {
    browser::check_prerequisites().expect("Chromium and playwright-core (scripts/setup)");
    let relay = Coturn::start().expect("coturn (scripts/setup installs it)");
    let app = relayed_app(&relay).await;
    let study = app.demo_study().await;
    let grader = app
        .user("grader.relay", &[(Role::Grader, Some(study.id))])
        .await;
    let case = app
        .db()
        .list_cases(study.id)
        .await
        .unwrap()
        .into_iter()
        .next()
        .expect("a demo case")
        .case;
    app.assign(&case, &grader, AssignmentRole::Grader).await;
    // The demo study's form (a coordinator would set it): the grade below follows it.
    let form = readroom_domain::grading::preset("demo").unwrap();
    app.db()
        .set_form(study.id, &form.to_json(), &form.fingerprint(), None)
        .await
        .unwrap();
    let link = app.link(&grader).await;

    let expired = format!("{}:{}", now_unix() - 60, grader.id);
    let fresh = format!("{}:{}", now_unix() + TTL_SECS, grader.id);
    let refused = json!([
        {
            "label": "expired",
            "urls": [relay.tcp_url()],
            "credential": credential(&relay.secret, &expired),
            "username": expired,
        },
        {
            "label": "forged",
            "urls": [relay.tcp_url()],
            "credential": credential("not-the-relay-secret-0123456789", &fresh),
            "username": fresh,
        },
    ]);
    let values = json!({
        "gradable": { "OD": "gradable", "OS": "gradable" },
        "dr_grade": { "OD": 2, "OS": 0 },
        "dme": { "OD": "none", "OS": "none" },
        "areds_category": { "OD": 1, "OS": 1 },
        "vcdr": { "OD": 0.3, "OS": 0.4 },
    });
    let result = browser::run_script_async(
        "turn.mjs",
        json!({
            "base_url": app.url,
            "link_url": link,
            "case_id": case.id.to_string(),
            "values": values,
            "refused": refused,
        }),
        Duration::from_secs(150),
    )
    .await
    .unwrap_or_else(|err| {
        panic!(
            "turn.mjs failed: {err:#}\ncoturn:\n{}",
            relay.recent_output()
        )
    });
    eprintln!("turn.mjs: {result}");

    assert_eq!(
        result["config"]["ice_transport_policy"], "relay",
        "{result}"
    );
    assert_eq!(
        result["selected"]["local_candidate_type"], "relay",
        "the browser's end of the media path is the relay: {result}"
    );
    assert_eq!(
        result["selected"]["relay_protocol"], "tcp",
        "the browser reaches the relay over TCP: {result}"
    );
    assert_eq!(result["selected_after_view_change"], "relay", "{result}");
    assert!(result["frames_decoded"].as_u64().unwrap() > 0, "{result}");
    assert_eq!(result["grade"]["ok"], true, "{result}");
    assert_eq!(result["phase"], "streaming", "{result}");
    for label in ["expired", "forged"] {
        let outcome = result["refused"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["label"] == label)
            .unwrap();
        assert_eq!(
            outcome["candidates"],
            json!([]),
            "{label} credentials must get no relay: {result}"
        );
        assert!(
            outcome["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["code"] == 401),
            "coturn answers {label} credentials with 401: {result}"
        );
    }
    assert_eq!(result["page_errors"], json!([]), "{result}");
    assert_eq!(result["console_errors"], json!([]), "{result}");
    assert_eq!(result["http_errors"], json!([]), "{result}");

    // The relay saw the allocation of the credential minted for this grader.
    let log = relay.recent_output();
    assert!(
        log.contains(&grader.id.to_string()),
        "coturn logged no session of the grader:\n{log}"
    );
}
