//! The audit log against the real server and both databases: every audited action appends
//! exactly one event with the right fields; concurrent writers keep one chain; tampering with
//! the triggers bypassed is found at the exact sequence number; the application cannot change
//! or delete events; auditors read the log but cannot open a case stream.

use crate::support;

use readroom_domain::audit::{Action, BreakKind, ChainHead, Outcome};
use readroom_server::audit::{self, Audit, event_by};
use readroom_server::db::{AssignmentRole, AuditRow, Backend, Role};
use serde_json::{Value, json};
use support::{Browser, TestApp};
use uuid::Uuid;

/// What one appended event must look like. `details` lists keys (with values) it must carry.
struct Expect {
    action: &'static str,
    outcome: &'static str,
    actor: Option<Uuid>,
    target: Option<String>,
    details: Value,
}

fn expect(
    action: &'static str,
    outcome: &'static str,
    actor: Option<Uuid>,
    target: Option<String>,
    details: Value,
) -> Expect {
    Expect {
        action,
        outcome,
        actor,
        target,
        details,
    }
}

/// Reads the events appended since `since` and checks they are exactly `expected`, in order.
async fn check_step(app: &TestApp, since: &mut i64, step: &str, expected: &[Expect]) {
    let rows = app.db().audit_page(*since, 1000).await.unwrap();
    if let Some(last) = rows.last() {
        *since = last.seq;
    }
    let got: Vec<&str> = rows.iter().map(|r| r.action.as_str()).collect();
    let want: Vec<&str> = expected.iter().map(|e| e.action).collect();
    assert_eq!(got, want, "{step}: the events appended");
    for (row, want) in rows.iter().zip(expected) {
        assert_eq!(
            row.outcome, want.outcome,
            "{step}: outcome of {}",
            want.action
        );
        assert_eq!(
            row.actor,
            want.actor.map(|id| id.to_string()),
            "{step}: actor of {}",
            want.action
        );
        assert_eq!(row.target, want.target, "{step}: target of {}", want.action);
        let details: Value = serde_json::from_str(&row.details).unwrap();
        for (key, value) in want.details.as_object().unwrap() {
            assert_eq!(
                &details[key], value,
                "{step}: details.{key} of {} in {details}",
                want.action
            );
        }
        // Requests name their address; what the system does by itself (seeding) has none.
        let from_client = want.actor.is_some() || want.action == "auth.login_failed";
        assert_eq!(
            row.client.as_deref(),
            from_client.then_some("127.0.0.1"),
            "{step}: client of {}",
            want.action
        );
    }
}

fn case_t(id: Uuid) -> Option<String> {
    Some(format!("case:{id}"))
}

fn user_t(id: Uuid) -> Option<String> {
    Some(format!("user:{id}"))
}

const PASSWORD: &str = "correct horse battery";

/// Each audited action of the API, one step at a time: exactly these events, these fields.
async fn every_action_is_recorded_once(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut since = 0;
    // A new installation created its ticket and audit keys.
    check_step(
        &app,
        &mut since,
        "first start",
        &[
            expect(
                "key.created",
                "success",
                None,
                None,
                json!({ "key": "ticket" }),
            ),
            expect(
                "key.created",
                "success",
                None,
                None,
                json!({ "key": "audit" }),
            ),
        ],
    )
    .await;

    let study = app.study("AUD").await;
    let own = app.case(study, "S0001").await;
    let others = app.case(study, "S0002").await;
    let grader = app.user("kim", &[(Role::Grader, Some(study))]).await;
    let admin = app.user("root", &[(Role::Admin, None)]).await;
    let coordinator = app.user("park", &[(Role::Coordinator, Some(study))]).await;
    let auditor = app.user("lee", &[(Role::Auditor, None)]).await;
    check_step(
        &app,
        &mut since,
        "seeding users",
        &[
            expect(
                "user.created",
                "success",
                None,
                user_t(grader.id),
                json!({ "source": "test" }),
            ),
            expect(
                "role.granted",
                "success",
                None,
                user_t(grader.id),
                json!({ "role": "grader" }),
            ),
            expect("user.created", "success", None, user_t(admin.id), json!({})),
            expect(
                "role.granted",
                "success",
                None,
                user_t(admin.id),
                json!({ "role": "admin" }),
            ),
            expect(
                "user.created",
                "success",
                None,
                user_t(coordinator.id),
                json!({}),
            ),
            expect(
                "role.granted",
                "success",
                None,
                user_t(coordinator.id),
                json!({}),
            ),
            expect(
                "user.created",
                "success",
                None,
                user_t(auditor.id),
                json!({}),
            ),
            expect(
                "role.granted",
                "success",
                None,
                user_t(auditor.id),
                json!({}),
            ),
        ],
    )
    .await;
    app.assign(&own, &grader, AssignmentRole::Grader).await;
    app.set_password(&grader, PASSWORD).await;

    // Sign-in with a password, right and wrong; an unknown user.
    let mut kim = Browser::new(&app);
    let wrong = kim
        .post(
            "/api/auth/login",
            json!({ "username": "kim", "password": "not it at all" }),
        )
        .await;
    assert_eq!(wrong.status, 401);
    let unknown = kim
        .post(
            "/api/auth/login",
            json!({ "username": "nobody", "password": "whatever it is" }),
        )
        .await;
    assert_eq!(unknown.status, 401);
    let right = kim
        .post(
            "/api/auth/login",
            json!({ "username": "kim", "password": PASSWORD }),
        )
        .await;
    assert_eq!(right.status, 200, "{}", right.body);
    check_step(
        &app,
        &mut since,
        "password sign-in",
        &[
            expect(
                "auth.login_failed",
                "failure",
                Some(grader.id),
                user_t(grader.id),
                json!({ "method": "password", "reason": "invalid_credentials" }),
            ),
            expect(
                "auth.login_failed",
                "failure",
                None,
                None,
                json!({ "method": "password", "reason": "invalid_credentials" }),
            ),
            expect(
                "auth.login",
                "success",
                Some(grader.id),
                user_t(grader.id),
                json!({ "method": "password" }),
            ),
        ],
    )
    .await;
    // The unidentified failure still names where it came from.
    let rows = app.db().search_audit(&Default::default(), 3).await.unwrap();
    assert_eq!(rows[1].client.as_deref(), Some("127.0.0.1"));

    // Cases: open one's own, try another's, mint a ticket for the next case.
    let opened = kim.get(&format!("/api/cases/{}", own.id)).await;
    assert_eq!(opened.status, 200);
    let refused = kim.get(&format!("/api/cases/{}", others.id)).await;
    assert_eq!(refused.status, 404);
    let missing = kim.get(&format!("/api/cases/{}", Uuid::nil())).await;
    assert_eq!(missing.status, 404);
    let ticket = kim
        .post(&format!("/api/cases/{}/ticket", own.id), json!({}))
        .await;
    assert_eq!(ticket.status, 200);
    check_step(
        &app,
        &mut since,
        "cases",
        &[
            expect(
                "case.opened",
                "success",
                Some(grader.id),
                case_t(own.id),
                json!({ "access": "view", "label": own.label }),
            ),
            expect(
                "case.denied",
                "denied",
                Some(grader.id),
                case_t(others.id),
                json!({ "reason": "not_assigned" }),
            ),
            expect(
                "case.denied",
                "denied",
                Some(grader.id),
                case_t(Uuid::nil()),
                json!({ "reason": "no_such_case" }),
            ),
            expect(
                "stream.ticket_issued",
                "success",
                Some(grader.id),
                case_t(own.id),
                json!({ "purpose": "open_case" }),
            ),
        ],
    )
    .await;

    // A route the grader's roles do not allow, and a write without the CSRF token.
    let denied = kim.get("/api/admin/users").await;
    assert_eq!(denied.status, 403);
    let csrf = kim.csrf.take();
    let no_token = kim.post("/api/auth/logout", json!({})).await;
    assert_eq!(no_token.status, 403);
    kim.csrf = csrf;
    check_step(
        &app,
        &mut since,
        "denials",
        &[
            expect(
                "access.denied",
                "denied",
                Some(grader.id),
                None,
                json!({ "route": "/api/admin/users", "reason": "role" }),
            ),
            expect(
                "access.denied",
                "denied",
                Some(grader.id),
                None,
                json!({ "route": "/api/auth/logout", "reason": "csrf" }),
            ),
        ],
    )
    .await;

    // Account changes by the user.
    let changed = kim
        .post(
            "/api/auth/password",
            json!({ "current_password": PASSWORD, "new_password": "an even longer passphrase" }),
        )
        .await;
    assert_eq!(changed.status, 204, "{}", changed.body);
    let out = kim.post("/api/auth/logout", json!({})).await;
    assert_eq!(out.status, 200);
    check_step(
        &app,
        &mut since,
        "account",
        &[
            expect(
                "auth.password_changed",
                "success",
                Some(grader.id),
                user_t(grader.id),
                json!({}),
            ),
            expect(
                "auth.logout",
                "success",
                Some(grader.id),
                user_t(grader.id),
                json!({ "all": false }),
            ),
        ],
    )
    .await;

    // One-time links: a used one is refused; sign out everywhere.
    let link = app.link(&grader).await;
    let token = link.split("#token=").nth(1).unwrap().to_owned();
    let mut kim = Browser::new(&app);
    assert_eq!(
        kim.post("/api/auth/link", json!({ "token": token }))
            .await
            .status,
        200
    );
    assert_eq!(
        kim.post("/api/auth/link", json!({ "token": token }))
            .await
            .status,
        401
    );
    assert_eq!(
        kim.post("/api/auth/logout-all", json!({})).await.status,
        200
    );
    check_step(
        &app,
        &mut since,
        "links",
        &[
            expect(
                "auth.login",
                "success",
                Some(grader.id),
                user_t(grader.id),
                json!({ "method": "link" }),
            ),
            expect(
                "auth.login_failed",
                "failure",
                None,
                None,
                json!({ "method": "link", "reason": "invalid_link" }),
            ),
            expect(
                "auth.logout",
                "success",
                Some(grader.id),
                user_t(grader.id),
                json!({ "all": true }),
            ),
        ],
    )
    .await;

    // The coordinator assigns and unassigns.
    let mut park = app.sign_in(&coordinator).await;
    let created = park
        .post(
            "/api/studies/AUD/assignments",
            json!({ "case_id": others.id, "username": "kim", "role": "grader" }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let assignment = created.body["id"].as_str().unwrap().to_owned();
    let removed = park
        .send(
            "DELETE",
            &format!("/api/studies/AUD/assignments/{assignment}"),
            None,
        )
        .await;
    assert_eq!(removed.status, 204, "{}", removed.body);
    check_step(
        &app,
        &mut since,
        "assignments",
        &[
            expect(
                "auth.login",
                "success",
                Some(coordinator.id),
                user_t(coordinator.id),
                json!({ "method": "link" }),
            ),
            expect(
                "assignment.created",
                "success",
                Some(coordinator.id),
                case_t(others.id),
                json!({ "assignee": grader.id.to_string(), "role": "grader" }),
            ),
            expect(
                "assignment.removed",
                "success",
                Some(coordinator.id),
                case_t(others.id),
                json!({ "assignee": grader.id.to_string() }),
            ),
        ],
    )
    .await;

    // The admin manages an account.
    let mut root = app.sign_in(&admin).await;
    let made = root
        .post(
            "/api/admin/users",
            json!({ "username": "han", "display_name": "Dr. Han", "roles": [{ "role": "grader", "study": "AUD" }] }),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let han = Uuid::parse_str(made.body["user"]["id"].as_str().unwrap()).unwrap();
    let path = format!("/api/admin/users/{han}");
    assert_eq!(
        root.send("PATCH", &path, Some(json!({ "disabled": true })))
            .await
            .status,
        200
    );
    assert_eq!(
        root.send("PATCH", &path, Some(json!({ "disabled": false })))
            .await
            .status,
        200
    );
    let granted = root
        .post(
            &format!("{path}/roles"),
            json!({ "role": "adjudicator", "study": "AUD" }),
        )
        .await;
    assert_eq!(granted.status, 201, "{}", granted.body);
    let grant = granted.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        root.send("DELETE", &format!("{path}/roles/{grant}"), None)
            .await
            .status,
        204
    );
    assert_eq!(
        root.post(&format!("{path}/signin-link"), json!({}))
            .await
            .status,
        200
    );
    assert_eq!(
        root.post(&format!("{path}/unlock"), json!({})).await.status,
        200
    );
    let a = Some(admin.id);
    check_step(
        &app,
        &mut since,
        "admin",
        &[
            expect("auth.login", "success", a, user_t(admin.id), json!({})),
            expect("user.created", "success", a, user_t(han), json!({})),
            expect(
                "role.granted",
                "success",
                a,
                user_t(han),
                json!({ "role": "grader", "study_id": study.to_string() }),
            ),
            expect("auth.link_issued", "success", a, user_t(han), json!({})),
            expect("user.disabled", "success", a, user_t(han), json!({})),
            expect("user.enabled", "success", a, user_t(han), json!({})),
            expect(
                "role.granted",
                "success",
                a,
                user_t(han),
                json!({ "role": "adjudicator", "grant_id": grant }),
            ),
            expect(
                "role.revoked",
                "success",
                a,
                user_t(han),
                json!({ "role": "adjudicator", "grant_id": grant }),
            ),
            expect("auth.link_issued", "success", a, user_t(han), json!({})),
            expect("auth.unlocked", "success", a, user_t(han), json!({})),
        ],
    )
    .await;

    // The auditor reads (not audited) and exports (audited); cannot open a case stream.
    let mut lee = app.sign_in(&auditor).await;
    let page = lee.get(&format!("/api/audit/events?case={}", own.id)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let export = lee
        .get(&format!(
            "/api/audit/events/export?format=json&case={}",
            own.id
        ))
        .await;
    assert_eq!(export.status, 200);
    let stream = lee
        .post(&format!("/api/cases/{}/ticket", own.id), json!({}))
        .await;
    assert_eq!(stream.status, 404, "an auditor never gets images");
    check_step(
        &app,
        &mut since,
        "auditor",
        &[
            expect(
                "auth.login",
                "success",
                Some(auditor.id),
                user_t(auditor.id),
                json!({}),
            ),
            expect(
                "audit.exported",
                "success",
                Some(auditor.id),
                None,
                json!({ "format": "json", "events": 2 }),
            ),
            expect(
                "case.denied",
                "denied",
                Some(auditor.id),
                case_t(own.id),
                json!({ "reason": "not_assigned" }),
            ),
        ],
    )
    .await;
    // The search named only that case's events, newest first, with the grader's username.
    let events = page.body["events"].as_array().unwrap();
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["stream.ticket_issued", "case.opened"],
        "{}",
        page.body
    );
    assert_eq!(events[1]["actor"]["username"], "kim");
    assert_eq!(events[1]["target_label"], own.label.as_str());

    // Every event of the run forms one intact chain.
    let key = app.state.audit_signer.verifier();
    let report = audit::verify(app.db(), None, &[], Some(&key))
        .await
        .unwrap();
    assert!(report.is_intact(), "{:?}", report.first_break);
    assert_eq!(report.head.seq, since);
    app.db().close().await;
}

/// Many writers (in-process recorders and separate "processes" with their own recorder) append
/// at once; the chain stays single and intact, with every event exactly once.
async fn concurrent_writers_keep_one_chain(backend: Backend) {
    let app = TestApp::start(backend).await;
    let before = app.db().audit_head().await.unwrap().seq;
    let writers = 8;
    let per_writer = 150;
    let mut tasks = Vec::new();
    for writer in 0..writers {
        // Half share the server's recorder, half start their own (as CLI processes do).
        let recorder = if writer % 2 == 0 {
            app.state.audit.clone()
        } else {
            Audit::start(app.db().clone())
        };
        tasks.push(tokio::spawn(async move {
            for n in 0..per_writer {
                recorder
                    .record(event_by(
                        Action::CaseOpened,
                        Outcome::Success,
                        None,
                        Some(format!("case:{writer}")),
                        None,
                        json!({ "writer": writer, "n": n }),
                    ))
                    .await
                    .expect("recorded");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let report = audit::verify(app.db(), None, &[], None).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.first_break);
    assert_eq!(report.head.seq, before + writers * per_writer);
    let rows = all_rows(&app).await;
    let mut seen = std::collections::HashSet::new();
    for row in rows.iter().filter(|r| r.action == "case.opened") {
        let details: Value = serde_json::from_str(&row.details).unwrap();
        assert!(
            seen.insert((details["writer"].as_i64(), details["n"].as_i64())),
            "duplicate {details}"
        );
    }
    assert_eq!(seen.len() as i64, writers * per_writer);
    app.db().close().await;
}

async fn all_rows(app: &TestApp) -> Vec<AuditRow> {
    app.db().audit_page(0, 100_000).await.unwrap()
}

/// Runs a statement with the append-only triggers out of the way (what an attacker with
/// database superuser rights could do), on the same database the app uses.
async fn privileged(app: &TestApp, backend: Backend, statements: &[&str]) {
    use sqlx::Connection;
    let url = app.state.config.database_url();
    match backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::raw_sql(
                "DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete;",
            )
            .execute(&mut conn)
            .await
            .unwrap();
            for statement in statements {
                sqlx::raw_sql(sqlx::AssertSqlSafe(*statement))
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
            sqlx::raw_sql(
                "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events \
                 BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: UPDATE refused'); END; \
                 CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events \
                 BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: DELETE refused'); END;",
            )
            .execute(&mut conn)
            .await
            .unwrap();
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::raw_sql("SET session_replication_role = replica")
                .execute(&mut conn)
                .await
                .unwrap();
            for statement in statements {
                sqlx::raw_sql(sqlx::AssertSqlSafe(*statement))
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
        }
    }
}

/// Appends `n` events and a signed checkpoint at the head; returns the checkpoint's seq.
async fn seeded_chain(app: &TestApp, n: usize) -> i64 {
    for i in 0..n {
        app.state
            .audit
            .record(event_by(
                Action::CaseOpened,
                Outcome::Success,
                None,
                Some(format!("case:{i}")),
                None,
                json!({ "i": i }),
            ))
            .await
            .unwrap();
    }
    let checkpoint = audit::checkpoint(app.db(), &app.state.checkpoints, &app.state.audit_signer)
        .await
        .unwrap()
        .expect("a checkpoint");
    checkpoint.seq
}

async fn verify_now(app: &TestApp) -> readroom_domain::audit::Report {
    let (checkpoints, bad) = audit::split_checkpoints(
        audit::load_checkpoints(&app.state.checkpoints)
            .await
            .unwrap(),
    );
    assert!(bad.is_empty(), "{bad:?}");
    let key = app.state.audit_signer.verifier();
    audit::verify(app.db(), None, &checkpoints, Some(&key))
        .await
        .unwrap()
}

fn break_at(report: &readroom_domain::audit::Report) -> (i64, BreakKind) {
    let found = report.first_break.clone().expect("a broken link");
    (found.seq, found.kind)
}

/// Editing, deleting, reordering, truncating and forging are each found at the exact event.
async fn tampering_is_found_at_the_exact_event(backend: Backend) {
    // Edit a row's details.
    let app = TestApp::start(backend).await;
    let head = seeded_chain(&app, 30).await;
    assert!(verify_now(&app).await.is_intact());
    privileged(
        &app,
        backend,
        &[r#"UPDATE audit_events SET details = '{"i":99}' WHERE seq = 12"#],
    )
    .await;
    assert_eq!(
        break_at(&verify_now(&app).await),
        (12, BreakKind::HashMismatch)
    );
    drop(app);

    // Delete a row in the middle.
    let app = TestApp::start(backend).await;
    seeded_chain(&app, 30).await;
    privileged(&app, backend, &["DELETE FROM audit_events WHERE seq = 17"]).await;
    assert_eq!(
        break_at(&verify_now(&app).await),
        (
            18,
            BreakKind::SequenceGap {
                expected: 17,
                found: 18
            }
        )
    );
    drop(app);

    // Reorder: swap two rows' contents under their sequence numbers.
    let app = TestApp::start(backend).await;
    seeded_chain(&app, 30).await;
    privileged(
        &app,
        backend,
        &[
            "UPDATE audit_events SET seq = 1000000 WHERE seq = 8",
            "UPDATE audit_events SET seq = 8 WHERE seq = 9",
            "UPDATE audit_events SET seq = 9 WHERE seq = 1000000",
        ],
    )
    .await;
    let (seq, kind) = break_at(&verify_now(&app).await);
    assert_eq!(seq, 8, "{kind:?}");
    drop(app);

    // Truncate the tail past the last checkpoint (and the head row with it).
    let app = TestApp::start(backend).await;
    let checkpoint = seeded_chain(&app, 30).await;
    assert_eq!(checkpoint, head);
    privileged(
        &app,
        backend,
        &[
            &format!("DELETE FROM audit_events WHERE seq > {}", checkpoint - 5),
            &format!("UPDATE audit_head SET seq = {0}, hash = (SELECT hash FROM audit_events WHERE seq = {0})", checkpoint - 5),
        ],
    )
    .await;
    assert_eq!(
        break_at(&verify_now(&app).await),
        (
            checkpoint - 4,
            BreakKind::Truncated {
                checkpoint_seq: checkpoint,
                last_seq: checkpoint - 5
            }
        )
    );
    drop(app);

    // Rewrite history consistently (recompute every hash after an edit) and forge a checkpoint.
    let app = TestApp::start(backend).await;
    let checkpoint = seeded_chain(&app, 30).await;
    let mut rows = all_rows(&app).await;
    let mut head = ChainHead::genesis();
    let mut statements = Vec::new();
    for row in rows.iter_mut() {
        let mut record = row.to_record().unwrap();
        if record.seq == 5 {
            record.details = r#"{"i":"rewritten"}"#.into();
        }
        record.prev_hash = head.hash.clone();
        record.hash = readroom_domain::audit::event_hash(&record).unwrap();
        head = record.head();
        statements.push(format!(
            "UPDATE audit_events SET details = '{}', prev_hash = '{}', hash = '{}' WHERE seq = {}",
            record.details, record.prev_hash, record.hash, record.seq
        ));
    }
    statements.push(format!("UPDATE audit_head SET hash = '{}'", head.hash));
    let refs: Vec<&str> = statements.iter().map(String::as_str).collect();
    privileged(&app, backend, &refs).await;
    // The rewritten chain is self-consistent, but the signed checkpoint disagrees with it.
    assert_eq!(
        break_at(&verify_now(&app).await),
        (checkpoint, BreakKind::CheckpointMismatch)
    );
    // A checkpoint forged to match, without the key, fails its signature.
    let key = audit::checkpoint_key(checkpoint);
    let mut forged: Value =
        serde_json::from_slice(&app.state.store.get(&key).await.unwrap()).unwrap();
    forged["hash"] = json!(head.hash);
    app.state
        .store
        .put(&key, serde_json::to_vec(&forged).unwrap().into())
        .await
        .unwrap();
    let (seq, kind) = break_at(&verify_now(&app).await);
    assert_eq!(seq, checkpoint);
    assert!(
        matches!(kind, BreakKind::BadCheckpointSignature(_)),
        "{kind:?}"
    );
}

/// Through the application's own connection, events cannot be changed or removed.
async fn the_application_cannot_change_events(backend: Backend) {
    let app = TestApp::start(backend).await;
    seeded_chain(&app, 3).await;
    let url = app.state.config.database_url();
    use sqlx::Connection;
    let refused: Vec<String> = match backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            let mut out = Vec::new();
            for sql in [
                "UPDATE audit_events SET details = '{}' WHERE seq = 1",
                "DELETE FROM audit_events WHERE seq = 1",
            ] {
                out.push(
                    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                        .execute(&mut conn)
                        .await
                        .unwrap_err()
                        .to_string(),
                );
            }
            out
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            let mut out = Vec::new();
            for sql in [
                "UPDATE audit_events SET details = '{}' WHERE seq = 1",
                "DELETE FROM audit_events WHERE seq = 1",
                "TRUNCATE audit_events",
            ] {
                out.push(
                    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                        .execute(&mut conn)
                        .await
                        .unwrap_err()
                        .to_string(),
                );
            }
            out
        }
    };
    for message in &refused {
        assert!(message.contains("append-only"), "{message}");
    }
    assert!(verify_now(&app).await.is_intact());
}

/// In PostgreSQL, the role that runs readroom (and owns the schema) holds no UPDATE, DELETE or
/// TRUNCATE right on the audit table, so it is refused before any trigger runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_app_role_has_no_update_or_delete_grant() {
    use sqlx::Connection;
    let admin = readroom_tests::pg::PgDatabase::create().await.unwrap();
    let role = format!("readroom_app_{}", Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin.url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE ROLE {role} LOGIN PASSWORD 'app-secret'; GRANT ALL ON SCHEMA public TO {role};"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    let app_url = admin
        .url
        .replacen(
            "postgres://postgres@",
            &format!("postgres://{role}:app-secret@"),
            1,
        )
        .replacen(
            "postgres://postgres:",
            &format!("postgres://{role}:app-secret:"),
            1,
        );
    assert!(app_url.contains(&role), "{app_url}");
    let db = readroom_server::db::Db::connect(&app_url).await.unwrap();
    db.migrate().await.unwrap();
    let recorder = Audit::start(db.clone());
    recorder
        .record(event_by(
            Action::CaseOpened,
            Outcome::Success,
            None,
            None,
            None,
            json!({}),
        ))
        .await
        .unwrap();
    let mut as_app = sqlx::PgConnection::connect(&app_url).await.unwrap();
    for sql in [
        "UPDATE audit_events SET details = '{}' WHERE seq = 1",
        "DELETE FROM audit_events WHERE seq = 1",
        "TRUNCATE audit_events",
    ] {
        let err = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut as_app)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("permission denied"),
            "{sql}: {err}"
        );
    }
    drop(as_app);
    db.close().await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "REASSIGN OWNED BY {role} TO postgres; DROP OWNED BY {role}; DROP ROLE {role};"
    )))
    .execute(&mut conn)
    .await
    .ok();
}

/// The recorder fails closed: with the database gone, recording is an error, not a silent skip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_fails_closed_without_a_database() {
    let app = TestApp::start(Backend::Sqlite).await;
    let recorder = Audit::start(app.db().clone());
    app.db().close().await;
    let result = recorder
        .record(event_by(
            Action::CaseOpened,
            Outcome::Success,
            None,
            None,
            None,
            json!({}),
        ))
        .await;
    assert!(result.is_err());
}

/// Finding 4: refused sign-ins cannot flood the log. An unknown provider's callback answers
/// 404 and records nothing; a storm of invalid links and provider errors from one address is
/// throttled, recorded one by one only up to the per-window budget, and counted in one event
/// per window, which the anomaly view shows as one storm.
async fn refused_sign_ins_cannot_flood_the_log(backend: Backend) {
    let app = TestApp::start_with(backend, |config| {
        config.auth.refusal_window_secs = 2;
        config.auth.oidc = vec![readroom_server::config::OidcProviderConfig {
            id: "hospital".into(),
            name: "Hospital".into(),
            issuer: "http://127.0.0.1:9/unreachable".into(),
            client_id: "readroom".into(),
            ..Default::default()
        }];
    })
    .await;
    let auditor = app.user("audrey", &[(Role::Auditor, None)]).await;
    let mut audrey = app.sign_in(&auditor).await;
    let before = app.db().audit_head().await.unwrap().seq;
    let client = app.http();
    for n in 0..100 {
        let reply = client
            .get(format!(
                "{}/api/auth/oidc/nope-{n}/callback?error=x",
                app.url
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 404);
    }
    assert_eq!(
        app.db().audit_head().await.unwrap().seq,
        before,
        "unknown providers record nothing"
    );

    let started = std::time::Instant::now();
    let mut attacker = Browser::new(&app);
    let mut statuses = std::collections::BTreeMap::<u16, u32>::new();
    for n in 0..300 {
        let reply = attacker
            .post("/api/auth/link", json!({ "token": format!("forged-{n}") }))
            .await;
        *statuses.entry(reply.status).or_default() += 1;
    }
    for _ in 0..100 {
        let reply = client
            .get(format!(
                "{}/api/auth/oidc/hospital/callback?error=access_denied",
                app.url
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 303);
    }
    let windows = started.elapsed().as_secs() / 2 + 2;
    // The per-address budget (30 a minute, refilled one every 2 s) answers the rest with 429.
    let refused = statuses.get(&401).copied().unwrap_or(0);
    assert!((30..=40).contains(&refused), "{statuses:?}");
    assert_eq!(statuses.get(&429).copied().unwrap_or(0), 300 - refused);
    // The last window's count is written when it closes.
    tokio::time::sleep(std::time::Duration::from_millis(4500)).await;
    let rows = app.db().audit_page(before, 10_000).await.unwrap();
    let individual = rows
        .iter()
        .filter(|row| row.action == "auth.login_failed")
        .count() as u64;
    let counted: Vec<Value> = rows
        .iter()
        .filter(|row| row.action == "auth.refusals_counted")
        .map(|row| {
            assert_eq!(row.client.as_deref(), Some("127.0.0.1"));
            serde_json::from_str(&row.details).unwrap()
        })
        .collect();
    let total: u64 = counted.iter().map(|d| d["count"].as_u64().unwrap()).sum();
    assert_eq!(individual + total, 400, "every refusal is accounted for");
    assert!(
        individual <= 10 * windows && counted.len() as u64 <= windows,
        "{individual} single events and {} counts in {windows} windows",
        counted.len()
    );
    assert!(
        rows.len() as u64 <= 11 * windows && rows.len() < 200,
        "{} events for 400 refusals in {windows} windows",
        rows.len()
    );
    let reasons: Vec<&str> = counted
        .iter()
        .flat_map(|d| d["reasons"].as_object().unwrap().keys())
        .map(String::as_str)
        .collect();
    for reason in ["link:throttled", "oidc:hospital:throttled"] {
        assert!(reasons.contains(&reason), "{reason} in {reasons:?}");
    }

    // One storm, one flag.
    let flags = audrey.get("/api/audit/anomalies").await;
    assert_eq!(flags.status, 200, "{}", flags.body);
    let storms: Vec<&Value> = flags
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|flag| flag["kind"] == "refusal_storm")
        .collect();
    assert_eq!(storms.len(), 1, "{}", flags.body);
    assert_eq!(storms[0]["details"]["count"], total);
    assert_eq!(storms[0]["details"]["client"], "127.0.0.1");
}

/// Finding 4: the anomaly scan covers a period (the last 7 days by default), not the newest
/// 50,000 events, so a flood of other events cannot push a flag out of view.
async fn anomalies_cover_a_period_not_the_newest_events(backend: Backend) {
    let app = TestApp::start(backend).await;
    let study = app.study("ANO").await;
    let case = app.case(study, "S1").await;
    let grader = app.user("kim", &[(Role::Grader, Some(study))]).await;
    let auditor = app.user("audrey", &[(Role::Auditor, None)]).await;
    let mut kim = app.sign_in(&grader).await;
    assert_eq!(
        kim.get(&format!("/api/cases/{}", case.id)).await.status,
        404
    );
    let mut audrey = app.sign_in(&auditor).await;
    let outside = |flags: &Value| {
        flags
            .as_array()
            .unwrap()
            .iter()
            .filter(|flag| flag["kind"] == "outside_assignment")
            .count()
    };
    assert_eq!(outside(&audrey.get("/api/audit/anomalies").await.body), 1);
    // 50,001 newer events the rules do not read (as a flood of refusals once was).
    for _ in 0..51 {
        let batch = (0..1000)
            .map(|_| {
                event_by(
                    Action::AuthLoginFailed,
                    Outcome::Failure,
                    None,
                    None,
                    Some("10.9.8.7".parse().unwrap()),
                    json!({ "method": "link", "reason": "invalid_link" }),
                )
            })
            .collect();
        for stored in app.db().append_audit(batch).await.unwrap() {
            stored.unwrap();
        }
    }
    let flags = audrey.get("/api/audit/anomalies").await;
    assert_eq!(flags.status, 200, "{}", flags.body);
    assert_eq!(outside(&flags.body), 1, "the flag is still in view");
    assert_eq!(
        outside(&audrey.get("/api/audit/anomalies?days=1").await.body),
        1
    );
    for bad in ["days=0", "days=400", "days=x", "limit=5"] {
        let reply = audrey.get(&format!("/api/audit/anomalies?{bad}")).await;
        assert_eq!(reply.status, 400, "{bad}: {}", reply.body);
    }
}

on_both_backends!(
    every_action_is_recorded_once,
    concurrent_writers_keep_one_chain,
    tampering_is_found_at_the_exact_event,
    the_application_cannot_change_events,
    refused_sign_ins_cannot_flood_the_log,
    anomalies_cover_a_period_not_the_newest_events,
);

/// Issue 19: with `store.s3.checkpoint_bucket` the signed checkpoints go to a bucket of their
/// own (the Object Lock bucket infra/terraform creates), not among the bundles: written by
/// `readroom audit checkpoint` and read back by `readroom audit verify`, both from the
/// configuration alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_go_to_their_own_bucket_when_one_is_configured() {
    let s3 = readroom_tests::s3s::S3sServer::start().expect("s3s-fs");
    for bucket in ["bundles", "checkpoints"] {
        std::fs::create_dir_all(s3.root().join(bucket)).unwrap();
    }
    let env = [
        ("READROOM_STORE__KIND", "s3".to_owned()),
        ("READROOM_STORE__S3__ENDPOINT", s3.endpoint.clone()),
        (
            "READROOM_STORE__S3__REGION",
            readroom_tests::s3s::REGION.to_owned(),
        ),
        ("READROOM_STORE__S3__BUCKET", "bundles".to_owned()),
        (
            "READROOM_STORE__S3__CHECKPOINT_BUCKET",
            "checkpoints".to_owned(),
        ),
        ("READROOM_STORE__S3__ACCESS_KEY_ID", s3.access_key.clone()),
        (
            "READROOM_STORE__S3__SECRET_ACCESS_KEY",
            s3.secret_key.clone(),
        ),
        ("READROOM_STORE__S3__FORCE_PATH_STYLE", "true".to_owned()),
    ];
    let data = tempfile::tempdir().unwrap();
    let readroom = |args: &[&str]| {
        let mut command = std::process::Command::new(readroom_tests::readroom_binary());
        command
            .arg("--data-dir")
            .arg(data.path())
            .args(args)
            .env_remove("READROOM_CONFIG");
        for (name, value) in &env {
            command.env(name, value);
        }
        command.output().expect("readroom runs")
    };
    // Something to sign: the first user.
    let created = readroom(&["user", "create", "first.admin", "--role", "admin"]);
    assert!(created.status.success(), "{created:?}");
    let written = readroom(&["audit", "checkpoint"]);
    assert!(written.status.success(), "{written:?}");
    let files = |bucket: &str| -> Vec<String> {
        let root = s3.root().join(bucket);
        let mut found = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    found.push(path.strip_prefix(&root).unwrap().display().to_string());
                }
            }
        }
        found
    };
    let checkpoints = files("checkpoints");
    assert!(
        checkpoints
            .iter()
            .any(|f| f.starts_with("audit/checkpoints/") && f.ends_with(".json")),
        "{checkpoints:?}"
    );
    assert!(
        !files("bundles").iter().any(|f| f.starts_with("audit/")),
        "no checkpoint among the bundles: {:?}",
        files("bundles")
    );
    let verified = readroom(&["audit", "verify", "--from-checkpoint"]);
    let stdout = String::from_utf8_lossy(&verified.stdout);
    assert!(verified.status.success(), "{verified:?}");
    assert!(!stdout.contains("no checkpoint covers it yet"), "{stdout}");
}
