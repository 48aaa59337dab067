//! The authorization matrix: every API route (taken from the server's own OpenAPI document, so
//! a new route cannot be missed) × every kind of principal × the principal's own case and
//! another's case, each cell sent as a real HTTP request to a real server and its answer
//! checked against the rule the cell must follow.
//!
//! A route without `x-readroom-policy` fails here; so does a route this file has no request
//! recipe for, so adding a route forces its authorization to be stated and tested.

use crate::support;

use std::sync::atomic::{AtomicUsize, Ordering};

use readroom_server::db::{AssignmentRole, Backend, Case, Role, User};
use readroom_server::http::{Policy, policy_table};
use serde_json::{Value, json};
use support::{Browser, TestApp};
use uuid::Uuid;

/// Who is asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Anonymous,
    NoRoles,
    Grader,
    Adjudicator,
    Coordinator,
    CoordinatorElsewhere,
    Auditor,
    Admin,
}

const EVERYONE: [Who; 8] = [
    Who::Anonymous,
    Who::NoRoles,
    Who::Grader,
    Who::Adjudicator,
    Who::Coordinator,
    Who::CoordinatorElsewhere,
    Who::Auditor,
    Who::Admin,
];

/// Which case the request names: one assigned to the asking grader/adjudicator, or one assigned
/// to another grader only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Own,
    Others,
}

/// The seeded world.
struct World {
    app: TestApp,
    study_code: String,
    own_case: Case,
    others_case: Case,
    spare_grader: User,
    victim: User,
    users: Vec<(Who, User)>,
    counter: AtomicUsize,
}

impl World {
    async fn new(backend: Backend) -> World {
        let app = TestApp::start(backend).await;
        let study = app.study("MATRIX").await;
        let elsewhere = app.study("ELSEWHERE").await;
        let own_case = app.case(study, "S0001").await;
        let others_case = app.case(study, "S0002").await;
        let grader = app.user("grader", &[(Role::Grader, Some(study))]).await;
        let other_grader = app
            .user("other.grader", &[(Role::Grader, Some(study))])
            .await;
        let adjudicator = app
            .user("adjudicator", &[(Role::Adjudicator, Some(study))])
            .await;
        let coordinator = app
            .user("coordinator", &[(Role::Coordinator, Some(study))])
            .await;
        let coordinator_elsewhere = app
            .user(
                "coordinator.elsewhere",
                &[(Role::Coordinator, Some(elsewhere))],
            )
            .await;
        let auditor = app.user("auditor", &[(Role::Auditor, None)]).await;
        let admin = app.user("admin", &[(Role::Admin, None)]).await;
        let no_roles = app.user("nobody", &[]).await;
        let spare_grader = app
            .user("spare.grader", &[(Role::Grader, Some(study))])
            .await;
        let victim = app.user("victim", &[]).await;
        let form = readroom_domain::grading::preset("icdr").unwrap();
        app.db()
            .set_form(study, &form.to_json(), &form.fingerprint(), None)
            .await
            .unwrap();
        app.assign(&own_case, &grader, AssignmentRole::Grader).await;
        app.assign(&own_case, &adjudicator, AssignmentRole::Adjudicator)
            .await;
        app.assign(&others_case, &other_grader, AssignmentRole::Grader)
            .await;
        World {
            app,
            study_code: "MATRIX".into(),
            own_case,
            others_case,
            spare_grader,
            victim,
            users: vec![
                (Who::NoRoles, no_roles),
                (Who::Grader, grader),
                (Who::Adjudicator, adjudicator),
                (Who::Coordinator, coordinator),
                (Who::CoordinatorElsewhere, coordinator_elsewhere),
                (Who::Auditor, auditor),
                (Who::Admin, admin),
            ],
            counter: AtomicUsize::new(0),
        }
    }

    fn case(&self, target: Target) -> &Case {
        match target {
            Target::Own => &self.own_case,
            Target::Others => &self.others_case,
        }
    }

    async fn browser(&self, who: Who) -> Browser {
        match self.users.iter().find(|(w, _)| *w == who) {
            Some((_, user)) => self.app.sign_in(user).await,
            None => Browser::new(&self.app),
        }
    }

    /// The spare grader's assignment on `case`, created if missing.
    async fn spare_assignment(&self, case: Uuid) -> Uuid {
        match self
            .app
            .db()
            .assign(case, self.spare_grader.id, AssignmentRole::Grader, None)
            .await
        {
            Ok(a) => a.id,
            Err(_) => {
                self.app
                    .db()
                    .assignments_for_case(case)
                    .await
                    .unwrap()
                    .into_iter()
                    .find(|a| a.user_id == self.spare_grader.id)
                    .unwrap()
                    .id
            }
        }
    }

    fn unique(&self) -> usize {
        self.counter.fetch_add(1, Ordering::Relaxed)
    }

    /// The concrete request for a route template: (path, body). Builds per-cell fixtures
    /// (assignments and grants to delete) so every cell starts from the same state.
    async fn request(
        &self,
        method: &str,
        route: &str,
        target: Target,
    ) -> Option<(String, Option<Value>)> {
        let case = self.case(target).id;
        let code = &self.study_code;
        let victim = self.victim.id;
        let request = match (method, route) {
            ("GET", "/api/openapi.json") => (route.to_owned(), None),
            ("GET", "/api/auth/providers") => (route.to_owned(), None),
            ("POST", "/api/auth/login") => (
                route.to_owned(),
                Some(json!({ "username": "no-such-user", "password": "wrong password here" })),
            ),
            ("POST", "/api/auth/link") => (route.to_owned(), Some(json!({ "token": "x" }))),
            ("GET", "/api/auth/oidc/{provider}/start") => {
                ("/api/auth/oidc/none/start?return_to=/".to_owned(), None)
            }
            ("GET", "/api/auth/oidc/{provider}/callback") => (
                "/api/auth/oidc/none/callback?code=c&state=s".to_owned(),
                None,
            ),
            ("POST", "/api/auth/logout" | "/api/auth/logout-all" | "/api/auth/totp/setup") => {
                (route.to_owned(), None)
            }
            ("POST", "/api/auth/password") => (
                route.to_owned(),
                Some(json!({ "new_password": "a long enough passphrase" })),
            ),
            ("POST", "/api/auth/totp/enable" | "/api/auth/totp/disable") => {
                (route.to_owned(), Some(json!({ "code": "000000" })))
            }
            ("GET", "/api/me" | "/api/worklist" | "/api/studies") => (route.to_owned(), None),
            ("GET", "/api/studies/{code}/cases") => (format!("/api/studies/{code}/cases"), None),
            ("POST", "/api/studies/{code}/assignments") => (
                format!("/api/studies/{code}/assignments"),
                Some(
                    json!({ "case_id": case, "username": self.spare_grader.username, "role": "grader" }),
                ),
            ),
            ("DELETE", "/api/studies/{code}/assignments/{id}") => {
                let assignment = self.spare_assignment(case).await;
                (
                    format!("/api/studies/{code}/assignments/{assignment}"),
                    None,
                )
            }
            ("GET", "/api/cases/{id}") => (format!("/api/cases/{case}"), None),
            ("POST", "/api/cases/{id}/ticket") => {
                (format!("/api/cases/{case}/ticket"), Some(json!({})))
            }
            // An offer that is not SDP: allowed cells answer 400 (the handler's own check, after
            // authorization), denied ones 404; no worker is needed for either.
            ("POST", "/api/cases/{id}/stream") => (
                format!("/api/cases/{case}/stream"),
                Some(json!({
                    "offer": { "type": "offer", "sdp": "not sdp" },
                    "viewport": { "width": 640, "height": 480, "dpr": 1.0 },
                })),
            ),
            ("GET", "/api/stream/config") => (route.to_owned(), None),
            ("GET", "/api/cases/{id}/form") => (format!("/api/cases/{case}/form"), None),
            // Empty values: a valid draft; a submission and an amendment the handler refuses
            // (422, 409) after authorization.
            ("PUT", "/api/cases/{id}/draft") => (
                format!("/api/cases/{case}/draft"),
                Some(json!({ "values": {} })),
            ),
            ("POST", "/api/cases/{id}/grade") => (
                format!("/api/cases/{case}/grade"),
                Some(json!({ "values": {} })),
            ),
            ("POST", "/api/cases/{id}/amendments") => (
                format!("/api/cases/{case}/amendments"),
                Some(json!({ "values": {}, "reason": "matrix" })),
            ),
            ("GET", "/api/adjudications") => (route.to_owned(), None),
            ("GET", "/api/studies/{code}/form" | "/api/studies/{code}/batches") => {
                (route.replace("{code}", code), None)
            }
            ("PUT", "/api/studies/{code}/form") => (
                format!("/api/studies/{code}/form"),
                Some(json!({ "preset": "icdr" })),
            ),
            ("POST", "/api/studies/{code}/batches") => (
                format!("/api/studies/{code}/batches"),
                Some(json!({
                    "name": format!("matrix batch {}", self.unique()),
                    "cases": [self.others_case.id],
                    "graders": [self.spare_grader.username],
                    "per_case": 1,
                })),
            ),
            // Reassigning the spare grader's assignment to the spare grader: refused (400) by
            // the handler after authorization, so the world does not change.
            ("POST", "/api/studies/{code}/assignments/{id}/reassign") => {
                let assignment = self.spare_assignment(case).await;
                (
                    format!("/api/studies/{code}/assignments/{assignment}/reassign"),
                    Some(json!({ "username": self.spare_grader.username })),
                )
            }
            (
                "GET",
                "/api/studies/{code}/progress"
                | "/api/studies/{code}/agreement"
                | "/api/studies/{code}/referrals",
            ) => (route.replace("{code}", code), None),
            ("GET", "/api/studies/{code}/export") => {
                (format!("/api/studies/{code}/export?format=csv"), None)
            }
            (
                "GET",
                "/api/audit/events"
                | "/api/audit/anomalies"
                | "/api/audit/status"
                | "/api/audit/actions",
            ) => (route.to_owned(), None),
            ("GET", "/api/audit/events/export") => (
                format!("/api/audit/events/export?format=csv&case={case}"),
                None,
            ),
            ("GET", "/api/audit/cases/{id}") => (format!("/api/audit/cases/{case}"), None),
            ("GET", "/api/audit/cases") => ("/api/audit/cases?label=C-0001".to_owned(), None),
            ("GET", "/api/audit/users/{id}") => (format!("/api/audit/users/{victim}"), None),
            ("GET", "/api/admin/users") => (route.to_owned(), None),
            ("POST", "/api/admin/users") => (
                route.to_owned(),
                Some(
                    json!({ "username": format!("new.user.{}", self.unique()), "display_name": "New" }),
                ),
            ),
            ("PATCH", "/api/admin/users/{id}") => (
                format!("/api/admin/users/{victim}"),
                Some(json!({ "display_name": "Victim" })),
            ),
            ("POST", "/api/admin/users/{id}/signin-link") => {
                (format!("/api/admin/users/{victim}/signin-link"), None)
            }
            ("POST", "/api/admin/users/{id}/unlock") => {
                (format!("/api/admin/users/{victim}/unlock"), None)
            }
            ("POST", "/api/admin/users/{id}/roles") => (
                format!("/api/admin/users/{victim}/roles"),
                Some(json!({ "role": "grader", "study": code })),
            ),
            ("DELETE", "/api/admin/users/{id}/roles/{grant_id}") => {
                let grant = match self
                    .app
                    .db()
                    .grant_role(victim, Role::Auditor, None, None)
                    .await
                {
                    Ok(grant) => grant.id,
                    Err(_) => {
                        self.app
                            .db()
                            .roles_of(victim)
                            .await
                            .unwrap()
                            .into_iter()
                            .find(|g| g.role == Role::Auditor)
                            .unwrap()
                            .id
                    }
                };
                (format!("/api/admin/users/{victim}/roles/{grant}"), None)
            }
            _ => return None,
        };
        Some(request)
    }
}

/// Whether a cell must be allowed (reach the handler's own logic) or denied.
fn allowed(method: &str, route: &str, policy: Policy, who: Who, target: Target) -> bool {
    let assigned = matches!(who, Who::Grader | Who::Adjudicator) && target == Target::Own;
    match policy {
        Policy::Public => true,
        Policy::SignedIn => who != Who::Anonymous,
        Policy::Admin => who == Who::Admin,
        Policy::Auditor => who == Who::Auditor,
        Policy::Coordinator => who == Who::Coordinator,
        Policy::Statistics => matches!(who, Who::Coordinator | Who::Auditor),
        Policy::Case => match (method, route) {
            // Metadata: assigned graders/adjudicators and the study's coordinator.
            ("GET", "/api/cases/{id}") => assigned || who == Who::Coordinator,
            // Images: assigned graders/adjudicators only.
            ("POST", "/api/cases/{id}/ticket") => assigned,
            ("POST", "/api/cases/{id}/stream") => assigned,
            // Grading: the case's assigned graders and adjudicators only.
            (
                "GET" | "PUT" | "POST",
                "/api/cases/{id}/form"
                | "/api/cases/{id}/draft"
                | "/api/cases/{id}/grade"
                | "/api/cases/{id}/amendments",
            ) => assigned,
            other => panic!("no expectation for case route {other:?}"),
        },
    }
}

async fn matrix(backend: Backend) {
    let world = World::new(backend).await;
    let table = policy_table();
    assert!(
        table.missing.is_empty(),
        "routes without x-readroom-policy: {:?}",
        table.missing
    );
    let mut routes: Vec<(String, String, Policy)> = table
        .iter()
        .map(|(m, p, policy)| (m.to_string(), p.to_owned(), policy))
        .collect();
    routes.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
    assert!(routes.len() >= 25, "only {} routes found", routes.len());

    let mut cells = 0;
    let mut failures = Vec::new();
    for (method, route, policy) in &routes {
        for who in EVERYONE {
            for target in [Target::Own, Target::Others] {
                let Some((path, body)) = world.request(method, route, target).await else {
                    panic!("no request recipe for {method} {route}: add one (and its expectation)");
                };
                let mut browser = world.browser(who).await;
                let reply = browser.send(method, &path, body).await;
                cells += 1;
                let expected = allowed(method, route, *policy, who, target);
                let denied = match reply.status {
                    401 => reply.code() == "unauthenticated",
                    403 => true,
                    404 => matches!(
                        *policy,
                        Policy::Case | Policy::Coordinator | Policy::Statistics
                    ),
                    _ => false,
                };
                let ok = if expected {
                    !denied && reply.status < 500
                } else if who == Who::Anonymous {
                    reply.status == 401 && reply.code() == "unauthenticated"
                } else {
                    denied
                };
                if !ok {
                    failures.push(format!(
                        "{method} {route} as {who:?} on {target:?}: expected {}, got {} {}",
                        if expected { "allow" } else { "deny" },
                        reply.status,
                        reply.body
                    ));
                }
                // A denied answer never carries case data.
                if denied {
                    let text = reply.body.to_string();
                    assert!(!text.contains("S0001") && !text.contains("S0002"), "{text}");
                }
            }
        }
    }
    println!(
        "authorization matrix ({backend:?}): {} routes x {} principals x 2 targets = {cells} cells, every cell asserted",
        routes.len(),
        EVERYONE.len()
    );
    assert!(
        failures.is_empty(),
        "{} cells failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(cells, routes.len() * EVERYONE.len() * 2);
}

/// The matrix also holds for routes the table lists with ids that do not exist.
async fn unknown_ids_are_not_found(backend: Backend) {
    let world = World::new(backend).await;
    let (_, grader) = &world.users[1];
    let mut browser = world.app.sign_in(grader).await;
    for path in [
        format!("/api/cases/{}", Uuid::nil()),
        "/api/cases/not-a-uuid".to_owned(),
        "/api/nope".to_owned(),
    ] {
        let reply = browser.get(&path).await;
        assert_eq!(reply.status, 404, "{path}: {}", reply.body);
        assert_eq!(reply.code(), "not_found");
    }
}

crate::on_both_backends!(matrix, unknown_ids_are_not_found);
