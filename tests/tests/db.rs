//! The database layer against real databases: a temporary SQLite file and a fresh PostgreSQL
//! database (on the machine's server, started if needed).
//!
//! Every scenario is one `async fn(&Db)`; `backend_tests!` runs each on both backends, as
//! `sqlite::<name>` and `postgres::<name>`.

use std::collections::BTreeSet;
use std::time::Duration;

use readroom_server::db::grading::NewGrade;
use readroom_server::db::{
    AssignmentRole, AssignmentStatus, Backend, Db, DbError, NewBundle, NewCase, NewUser,
    Recipients, Role, StudyCode,
};
use readroom_tests::pg::PgDatabase;
use serde_json::json;
use uuid::Uuid;

/// A migrated database of one backend, cleaned up on drop.
struct TestDb {
    db: Db,
    /// The connection URL, for tests that write behind the data layer's back.
    url: String,
    _sqlite_dir: Option<tempfile::TempDir>,
    _postgres: Option<PgDatabase>,
}

impl TestDb {
    async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}/data/readroom.db", dir.path().display());
        let db = Db::connect(&url).await.expect("connect to SQLite");
        assert_eq!(db.backend(), Backend::Sqlite);
        db.migrate().await.expect("migrate SQLite");
        TestDb {
            db,
            url,
            _sqlite_dir: Some(dir),
            _postgres: None,
        }
    }

    async fn postgres() -> TestDb {
        let database = PgDatabase::create()
            .await
            .expect("fresh PostgreSQL database");
        let db = Db::connect(&database.url)
            .await
            .expect("connect to PostgreSQL");
        assert_eq!(db.backend(), Backend::Postgres);
        db.migrate().await.expect("migrate PostgreSQL");
        TestDb {
            db,
            url: database.url.clone(),
            _sqlite_dir: None,
            _postgres: Some(database),
        }
    }
}

macro_rules! backend_tests {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let test_db = super::TestDb::sqlite().await;
                    super::$name(&test_db.db).await;
                    test_db.db.close().await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let test_db = super::TestDb::postgres().await;
                    super::$name(&test_db.db).await;
                    test_db.db.close().await;
                }
            )+
        }
    };
}

backend_tests!(
    story,
    unique_violations_are_conflicts,
    register_ingest_is_atomic,
    missing_rows_are_not_found,
    concurrent_ingests_get_distinct_labels,
    migrate_is_idempotent,
    signin_counters,
    lossless_frames,
    viewer_sessions_by_watermark_prefix,
);

fn recipients(lines: &str) -> Recipients {
    Recipients::from_lines(lines).expect("valid recipients")
}

fn code(text: &str) -> StudyCode {
    StudyCode::new(text).expect("valid study code")
}

fn new_user(username: &str) -> NewUser {
    NewUser {
        username: username.to_owned(),
        display_name: format!("Dr. {username}"),
        email: None,
    }
}

fn new_bundle(study_id: Uuid, subject: &str, visit: &str, fingerprint: &str) -> NewBundle {
    NewBundle {
        study_id,
        subject: subject.to_owned(),
        visit: visit.to_owned(),
        format: "readroom-bundle/1".to_owned(),
        object_key: format!("bundles/{study_id}/{subject}-{visit}.age"),
        ciphertext_sha256: "ab".repeat(32),
        ciphertext_size: 5_000_000_123,
        plaintext_size: 4_999_999_000,
        file_count: 7,
        exam_count: 3,
        recipients_fingerprint: fingerprint.to_owned(),
        summary: json!({
            "exams": [
                { "id": "fundus-od", "kind": "fundus", "eye": "OD", "width": 3000, "height": 2000 },
                { "id": "oct-os", "kind": "oct", "eye": "OS", "frames": 2 }
            ]
        }),
        ingested_by: None,
    }
}

/// Every method of `Db`, in the order a deployment would use them.
async fn story(db: &Db) {
    db.ping().await.expect("ping");

    // Users.
    let mut alice_new = new_user("alice");
    alice_new.email = Some("alice@example.org".to_owned());
    let alice = db.create_user(&alice_new).await.expect("create alice");
    assert_eq!(alice.username, "alice");
    assert_eq!(alice.display_name, "Dr. alice");
    assert_eq!(alice.email.as_deref(), Some("alice@example.org"));
    assert!(!alice.disabled);
    let bob = db.create_user(&new_user("bob")).await.expect("create bob");
    let carol = db
        .create_user(&new_user("carol"))
        .await
        .expect("create carol");
    assert_eq!(db.user_by_id(alice.id).await.expect("alice by id"), alice);
    assert_eq!(db.user_by_username("bob").await.expect("bob by name"), bob);
    let usernames: Vec<String> = db
        .list_users()
        .await
        .expect("list users")
        .into_iter()
        .map(|user| user.username)
        .collect();
    assert_eq!(usernames, ["alice", "bob", "carol"]);

    // Studies.
    let keys = recipients("age1workerone\nage1workertwo");
    let study = db
        .create_study(&code("EYE-2026"), "Diabetic retinopathy 2026", &keys)
        .await
        .expect("create study");
    assert_eq!(study.code.as_str(), "EYE-2026");
    assert_eq!(study.recipients, keys);
    let demo = db
        .create_study(&code("DEMO"), "Demo", &recipients("age1demo"))
        .await
        .expect("create demo study");
    assert_eq!(
        db.study_by_code(&code("EYE-2026")).await.expect("by code"),
        study
    );
    assert_eq!(db.study_by_id(demo.id).await.expect("by id"), demo);
    let codes: Vec<String> = db
        .list_studies()
        .await
        .expect("list studies")
        .into_iter()
        .map(|study| study.code.to_string())
        .collect();
    assert_eq!(codes, ["DEMO", "EYE-2026"]);
    let rotated = recipients("age1workertwo\nage1workerthree");
    let study = db
        .set_study_recipients(study.id, &rotated)
        .await
        .expect("rotate recipients");
    assert_eq!(study.recipients, rotated);
    assert_eq!(
        db.study_by_code(&study.code)
            .await
            .expect("reread")
            .recipients,
        rotated
    );

    // Roles.
    let admin_grant = db
        .grant_role(alice.id, Role::Admin, None, None)
        .await
        .expect("grant admin");
    assert_eq!(admin_grant.role, Role::Admin);
    assert_eq!(admin_grant.study_id, None);
    assert_eq!(admin_grant.granted_by, None);
    let coordinator = db
        .grant_role(alice.id, Role::Coordinator, Some(study.id), Some(alice.id))
        .await
        .expect("grant coordinator");
    for user in [&bob, &carol] {
        db.grant_role(user.id, Role::Grader, Some(study.id), Some(alice.id))
            .await
            .expect("grant grader");
    }
    db.grant_role(carol.id, Role::Adjudicator, Some(study.id), Some(alice.id))
        .await
        .expect("grant adjudicator");
    let alice_roles = db.roles_of(alice.id).await.expect("roles of alice");
    assert_eq!(alice_roles, [admin_grant, coordinator]);
    let carol_roles: BTreeSet<Role> = db
        .roles_of(carol.id)
        .await
        .expect("roles of carol")
        .into_iter()
        .map(|grant| grant.role)
        .collect();
    assert_eq!(
        carol_roles,
        BTreeSet::from([Role::Grader, Role::Adjudicator])
    );

    // Ingest: two visits of one subject, the second with the first as prior.
    let fingerprint = rotated.fingerprint();
    let mut first_bundle = new_bundle(study.id, "S0001", "V1", &fingerprint);
    first_bundle.ingested_by = Some(alice.id);
    let truth = json!({ "lesions": [{ "kind": "microaneurysm", "eye": "OD", "x": 120, "y": 88 }] });
    let (bundle_one, case_one) = db
        .register_ingest(
            &first_bundle,
            &NewCase {
                prior_bundle_id: None,
                ground_truth: Some(truth.clone()),
            },
        )
        .await
        .expect("first ingest");
    assert_eq!(case_one.label, "C-0001");
    assert_eq!(case_one.bundle_id, bundle_one.id);
    assert_eq!(case_one.study_id, study.id);
    assert_eq!(bundle_one.subject, "S0001");
    assert_eq!(bundle_one.ciphertext_size, 5_000_000_123);
    assert_eq!(bundle_one.plaintext_size, 4_999_999_000);
    assert_eq!(bundle_one.file_count, 7);
    assert_eq!(bundle_one.exam_count, 3);
    assert_eq!(bundle_one.summary, first_bundle.summary);
    assert_eq!(bundle_one.recipients_fingerprint, fingerprint);
    assert_eq!(bundle_one.ingested_by, Some(alice.id));
    assert_eq!(
        db.bundle_by_id(bundle_one.id).await.expect("bundle"),
        bundle_one
    );
    assert_eq!(db.case_by_id(case_one.id).await.expect("case"), case_one);
    assert_eq!(
        db.case_ground_truth(case_one.id).await.expect("truth"),
        Some(truth)
    );

    let (bundle_two, case_two) = db
        .register_ingest(
            &new_bundle(study.id, "S0001", "V2", &fingerprint),
            &NewCase {
                prior_bundle_id: Some(bundle_one.id),
                ground_truth: None,
            },
        )
        .await
        .expect("second ingest");
    assert_eq!(case_two.label, "C-0002");
    assert_eq!(case_two.prior_bundle_id, Some(bundle_one.id));
    assert_eq!(bundle_two.ingested_by, None);
    assert_eq!(
        db.case_ground_truth(case_two.id).await.expect("no truth"),
        None
    );
    let new_truth = json!({ "lesions": [] });
    db.set_case_ground_truth(case_two.id, Some(&new_truth))
        .await
        .expect("set truth");
    assert_eq!(
        db.case_ground_truth(case_two.id).await.expect("truth set"),
        Some(new_truth)
    );
    db.set_case_ground_truth(case_one.id, None)
        .await
        .expect("clear truth");
    assert_eq!(
        db.case_ground_truth(case_one.id).await.expect("cleared"),
        None
    );

    // Labels are per study.
    let (_, demo_case) = db
        .register_ingest(
            &new_bundle(
                demo.id,
                "S0001",
                "V1",
                &recipients("age1demo").fingerprint(),
            ),
            &NewCase::default(),
        )
        .await
        .expect("demo ingest");
    assert_eq!(demo_case.label, "C-0001");

    // Listings.
    let listed = db.list_cases(study.id).await.expect("list cases");
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].case, case_one);
    assert_eq!(listed[0].study_code, study.code);
    assert_eq!(listed[0].subject, "S0001");
    assert_eq!(listed[0].visit, "V1");
    assert_eq!(listed[0].exam_count, 3);
    assert_eq!(listed[0].summary, bundle_one.summary);
    assert_eq!(listed[1].case, case_two);
    assert_eq!(listed[1].visit, "V2");
    let all: Vec<(String, String)> = db
        .list_all_cases()
        .await
        .expect("list all cases")
        .into_iter()
        .map(|summary| (summary.study_code.to_string(), summary.case.label))
        .collect();
    assert_eq!(
        all,
        [
            ("DEMO".to_owned(), "C-0001".to_owned()),
            ("EYE-2026".to_owned(), "C-0001".to_owned()),
            ("EYE-2026".to_owned(), "C-0002".to_owned()),
        ]
    );

    // Assignments: double grading of case one, adjudication by carol, a due date on case two.
    let due =
        case_two.created_at + Duration::from_secs(7 * 24 * 3600) + Duration::from_nanos(1_500);
    let bob_one = db
        .assign(case_one.id, bob.id, AssignmentRole::Grader, None)
        .await
        .expect("assign bob");
    assert_eq!(bob_one.status, AssignmentStatus::Assigned);
    assert_eq!(bob_one.due_at, None);
    db.assign(case_one.id, carol.id, AssignmentRole::Grader, None)
        .await
        .expect("assign carol as grader");
    let carol_adjudicates = db
        .assign(case_one.id, carol.id, AssignmentRole::Adjudicator, None)
        .await
        .expect("assign carol as adjudicator");
    let bob_two = db
        .assign(case_two.id, bob.id, AssignmentRole::Grader, Some(due))
        .await
        .expect("assign bob case two");
    // Stored to the microsecond on both backends.
    assert_eq!(
        bob_two.due_at,
        Some(case_two.created_at + Duration::from_secs(7 * 24 * 3600) + Duration::from_micros(1))
    );

    let bob_list = db
        .assignments_for_user(bob.id)
        .await
        .expect("bob's worklist");
    assert_eq!(bob_list.len(), 2);
    assert_eq!(bob_list[0].assignment_id, bob_one.id);
    assert_eq!(bob_list[0].case.case, case_one);
    assert_eq!(bob_list[0].role, AssignmentRole::Grader);
    assert_eq!(bob_list[0].status, AssignmentStatus::Assigned);
    assert_eq!(bob_list[0].assigned_at, bob_one.assigned_at);
    assert_eq!(bob_list[1].case.case.label, "C-0002");
    assert_eq!(bob_list[1].due_at, bob_two.due_at);
    let carol_list = db
        .assignments_for_user(carol.id)
        .await
        .expect("carol's worklist");
    let carol_roles: Vec<AssignmentRole> =
        carol_list.iter().map(|assigned| assigned.role).collect();
    assert_eq!(
        carol_roles,
        [AssignmentRole::Adjudicator, AssignmentRole::Grader]
    );
    assert_eq!(carol_list[0].assignment_id, carol_adjudicates.id);
    assert!(
        db.assignments_for_user(alice.id)
            .await
            .expect("empty")
            .is_empty()
    );
}

async fn unique_violations_are_conflicts(db: &Db) {
    let alice = db.create_user(&new_user("alice")).await.expect("alice");
    let err = db.create_user(&new_user("alice")).await.unwrap_err();
    assert!(
        matches!(err, DbError::Conflict { what: "username" }),
        "{err:?}"
    );

    let keys = recipients("age1one");
    let study = db
        .create_study(&code("EYE-2026"), "One", &keys)
        .await
        .expect("study");
    let err = db
        .create_study(&code("EYE-2026"), "Two", &keys)
        .await
        .unwrap_err();
    assert!(
        matches!(err, DbError::Conflict { what: "study code" }),
        "{err:?}"
    );

    db.grant_role(alice.id, Role::Grader, None, None)
        .await
        .expect("global grader");
    db.grant_role(alice.id, Role::Grader, Some(study.id), None)
        .await
        .expect("study grader is another scope");
    for scope in [None, Some(study.id)] {
        let err = db
            .grant_role(alice.id, Role::Grader, scope, None)
            .await
            .unwrap_err();
        assert!(
            matches!(err, DbError::Conflict { what: "role grant" }),
            "{scope:?}: {err:?}"
        );
    }

    let fingerprint = keys.fingerprint();
    let first = new_bundle(study.id, "S0001", "V1", &fingerprint);
    let (_, case) = db
        .register_ingest(&first, &NewCase::default())
        .await
        .expect("first ingest");
    let mut same_visit = new_bundle(study.id, "S0001", "V1", &fingerprint);
    same_visit.object_key = "bundles/other.age".to_owned();
    let err = db
        .register_ingest(&same_visit, &NewCase::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            DbError::Conflict {
                what: "bundle for this study, subject and visit"
            }
        ),
        "{err:?}"
    );

    db.assign(case.id, alice.id, AssignmentRole::Grader, None)
        .await
        .expect("assign");
    let err = db
        .assign(case.id, alice.id, AssignmentRole::Grader, None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, DbError::Conflict { what: "assignment" }),
        "{err:?}"
    );
    db.assign(case.id, alice.id, AssignmentRole::Adjudicator, None)
        .await
        .expect("another role is another assignment");
}

async fn register_ingest_is_atomic(db: &Db) {
    let keys = recipients("age1one");
    let study = db
        .create_study(&code("ATOMIC"), "Atomic", &keys)
        .await
        .expect("study");
    let fingerprint = keys.fingerprint();
    let first = new_bundle(study.id, "S0001", "V1", &fingerprint);
    db.register_ingest(&first, &NewCase::default())
        .await
        .expect("first ingest");

    // Same object key, different visit: the bundle insert fails after the label was taken.
    let mut duplicate_key = new_bundle(study.id, "S0002", "V1", &fingerprint);
    duplicate_key.object_key = first.object_key.clone();
    let err = db
        .register_ingest(&duplicate_key, &NewCase::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            DbError::Conflict {
                what: "bundle object key"
            }
        ),
        "{err:?}"
    );

    // A prior bundle that does not exist: the bundle insert succeeds, the case insert fails.
    let orphan = new_bundle(study.id, "S0003", "V1", &fingerprint);
    let err = db
        .register_ingest(
            &orphan,
            &NewCase {
                prior_bundle_id: Some(Uuid::now_v7()),
                ground_truth: None,
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, DbError::NotFound), "{err:?}");

    // Neither failure left a bundle, a case, or a gap in the labels.
    let cases = db.list_cases(study.id).await.expect("list");
    let labels: Vec<&str> = cases
        .iter()
        .map(|summary| summary.case.label.as_str())
        .collect();
    assert_eq!(labels, ["C-0001"]);
    let (_, case) = db
        .register_ingest(&orphan, &NewCase::default())
        .await
        .expect("the orphan's bundle was rolled back, so it can be ingested now");
    assert_eq!(case.label, "C-0002");
    duplicate_key.object_key = "bundles/fresh-key.age".to_owned();
    let (_, case) = db
        .register_ingest(&duplicate_key, &NewCase::default())
        .await
        .expect("nothing of the duplicate-key attempt was kept");
    assert_eq!(case.label, "C-0003");
}

async fn missing_rows_are_not_found(db: &Db) {
    let nobody = Uuid::now_v7();
    let not_found = |result: Result<_, DbError>, what: &str| match result {
        Err(DbError::NotFound) => {}
        other => panic!("{what}: expected NotFound, got {:?}", other.map(|_| ())),
    };
    not_found(db.user_by_id(nobody).await.map(drop), "user_by_id");
    not_found(
        db.user_by_username("nobody").await.map(drop),
        "user_by_username",
    );
    not_found(db.study_by_id(nobody).await.map(drop), "study_by_id");
    not_found(
        db.study_by_code(&code("NONE")).await.map(drop),
        "study_by_code",
    );
    not_found(
        db.set_study_recipients(nobody, &recipients("age1x"))
            .await
            .map(drop),
        "set_study_recipients",
    );
    not_found(db.bundle_by_id(nobody).await.map(drop), "bundle_by_id");
    not_found(db.case_by_id(nobody).await.map(drop), "case_by_id");
    not_found(
        db.case_ground_truth(nobody).await.map(drop),
        "case_ground_truth",
    );
    not_found(
        db.set_case_ground_truth(nobody, Some(&json!({}))).await,
        "set_case_ground_truth",
    );
    // References to missing rows.
    not_found(
        db.grant_role(nobody, Role::Grader, None, None)
            .await
            .map(drop),
        "grant_role to a missing user",
    );
    not_found(
        db.register_ingest(
            &new_bundle(nobody, "S1", "V1", &"0".repeat(64)),
            &NewCase::default(),
        )
        .await
        .map(drop),
        "register_ingest into a missing study",
    );
    not_found(
        db.assign(nobody, nobody, AssignmentRole::Grader, None)
            .await
            .map(drop),
        "assign a missing case",
    );
    // Listings of unknown owners are empty, not errors.
    assert!(db.roles_of(nobody).await.expect("roles").is_empty());
    assert!(db.list_cases(nobody).await.expect("cases").is_empty());
    assert!(
        db.assignments_for_user(nobody)
            .await
            .expect("work")
            .is_empty()
    );
}

async fn concurrent_ingests_get_distinct_labels(db: &Db) {
    let keys = recipients("age1one");
    let study = db
        .create_study(&code("RACE"), "Race", &keys)
        .await
        .expect("study");
    let fingerprint = keys.fingerprint();
    let mut tasks = tokio::task::JoinSet::new();
    for idx in 0..20 {
        let db = db.clone();
        let bundle = new_bundle(study.id, &format!("S{idx:04}"), "V1", &fingerprint);
        tasks.spawn(async move { db.register_ingest(&bundle, &NewCase::default()).await });
    }
    let mut labels = BTreeSet::new();
    while let Some(joined) = tasks.join_next().await {
        let (_, case) = joined.expect("task").expect("concurrent ingest");
        assert!(
            labels.insert(case.label.clone()),
            "duplicate {}",
            case.label
        );
    }
    let expected: BTreeSet<String> = (1..=20).map(|n| format!("C-{n:04}")).collect();
    assert_eq!(labels, expected);
    assert_eq!(db.list_cases(study.id).await.expect("list").len(), 20);
}

async fn migrate_is_idempotent(db: &Db) {
    let user = db.create_user(&new_user("kept")).await.expect("user");
    db.migrate().await.expect("second migrate");
    db.migrate().await.expect("third migrate");
    assert_eq!(db.user_by_id(user.id).await.expect("still there"), user);
}

#[tokio::test]
async fn connect_errors_do_not_reveal_passwords() {
    // Port 1 on loopback refuses connections at once.
    let url = "postgres://readroom:sw0rdf1sh@127.0.0.1:1/readroom";
    let err = Db::connect(url).await.unwrap_err();
    assert!(matches!(err, DbError::Unavailable { .. }), "{err:?}");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("sw0rdf1sh"), "{shown}");
    assert!(shown.contains("readroom:***@127.0.0.1:1"), "{shown}");

    let err = Db::connect("mysql://root:sw0rdf1sh@localhost/x")
        .await
        .unwrap_err();
    assert!(matches!(err, DbError::Unavailable { .. }), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("sw0rdf1sh"));
}

#[tokio::test]
async fn debug_output_redacts_the_password() {
    let database = PgDatabase::create()
        .await
        .expect("fresh PostgreSQL database");
    // Give the URL a password if it has none; under trust authentication PostgreSQL ignores it.
    let (scheme, rest) = database.url.split_once("://").expect("a URL");
    let (user_info, host) = rest.split_once('@').expect("the harness URL names a user");
    let (user, password) = match user_info.split_once(':') {
        Some((user, password)) => (user, password.to_owned()),
        None => (user_info, "sw0rdf1sh".to_owned()),
    };
    let url = format!("{scheme}://{user}:{password}@{host}");
    let db = Db::connect(&url).await.expect("connect");
    let shown = format!("{db:?} {}", db.redacted_url());
    assert!(!shown.contains(&password), "{shown}");
    assert!(shown.contains(&format!("{user}:***@")), "{shown}");
    db.close().await;
}

/// Sign-in counters live in the database, so every replica counts the same attempts: per
/// address per one-minute window, and failures of names without an account, which lock like
/// accounts (and a lock is kept through the purge).
async fn signin_counters(db: &Db) {
    let now = 1_700_000_040; // the start of a minute
    for expected in 1..=3 {
        assert_eq!(
            db.count_signin_attempt("10.0.0.1", now + expected)
                .await
                .unwrap(),
            expected
        );
    }
    assert_eq!(db.count_signin_attempt("10.0.0.2", now).await.unwrap(), 1);
    // The next minute starts over.
    assert_eq!(
        db.count_signin_attempt("10.0.0.1", now + 60).await.unwrap(),
        1
    );

    let lock_for = |lockouts: i64| 60 << lockouts;
    let name = "a".repeat(64);
    assert_eq!(db.phantom_locked_until(&name, now).await.unwrap(), None);
    assert_eq!(
        db.record_phantom_failure(&name, 3, now, lock_for)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        db.record_phantom_failure(&name, 3, now, lock_for)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        db.record_phantom_failure(&name, 3, now, lock_for)
            .await
            .unwrap(),
        Some(now + 60)
    );
    assert_eq!(
        db.phantom_locked_until(&name, now + 59).await.unwrap(),
        Some(now + 60)
    );
    assert_eq!(
        db.phantom_locked_until(&name, now + 60).await.unwrap(),
        None
    );
    // The second lock is twice as long.
    for _ in 0..2 {
        assert_eq!(
            db.record_phantom_failure(&name, 3, now + 100, lock_for)
                .await
                .unwrap(),
            None
        );
    }
    assert_eq!(
        db.record_phantom_failure(&name, 3, now + 100, lock_for)
            .await
            .unwrap(),
        Some(now + 220)
    );
    // A purge forgets old windows and unlocked names, not a name still locked.
    let other = "b".repeat(64);
    db.record_phantom_failure(&other, 3, now, lock_for)
        .await
        .unwrap();
    let purged = db.purge_signin_counters(now + 150).await.unwrap();
    assert_eq!(purged, 3, "two throttle windows and one unlocked name");
    assert_eq!(
        db.phantom_locked_until(&name, now + 150).await.unwrap(),
        Some(now + 220)
    );
    assert_eq!(
        db.count_signin_attempt("10.0.0.1", now + 60).await.unwrap(),
        1
    );
}

/// The worker-recorded lossless frames: recorded once, found by user + case + hash, and summed
/// (their full-resolution cost) over a time window for the lossless budget.
async fn lossless_frames(db: &Db) {
    use readroom_server::db::lossless_frames::LosslessFrame;
    let (user, other_user, case) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let frame = |stream: u128, n: i64, user: Uuid, sent: i64| LosslessFrame {
        stream_id: Uuid::from_u128(stream),
        frame: n,
        user_id: user,
        case_id: case,
        sha256: format!("{n:064x}"),
        bytes: 1000,
        revealed_px: 3_000_000_000,
        state: "{}".into(),
        sent_unix: sent,
        mark: (n == 1).then(|| {
            r#"{"label":"g","session":"00000000-0000-0000-0000-000000000001","unix_minute":1}"#
                .into()
        }),
    };
    assert!(
        db.record_lossless_frame(&frame(1, 1, user, 100))
            .await
            .unwrap()
    );
    assert!(
        !db.record_lossless_frame(&frame(1, 1, user, 100))
            .await
            .unwrap(),
        "once"
    );
    assert!(
        db.record_lossless_frame(&frame(1, 2, user, 200))
            .await
            .unwrap()
    );
    assert!(
        db.record_lossless_frame(&frame(2, 3, other_user, 200))
            .await
            .unwrap()
    );
    let sent = db
        .lossless_frames_sent(user, case, &format!("{:064x}", 2))
        .await
        .unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].revealed_px, 3_000_000_000);
    assert_eq!(sent[0].mark, None);
    // The watermark a frame carried is kept with it (for `readroom grade verify`).
    let first = db
        .lossless_frames_sent(user, case, &format!("{:064x}", 1))
        .await
        .unwrap();
    assert!(first[0].mark.as_deref().unwrap().contains("unix_minute"));
    assert!(
        db.lossless_frames_sent(user, case, &format!("{:064x}", 3))
            .await
            .unwrap()
            .is_empty()
    );
    // Past 2³¹ in total: the sum is a 64-bit integer on both databases.
    assert_eq!(
        db.lossless_px_shown(user, case, 0).await.unwrap(),
        6_000_000_000
    );
    assert_eq!(
        db.lossless_px_shown(user, case, 150).await.unwrap(),
        3_000_000_000
    );
    assert_eq!(
        db.lossless_px_shown(user, Uuid::new_v4(), 0).await.unwrap(),
        0
    );
}

/// A decoded watermark carries the first 8 bytes of the viewer session id: the sessions with
/// that prefix (and only those) are found, with their owner, on both databases.
async fn viewer_sessions_by_watermark_prefix(db: &Db) {
    let user = db.create_user(&new_user("marked")).await.unwrap().id;
    let other = db.create_user(&new_user("other")).await.unwrap().id;
    let mut ids = Vec::new();
    for (n, who) in [(0, user), (1, other), (2, user)] {
        ids.push((
            db.issue_viewer_session(who, Uuid::new_v4(), 1_800_000_000 + n)
                .await
                .unwrap(),
            who,
        ));
    }
    for (id, who) in &ids {
        let mut prefix = [0u8; 8];
        prefix.copy_from_slice(&id.as_bytes()[..8]);
        let found = db.viewer_sessions_with_prefix(prefix).await.unwrap();
        assert_eq!(found.len(), 1, "{id}: {found:?}");
        assert_eq!((found[0].0, found[0].1), (*id, *who));
    }
    assert!(
        db.viewer_sessions_with_prefix([0xff, 0xfe, 0, 0, 0, 0, 0, 1])
            .await
            .unwrap()
            .is_empty()
    );
}

/// A grade or adjudication round whose stored JSON was damaged behind the application's back
/// (a hand edit, a faulty migration) is an error naming the column when read, on both databases:
/// never `null` values that an export would write as empty cells or statistics would skip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_json_that_does_not_parse_is_an_error_naming_the_column() {
    for test_db in [TestDb::sqlite().await, TestDb::postgres().await] {
        let db = &test_db.db;
        let user = db.create_user(&new_user("grader")).await.expect("user");
        let keys = recipients("age1demo");
        let study = db
            .create_study(&code("DEMO"), "Demo", &keys)
            .await
            .expect("study");
        let (_, case) = db
            .register_ingest(
                &new_bundle(study.id, "S1", "V1", &keys.fingerprint()),
                &NewCase::default(),
            )
            .await
            .expect("case");
        let assignment = db
            .assign(case.id, user.id, AssignmentRole::Grader, None)
            .await
            .expect("assignment");
        let form = db
            .set_form(study.id, "{}", &"f".repeat(64), None)
            .await
            .expect("form");
        let grade = db
            .submit_grade(
                &assignment,
                &NewGrade {
                    assignment_id: assignment.id,
                    form_id: form.id,
                    grade_values: r#"{"dr_grade":{"OD":2}}"#.into(),
                    render_state: None,
                    lossless_sha256: None,
                    reason: None,
                },
            )
            .await
            .expect("grade");
        assert_eq!(grade.values["dr_grade"]["OD"], 2, "values are read parsed");
        assert!(grade.render_state.is_none());

        let damage = |sql: &'static str| {
            let url = test_db.url.clone();
            async move {
                let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
                    .await
                    .expect("raw connection");
                sqlx::query(sql)
                    .execute(&mut conn)
                    .await
                    .expect("damage the row");
            }
        };
        sqlx::any::install_default_drivers();
        // JSON, but not the object of values a grade holds: refused when read, on both.
        damage("UPDATE grades SET grade_values = '[1, 2]'").await;
        for err in [
            db.grades_of_study(study.id).await.unwrap_err(),
            db.grade_by_id(grade.id).await.unwrap_err(),
            db.grades_of_case(case.id).await.unwrap_err(),
        ] {
            let text = err.to_string();
            assert!(matches!(err, DbError::Other(_)), "{text}");
            assert!(text.contains("grade_values"), "names the column: {text}");
            assert!(
                text.contains("not an object: found a list"),
                "says what was expected: {text}"
            );
        }
        // Not JSON at all: SQLite's schema refuses to store it (`json_valid`); PostgreSQL's
        // text column takes it, and the read refuses it.
        damage("UPDATE grades SET grade_values = '{}', render_state = 'not json'").await;
        let text = db
            .grades_of_assignment(assignment.id)
            .await
            .unwrap_err()
            .to_string();
        assert!(text.contains("render_state"), "{text}");
        if db.backend() == Backend::Postgres {
            damage("UPDATE grades SET grade_values = '{\"dr_grade\": ', render_state = NULL").await;
            let text = db.grade_by_id(grade.id).await.unwrap_err().to_string();
            assert!(text.contains("grade_values"), "{text}");
        }
        test_db.db.close().await;
    }
}
