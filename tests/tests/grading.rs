//! The grading workflow through the HTTP API, against the real server and database (each test
//! on SQLite and on PostgreSQL): a coordinator sets the form and forms a batch of ingested demo
//! bundles; two graders grade blind; a disagreement reaches the adjudicator, who resolves it;
//! progress, agreement and exports show the result. Also concurrency (simultaneous and double
//! submissions, stale drafts), bad inputs (each refused with a clear error, nothing lost) and
//! Cohen's kappa through the API on a published worked example.

use crate::support;

use readroom_server::db::{AssignmentRole, Backend, Case, Role, StudyCode, User};
use serde_json::{Value, json};
use support::{Browser, Reply, TestApp};
use uuid::Uuid;

/// A complete ICDR grade with the given DR levels (OD, OS) and no DME.
fn icdr(od: i64, os: i64) -> Value {
    json!({
        "dr_grade": { "OD": od, "OS": os },
        "dme": { "OD": "none", "OS": "none" },
    })
}

async fn put(browser: &mut Browser, path: &str, body: Value) -> Reply {
    browser.send("PUT", path, Some(body)).await
}

fn expect(reply: &Reply, status: u16, what: &str) {
    assert_eq!(reply.status, status, "{what}: {}", reply.body);
}

/// The demo study with a coordinator, two graders and an adjudicator (no assignments yet).
struct Team {
    app: TestApp,
    coordinator: User,
    graders: [User; 2],
    adjudicator: User,
}

impl Team {
    async fn new(backend: Backend) -> Team {
        let app = TestApp::start_demo(backend).await;
        let study = app.demo_study().await.id;
        let coordinator = app.user("coord", &[(Role::Coordinator, Some(study))]).await;
        let graders = [
            app.user("grader.one", &[(Role::Grader, Some(study))]).await,
            app.user("grader.two", &[(Role::Grader, Some(study))]).await,
        ];
        let adjudicator = app
            .user("adjudicator", &[(Role::Adjudicator, Some(study))])
            .await;
        Team {
            app,
            coordinator,
            graders,
            adjudicator,
        }
    }
}

/// A small study of `cases` metadata-only cases with the ICDR form, every case assigned to both
/// graders; returns the app, the cases (in label order) and the graders.
async fn small_study(backend: Backend, cases: usize) -> (TestApp, Vec<Case>, [User; 2], User) {
    let app = TestApp::start(backend).await;
    let study = app.study("SMALL").await;
    let mut all = Vec::new();
    for n in 0..cases {
        all.push(app.case(study, &format!("S{n:04}")).await);
    }
    let graders = [
        app.user("g.one", &[(Role::Grader, Some(study))]).await,
        app.user("g.two", &[(Role::Grader, Some(study))]).await,
    ];
    let coordinator = app
        .user("c.small", &[(Role::Coordinator, Some(study))])
        .await;
    let mut coord = app.sign_in(&coordinator).await;
    expect(
        &put(
            &mut coord,
            "/api/studies/SMALL/form",
            json!({ "preset": "icdr" }),
        )
        .await,
        200,
        "set form",
    );
    let batch = coord
        .post(
            "/api/studies/SMALL/batches",
            json!({ "name": "all", "per_case": 2 }),
        )
        .await;
    expect(&batch, 201, "batch");
    assert_eq!(batch.body["assignments"], json!(cases * 2));
    (app, all, graders, coordinator)
}

async fn workflow_end_to_end(backend: Backend) {
    let team = Team::new(backend).await;
    let app = &team.app;
    let mut coord = app.sign_in(&team.coordinator).await;

    // The coordinator sets the form and forms a batch over every ingested demo case.
    let form = put(
        &mut coord,
        "/api/studies/DEMO/form",
        json!({ "preset": "icdr" }),
    )
    .await;
    expect(&form, 200, "set form");
    assert_eq!(form.body["definition"]["code"], "icdr");
    let got = coord.get("/api/studies/DEMO/form").await;
    expect(&got, 200, "get form");
    assert_eq!(got.body["fingerprint"], form.body["fingerprint"]);
    let cases = coord.get("/api/studies/DEMO/cases").await;
    expect(&cases, 200, "cases");
    let case_count = cases.body.as_array().unwrap().len();
    assert!(case_count >= 2, "demo has {case_count} cases");
    let batch = coord
        .post(
            "/api/studies/DEMO/batches",
            json!({
                "name": "Round 1",
                "graders": ["grader.one", "grader.two"],
                "per_case": 2,
                "due_at": "2030-01-01T00:00:00Z",
            }),
        )
        .await;
    expect(&batch, 201, "batch");
    assert_eq!(batch.body["cases"], json!(case_count));
    assert_eq!(batch.body["assignments"], json!(case_count * 2));
    // The same name again is a conflict, and there is nothing left to batch anyway.
    let again = coord
        .post("/api/studies/DEMO/batches", json!({ "name": "Round 1" }))
        .await;
    assert!(matches!(again.status, 400 | 409), "{}", again.body);
    // Picked cases that already have their graders: refused, saying why, and no empty batch.
    let full = coord
        .post(
            "/api/studies/DEMO/batches",
            json!({
                "name": "Nothing new",
                "cases": [cases.body[0]["case_id"]],
                "graders": ["grader.one", "grader.two"],
                "per_case": 2,
            }),
        )
        .await;
    assert_eq!(full.status, 400, "{}", full.body);
    assert!(
        full.body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("nothing to assign: every case already has 2 graders"),
        "{}",
        full.body
    );
    // Named, with its value, so the viewer words it in the coordinator's language.
    assert_eq!(full.body["error"]["code"], "bad_request", "{}", full.body);
    assert_eq!(
        full.body["error"]["reason"], "nothing_to_assign",
        "{}",
        full.body
    );
    assert_eq!(full.body["error"]["params"]["per_case"], 2, "{}", full.body);
    let batches = coord.get("/api/studies/DEMO/batches").await;
    assert!(
        !batches.body.to_string().contains("Nothing new"),
        "{}",
        batches.body
    );

    // Both graders see every case, due, in the same order.
    let mut one = app.sign_in(&team.graders[0]).await;
    let mut two = app.sign_in(&team.graders[1]).await;
    let list_one = one.get("/api/worklist").await;
    expect(&list_one, 200, "worklist");
    let items = list_one.body.as_array().unwrap();
    assert_eq!(items.len(), case_count);
    assert!(items.iter().all(|i| i["status"] == "assigned"
        && i["due_at"] == "2030-01-01T00:00:00Z"
        && i["role"] == "grader"));
    let first = items[0]["case_id"].as_str().unwrap().to_owned();
    let second = items[1]["case_id"].as_str().unwrap().to_owned();

    // Grader one: opens the form, autosaves twice, submits, and is sent to the next case.
    let opened = one.get(&format!("/api/cases/{first}/form")).await;
    expect(&opened, 200, "form");
    assert_eq!(opened.body["form"]["code"], "icdr");
    assert_eq!(opened.body["assignment"]["role"], "grader");
    assert_eq!(opened.body["draft"], Value::Null);
    assert_eq!(opened.body["grade"], Value::Null);
    assert_eq!(opened.body["next_case"], json!(second));
    let saved = put(
        &mut one,
        &format!("/api/cases/{first}/draft"),
        json!({ "values": { "dr_grade": { "OD": 1 } } }),
    )
    .await;
    expect(&saved, 200, "draft 1");
    let revision = saved.body["revision"].as_i64().unwrap();
    let saved = put(
        &mut one,
        &format!("/api/cases/{first}/draft"),
        json!({ "values": { "dr_grade": { "OD": 1, "OS": 0 } }, "revision": revision }),
    )
    .await;
    expect(&saved, 200, "draft 2");
    let reopened = one.get(&format!("/api/cases/{first}/form")).await;
    assert_eq!(
        reopened.body["draft"]["values"],
        json!({ "dr_grade": { "OD": 1, "OS": 0 } })
    );
    assert_eq!(reopened.body["assignment"]["status"], "in_progress");
    // Grade evidence is what the worker recorded: a lossless hash no worker sent to this
    // grader for this case is refused (here: sent to the other grader, then sent to nobody).
    let sha = "ab".repeat(32);
    let first_id: Uuid = first.parse().unwrap();
    let recorded = |user: Uuid, stream: u128| readroom_server::db::lossless_frames::LosslessFrame {
        stream_id: Uuid::from_u128(stream),
        frame: 7,
        user_id: user,
        case_id: first_id,
        sha256: sha.clone(),
        bytes: 1234,
        revealed_px: 500_000,
        state: json!({ "layout": "single", "slice": 12 }).to_string(),
        sent_unix: 1_800_000_000,
        mark: None,
    };
    app.db()
        .record_lossless_frame(&recorded(team.graders[1].id, 1))
        .await
        .unwrap();
    let unattested = one
        .post(
            &format!("/api/cases/{first}/grade"),
            json!({ "values": icdr(1, 0), "lossless_sha256": sha }),
        )
        .await;
    expect(
        &unattested,
        422,
        "a lossless frame never sent to this grader",
    );
    assert_eq!(
        unattested.body["error"]["problems"][0]["code"], "not_sent",
        "{}",
        unattested.body
    );
    assert!(
        app.db()
            .record_lossless_frame(&recorded(team.graders[0].id, 2))
            .await
            .unwrap()
    );
    let submitted = one
        .post(
            &format!("/api/cases/{first}/grade"),
            json!({ "values": icdr(1, 0), "lossless_sha256": sha,
                    "render_state": { "layout": "single", "slice": 12 } }),
        )
        .await;
    expect(&submitted, 201, "submit");
    assert_eq!(submitted.body["kind"], "grade");
    assert_eq!(submitted.body["version"], 1);
    assert_eq!(submitted.body["next_case"], json!(second));
    // One of the case's two gradings is in: nothing about it is final yet (issue 16).
    let label = items[0]["label"].as_str().unwrap();
    let early = coord.get("/api/studies/DEMO/export?format=csv").await;
    expect(&early, 200, "early csv");
    assert!(
        !early
            .body
            .as_str()
            .unwrap()
            .lines()
            .any(|l| l.split(',').any(|c| c == label)),
        "a case with one of two grades is not final: {}",
        early.body
    );

    // Grader two grades the same case differently (ICDR 1 vs 3 on OD: two steps and referable
    // status differ) and the second case the same as grader one will.
    let blind = two.get(&format!("/api/cases/{first}/form")).await;
    expect(&blind, 200, "form two");
    assert_eq!(blind.body["grade"], Value::Null, "grader two sees no grade");
    assert_eq!(blind.body["adjudication"], Value::Null);
    expect(
        &two.post(
            &format!("/api/cases/{first}/grade"),
            json!({ "values": icdr(3, 0) }),
        )
        .await,
        201,
        "submit two",
    );
    for browser in [&mut one, &mut two] {
        expect(
            &browser
                .post(
                    &format!("/api/cases/{second}/grade"),
                    json!({ "values": icdr(0, 0) }),
                )
                .await,
            201,
            "second case",
        );
    }
    // Blinding: grader one's view of the first case holds only their own grade.
    let own = one.get(&format!("/api/cases/{first}/form")).await;
    assert_eq!(own.body["grade"]["values"], icdr(1, 0));
    assert_eq!(own.body["grade"]["lossless_sha256"], json!(sha));
    let text = own.body.to_string();
    assert!(!text.contains("grader.two") && !text.contains(&team.graders[1].id.to_string()));
    let case_view = one.get(&format!("/api/cases/{first}")).await;
    assert_eq!(case_view.body["assignments"], Value::Null);

    // The disagreement reached the adjudicator (the study's only one), with both grades, blind.
    let mut adj = app.sign_in(&team.adjudicator).await;
    let queue = adj.get("/api/adjudications").await;
    expect(&queue, 200, "queue");
    let queue = queue.body.as_array().unwrap().clone();
    assert_eq!(queue.len(), 1, "only the disagreeing case: {queue:?}");
    assert_eq!(queue[0]["case_id"], json!(first));
    assert_eq!(queue[0]["status"], "open");
    assert_eq!(queue[0]["fields"], json!(["dr_grade:OD"]));
    assert_eq!(queue[0]["labels"][0]["label"]["en"], "DR grade (ICDR)");
    assert_eq!(queue[0]["labels"][0]["eye"], "OD");
    let worklist = adj.get("/api/worklist").await;
    assert_eq!(worklist.body.as_array().unwrap().len(), 1);
    assert_eq!(worklist.body[0]["role"], "adjudicator");
    let round = adj.get(&format!("/api/cases/{first}/form")).await;
    expect(&round, 200, "adjudicator form");
    assert_eq!(round.body["assignment"]["role"], "adjudicator");
    let adjudication = &round.body["adjudication"];
    assert_eq!(adjudication["round"], 1);
    assert_eq!(adjudication["disagreements"][0]["field"], "dr_grade");
    assert_eq!(adjudication["disagreements"][0]["eye"], "OD");
    assert_eq!(
        adjudication["disagreements"].as_array().unwrap().len(),
        1,
        "only the field that differs: {}",
        adjudication["disagreements"]
    );
    // Why, in the form's words (English and Korean), not internal names.
    let reason = &adjudication["disagreements"][0]["reason"];
    assert!(
        reason["en"]
            .as_str()
            .unwrap()
            .contains("DR grade (ICDR) ≥ Moderate NPDR"),
        "{reason}"
    );
    assert!(
        reason["ko"].as_str().unwrap().contains("당뇨망막병증 등급"),
        "{reason}"
    );
    assert!(!reason.to_string().contains("dr_grade"), "{reason}");
    // The adjudicator's form starts from what both grades agree on.
    assert_eq!(
        adjudication["prefill"],
        json!({ "dr_grade": { "OS": 0 }, "dme": { "OD": "none", "OS": "none" } })
    );
    let mut shown: Vec<Value> = adjudication["grades"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["values"]["dr_grade"]["OD"].clone())
        .collect();
    shown.sort_by_key(|v| v.as_i64());
    assert_eq!(
        shown,
        vec![json!(1), json!(3)],
        "both grades, in either order"
    );
    assert_eq!(adjudication["grades"][0]["label"], "A");
    assert!(!round.body.to_string().contains("grader.one"));
    // The adjudicator cannot see the agreeing case.
    expect(
        &adj.get(&format!("/api/cases/{second}/form")).await,
        404,
        "not in queue",
    );
    let resolved = adj
        .post(
            &format!("/api/cases/{first}/grade"),
            json!({ "values": icdr(2, 0) }),
        )
        .await;
    expect(&resolved, 201, "adjudicate");
    assert_eq!(resolved.body["kind"], "adjudication");
    // Adjudicated: the graders' grades can no longer be amended (issue 16).
    let late = one
        .post(
            &format!("/api/cases/{first}/amendments"),
            json!({ "values": icdr(2, 0), "reason": "changed my mind" }),
        )
        .await;
    expect(&late, 409, "amend after adjudication");
    assert!(
        late.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("adjudicated"),
        "{}",
        late.body
    );
    assert_eq!(
        app.db()
            .grades_of_case(Uuid::parse_str(&first).unwrap())
            .await
            .unwrap()
            .len(),
        2
    );
    let queue = adj.get("/api/adjudications").await;
    assert_eq!(queue.body[0]["status"], "resolved");
    // Final: no second adjudication, no amendment of it.
    expect(
        &adj.post(
            &format!("/api/cases/{first}/grade"),
            json!({ "values": icdr(2, 0) }),
        )
        .await,
        409,
        "adjudicate twice",
    );

    // Progress and agreement for the coordinator (with names) and the auditor (read-only).
    let progress = coord.get("/api/studies/DEMO/progress").await;
    expect(&progress, 200, "progress");
    let p = &progress.body;
    assert_eq!(p["cases"]["total"], json!(case_count));
    assert_eq!(p["cases"]["graded"], 2);
    assert_eq!(p["cases"]["adjudicated"], 1);
    assert_eq!(p["grading"]["done"], 4);
    assert_eq!(p["grading"]["total"], json!(case_count * 2));
    assert_eq!(p["adjudications"]["resolved"], 1);
    assert_eq!(p["batches"][0]["name"], "Round 1");
    let names = p["names"].as_object().unwrap();
    assert_eq!(names[&team.graders[0].id.to_string()], json!("grader.one"));
    let auditor = app.user("aud", &[(Role::Auditor, None)]).await;
    let mut aud = app.sign_in(&auditor).await;
    expect(
        &aud.get("/api/studies/DEMO/agreement").await,
        200,
        "auditor agreement",
    );
    let refused = aud.get("/api/studies/DEMO/export?format=csv").await;
    expect(&refused, 403, "auditor export");
    assert_eq!(refused.code(), "forbidden");
    let agreement = coord.get("/api/studies/DEMO/agreement").await;
    expect(&agreement, 200, "agreement");
    let od = agreement.body["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["column"] == "dr_grade_od")
        .expect("dr_grade OD pair")
        .clone();
    assert_eq!(od["n"], 2);
    assert_eq!(od["percent_agreement"], 50.0);
    // Two cases are too few for a kappa: undefined, not "0 (0 – 0)" (issue 16).
    assert_eq!(od["kappa"], Value::Null, "{od}");
    assert_eq!(od["quadratic_kappa"], Value::Null, "{od}");
    // The demo's synthetic cases carry ground truth: each grader's and the final grades'
    // agreement with it, on the eyes graded so far.
    let truth = agreement.body["ground_truth"].as_array().unwrap();
    let row = |grader: &str| {
        truth
            .iter()
            .find(|t| t["grader"] == grader && t["column"] == "dr_grade_od")
            .unwrap_or_else(|| panic!("no dr_grade_od truth row for {grader}: {truth:?}"))
    };
    // Grader one gave OD levels 1 and 0 to the first two cases; the truth is in the database.
    let mut expected_hits = 0;
    let mut with_truth = 0;
    for (case, given) in [(&first, 1), (&second, 0)] {
        let id = Uuid::parse_str(case).unwrap();
        if let Some(gt) = app.db().case_ground_truth(id).await.unwrap() {
            let od = gt["eyes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["eye"] == "OD")
                .unwrap();
            with_truth += 1;
            expected_hits += i32::from(od["grades"]["icdr_level"] == json!(given));
        }
    }
    assert!(
        with_truth > 0,
        "the demo's first cases are synthetic, with truth"
    );
    let one_row = row(&team.graders[0].id.to_string());
    assert_eq!(one_row["n"], json!(with_truth));
    assert_eq!(
        one_row["percent_agreement"].as_f64().unwrap(),
        100.0 * f64::from(expected_hits) / f64::from(with_truth)
    );
    assert_eq!(row("final")["n"], json!(with_truth));

    // Exports: the final grade of the first case is the adjudicated one.
    let csv = coord.get("/api/studies/DEMO/export?format=csv").await;
    expect(&csv, 200, "csv");
    assert!(
        csv.headers["content-disposition"]
            .to_str()
            .unwrap()
            .contains("DEMO-grades.csv")
    );
    let text = csv.body.as_str().unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let column = header.iter().position(|h| *h == "dr_grade_od").unwrap();
    let label = items[0]["label"].as_str().unwrap();
    let row: Vec<&str> = text
        .lines()
        .find(|l| l.split(',').any(|c| c == label))
        .unwrap()
        .split(',')
        .collect();
    assert_eq!(row[column], "2", "{text}");
    let versions = coord
        .get("/api/studies/DEMO/export?format=csv&table=versions")
        .await;
    expect(&versions, 200, "versions");
    let dictionary = coord
        .get("/api/studies/DEMO/export?format=csv&table=dictionary")
        .await;
    assert!(dictionary.body.as_str().unwrap().contains("dr_grade_od"));
    let json_export = coord.get("/api/studies/DEMO/export?format=json").await;
    expect(&json_export, 200, "json export");
    assert_eq!(json_export.body["format"], "readroom-export/1");
    for bad in [
        "/api/studies/DEMO/export?format=xml",
        "/api/studies/DEMO/export?format=csv&table=secrets",
        "/api/studies/DEMO/export?format=json&table=grades",
    ] {
        let reply = coord.get(bad).await;
        expect(&reply, 400, bad);
        assert_eq!(reply.code(), "bad_request");
    }

    // Every step is in the audit log.
    let events = app.db().audit_page(0, 10_000).await.unwrap();
    let count = |action: &str| events.iter().filter(|e| e.action == action).count();
    assert_eq!(count("grade.submitted"), 4);
    assert_eq!(count("adjudication.submitted"), 1);
    assert_eq!(count("batch.created"), 1);
    assert_eq!(count("study.form_changed"), 1);
    assert_eq!(
        count("export.downloaded"),
        5,
        "refused exports are not downloads"
    );
    assert!(count("grade.draft_saved") >= 2);
}

async fn concurrent_and_double_submissions(backend: Backend) {
    let (app, cases, graders, _) = small_study(backend, 3).await;
    let mut one = app.sign_in(&graders[0]).await;
    let mut two = app.sign_in(&graders[1]).await;
    let path = format!("/api/cases/{}/grade", cases[0].id);

    // Both graders submit at once, disagreeing: both stored, exactly one round opened.
    let (a, b) = tokio::join!(
        one.post(&path, json!({ "values": icdr(0, 0) })),
        two.post(&path, json!({ "values": icdr(4, 0) })),
    );
    expect(&a, 201, "grader one");
    expect(&b, 201, "grader two");
    let rounds = app.db().adjudications_of_case(cases[0].id).await.unwrap();
    assert_eq!(rounds.len(), 1, "one round: {rounds:?}");

    // A grader double-submits (two tabs): one stored, the other refused.
    let path = format!("/api/cases/{}/grade", cases[1].id);
    let mut tab = Browser::new(&app);
    tab.cookie = one.cookie.clone();
    tab.csrf = one.csrf.clone();
    let (a, b) = tokio::join!(
        one.post(&path, json!({ "values": icdr(1, 1) })),
        tab.post(&path, json!({ "values": icdr(2, 2) })),
    );
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409], "{} / {}", a.body, b.body);
    let grades = app.db().grades_of_case(cases[1].id).await.unwrap();
    assert_eq!(grades.len(), 1);

    // Stale drafts: a save naming an older revision is refused and loses nothing.
    let draft = format!("/api/cases/{}/draft", cases[2].id);
    let first = put(
        &mut one,
        &draft,
        json!({ "values": { "dr_grade": { "OD": 1 } } }),
    )
    .await;
    expect(&first, 200, "first save");
    let rev = first.body["revision"].clone();
    let newer = put(
        &mut tab,
        &draft,
        json!({ "values": { "dr_grade": { "OD": 2 } }, "revision": rev }),
    )
    .await;
    expect(&newer, 200, "newer save");
    let stale = put(
        &mut one,
        &draft,
        json!({ "values": { "dr_grade": { "OD": 3 } }, "revision": rev }),
    )
    .await;
    expect(&stale, 409, "stale save");
    assert_eq!(stale.code(), "conflict");
    let form = one.get(&format!("/api/cases/{}/form", cases[2].id)).await;
    assert_eq!(form.body["draft"]["values"]["dr_grade"]["OD"], 2);
    assert_eq!(form.body["draft"]["revision"], newer.body["revision"]);
    // Two concurrent saves naming the same revision: exactly one wins.
    let rev = newer.body["revision"].clone();
    let (a, b) = tokio::join!(
        put(
            &mut one,
            &draft,
            json!({ "values": { "dr_grade": { "OD": 0 } }, "revision": rev })
        ),
        put(
            &mut tab,
            &draft,
            json!({ "values": { "dr_grade": { "OD": 4 } }, "revision": rev })
        ),
    );
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409], "{} / {}", a.body, b.body);
}

async fn bad_inputs_are_refused_and_lose_nothing(backend: Backend) {
    let (app, cases, graders, coordinator) = small_study(backend, 2).await;
    let mut one = app.sign_in(&graders[0]).await;
    let case = cases[0].id;
    let draft = format!("/api/cases/{case}/draft");
    let grade = format!("/api/cases/{case}/grade");
    expect(
        &put(
            &mut one,
            &draft,
            json!({ "values": { "dr_grade": { "OD": 2 } } }),
        )
        .await,
        200,
        "draft",
    );

    let problems = |reply: &Reply| -> Vec<(String, String, String)> {
        reply.body["error"]["problems"]
            .as_array()
            .unwrap_or(&Vec::new())
            .iter()
            .map(|p| {
                (
                    p["field"].as_str().unwrap_or("").to_owned(),
                    p["eye"].as_str().unwrap_or("").to_owned(),
                    p["code"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    };
    let cases_422 = [
        (
            json!({ "dr_grade": { "OD": 7, "OS": 0 }, "dme": { "OD": "none", "OS": "none" } }),
            ("dr_grade", "OD", "out_of_range"),
        ),
        (
            json!({ "dr_grade": { "OD": 1, "OS": 0 }, "dme": { "OD": "none", "OS": "none" }, "iop": 12 }),
            ("iop", "", "unknown_field"),
        ),
        (
            json!({ "dr_grade": { "OD": "two", "OS": 0 }, "dme": { "OD": "none", "OS": "none" } }),
            ("dr_grade", "OD", "wrong_type"),
        ),
        (
            json!({ "dr_grade": { "OD": 1 }, "dme": { "OD": "none", "OS": "none" } }),
            ("dr_grade", "OS", "required"),
        ),
        (
            json!({ "dr_grade": { "OD": 1, "OS": 0 }, "dme": { "OD": "maybe", "OS": "none" } }),
            ("dme", "OD", "not_an_option"),
        ),
        (json!([1, 2]), ("", "", "not_an_object")),
    ];
    for (values, (field, eye, code)) in cases_422 {
        let reply = one.post(&grade, json!({ "values": values })).await;
        expect(&reply, 422, &format!("{values}"));
        assert_eq!(reply.code(), "invalid_grade");
        let found = problems(&reply);
        assert!(
            found.contains(&(field.into(), eye.into(), code.into())),
            "{values}: expected {field}/{eye}/{code} in {found:?}"
        );
        assert!(
            reply.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(field)
        );
    }
    // Malformed requests: 400 naming the problem.
    for (body, needle) in [
        (json!({ "value": {} }), "values"),
        (json!({ "values": icdr(1, 1), "colour": "red" }), "colour"),
        (
            json!({ "values": icdr(1, 1), "lossless_sha256": "xyz" }),
            "lossless_sha256",
        ),
        (
            json!({ "values": icdr(1, 1), "render_state": "big" }),
            "render_state",
        ),
    ] {
        let reply = one.post(&grade, body.clone()).await;
        expect(&reply, 400, &format!("{body}"));
        assert!(
            reply.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(needle),
            "{}",
            reply.body
        );
    }
    // Nothing was lost: the draft is intact and nothing was submitted.
    let form = one.get(&format!("/api/cases/{case}/form")).await;
    assert_eq!(
        form.body["draft"]["values"],
        json!({ "dr_grade": { "OD": 2 } })
    );
    assert_eq!(form.body["grade"], Value::Null);
    assert!(app.db().grades_of_case(case).await.unwrap().is_empty());

    // Not assigned: the coordinator's own case view gives no form and no grade.
    let mut coord = app.sign_in(&coordinator).await;
    expect(
        &coord.post(&grade, json!({ "values": icdr(1, 1) })).await,
        404,
        "coordinator submits",
    );
    let outsider = app.user("outsider", &[]).await;
    let mut out = app.sign_in(&outsider).await;
    expect(
        &out.get(&format!("/api/cases/{case}/form")).await,
        404,
        "outsider",
    );
    expect(
        &out.post(
            &format!("/api/cases/{}/grade", Uuid::new_v4()),
            json!({ "values": {} }),
        )
        .await,
        404,
        "no such case",
    );

    // A submitted grade is immutable; an amendment is a new version with a reason.
    expect(
        &one.post(&grade, json!({ "values": icdr(2, 0) })).await,
        201,
        "submit",
    );
    expect(
        &one.post(&grade, json!({ "values": icdr(3, 0) })).await,
        409,
        "resubmit",
    );
    let late_draft = put(&mut one, &draft, json!({ "values": icdr(3, 0) })).await;
    expect(&late_draft, 409, "draft after submit");
    let amendments = format!("/api/cases/{case}/amendments");
    let no_reason = one
        .post(&amendments, json!({ "values": icdr(3, 0), "reason": "  " }))
        .await;
    expect(&no_reason, 400, "amend without reason");
    assert!(
        no_reason.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("reason")
    );
    let amended = one
        .post(
            &amendments,
            json!({ "values": icdr(3, 0), "reason": "missed neovascularisation on re-review" }),
        )
        .await;
    expect(&amended, 201, "amend");
    assert_eq!(amended.body["version"], 2);
    let versions = app.db().grades_of_case(case).await.unwrap();
    assert_eq!(versions.len(), 2, "the first version stays");
    let form = one.get(&format!("/api/cases/{case}/form")).await;
    assert_eq!(form.body["grade"]["version"], 2);
    assert_eq!(
        form.body["grade"]["reason"],
        "missed neovascularisation on re-review"
    );

    // Coordinator inputs: unknown preset, broken definition, bad batch parameters.
    let reply = put(
        &mut coord,
        "/api/studies/SMALL/form",
        json!({ "preset": "nope" }),
    )
    .await;
    expect(&reply, 400, "preset");
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("icdr")
    );
    let reply = put(
        &mut coord,
        "/api/studies/SMALL/form",
        json!({ "definition": { "schema": "readroom-form/1", "code": "x", "version": 1,
            "title": { "en": "x", "ko": "x" }, "fields": [] } }),
    )
    .await;
    expect(&reply, 400, "empty form");
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no fields")
    );
    for body in [
        json!({ "name": "b", "repeat_fraction": 0.9 }),
        json!({ "name": "", "cases": [cases[1].id] }),
        json!({ "name": "b", "graders": ["nobody.here"] }),
        json!({ "name": "b", "cases": [Uuid::new_v4()] }),
        json!({ "name": "b", "due_at": "tomorrow" }),
    ] {
        let reply = coord.post("/api/studies/SMALL/batches", body.clone()).await;
        expect(&reply, 400, &format!("{body}"));
    }
}

/// Cohen's kappa through the API on Wikipedia's worked example ("Cohen's kappa", section
/// "Simple example": 50 items, both yes 20, A yes / B no 5, A no / B yes 10, both no 15;
/// p_o = 0.7, p_e = 0.5, κ = 0.4). Here "yes" is ICDR level 1 and "no" level 0 on OD.
/// With two levels in use every disagreement has the same weight, so the quadratic-weighted
/// kappa is 0.4 as well.
async fn kappa_matches_a_published_example(backend: Backend) {
    let (app, cases, graders, coordinator) = small_study(backend, 50).await;
    let mut one = app.sign_in(&graders[0]).await;
    let mut two = app.sign_in(&graders[1]).await;
    let pairs = std::iter::repeat_n((1, 1), 20)
        .chain(std::iter::repeat_n((1, 0), 5))
        .chain(std::iter::repeat_n((0, 1), 10))
        .chain(std::iter::repeat_n((0, 0), 15));
    for (case, (a, b)) in cases.iter().zip(pairs) {
        let path = format!("/api/cases/{}/grade", case.id);
        expect(
            &one.post(&path, json!({ "values": icdr(a, 0) })).await,
            201,
            "one",
        );
        expect(
            &two.post(&path, json!({ "values": icdr(b, 0) })).await,
            201,
            "two",
        );
    }
    let mut coord = app.sign_in(&coordinator).await;
    let agreement = coord.get("/api/studies/SMALL/agreement").await;
    expect(&agreement, 200, "agreement");
    let od = agreement.body["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["column"] == "dr_grade_od")
        .expect("OD pair")
        .clone();
    assert_eq!(od["n"], 50);
    assert_eq!(od["percent_agreement"], 70.0);
    let close = |v: &Value, want: f64| (v.as_f64().unwrap() - want).abs() < 1e-9;
    assert!(close(&od["kappa"]["kappa"], 0.4), "{od}");
    assert!(close(&od["kappa"]["observed"], 0.7), "{od}");
    assert!(close(&od["kappa"]["expected"], 0.5), "{od}");
    assert!(close(&od["quadratic_kappa"]["kappa"], 0.4), "{od}");
    // 15 disagreeing cases went to adjudication (no adjudicator yet: they wait).
    let progress = coord.get("/api/studies/SMALL/progress").await;
    assert_eq!(progress.body["adjudications"]["open"], 15);
    assert_eq!(progress.body["cases"]["awaiting_adjudication"], 15);
}

/// A grader's hidden repeat stays hidden (issue 16): it is not served right after the grading of
/// the case it repeats, only once every first grading of the batch is done; it is then a row
/// of its own after the first gradings, under a masked label and its own address (not the case
/// id), with the batch's due date like every other row. Opening the original case by its id
/// still shows the grader's own first grade; the repeat starts blank and counts towards
/// intra-grader agreement.
async fn hidden_repeats_are_served_after_the_first_grade(backend: Backend) {
    let app = TestApp::start(backend).await;
    let study = app.study("REP").await;
    let mut cases = Vec::new();
    for n in 0..4 {
        cases.push(app.case(study, &format!("R{n:03}")).await);
    }
    let grader = app.user("g.rep", &[(Role::Grader, Some(study))]).await;
    let other = app.user("g.other", &[(Role::Grader, Some(study))]).await;
    let coordinator = app.user("c.rep", &[(Role::Coordinator, Some(study))]).await;
    let mut coord = app.sign_in(&coordinator).await;
    put(
        &mut coord,
        "/api/studies/REP/form",
        json!({ "preset": "icdr" }),
    )
    .await;
    let batch = coord
        .post(
            "/api/studies/REP/batches",
            json!({ "name": "r", "graders": ["g.rep"], "per_case": 1, "repeat_fraction": 0.5,
                    "due_at": "2030-01-01T00:00:00Z" }),
        )
        .await;
    expect(&batch, 201, "batch");
    assert_eq!(batch.body["assignments"], 6, "4 primary + 2 repeats");
    let mut g = app.sign_in(&grader).await;
    let list = g.get("/api/worklist").await;
    assert_eq!(
        list.body.as_array().unwrap().len(),
        4,
        "repeats hidden at first"
    );
    let repeated: Vec<Uuid> = app
        .db()
        .assignments_for_study(study)
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.kind == readroom_server::db::AssignmentKind::Repeat)
        .map(|a| a.case_id)
        .collect();
    assert_eq!(repeated.len(), 2);
    // The repeated cases first: their repeats must not show up while first gradings remain.
    let mut order: Vec<&Case> = cases.iter().filter(|c| repeated.contains(&c.id)).collect();
    order.extend(cases.iter().filter(|c| !repeated.contains(&c.id)));
    let case_ids: Vec<String> = cases.iter().map(|c| c.id.to_string()).collect();
    let mut last_next = Value::Null;
    for (n, case) in order.iter().enumerate() {
        let reply = g
            .post(
                &format!("/api/cases/{}/grade", case.id),
                json!({ "values": icdr(1, 2) }),
            )
            .await;
        expect(&reply, 201, "first grading");
        last_next = reply.body["next_case"].clone();
        if n + 1 == order.len() {
            break;
        }
        let list = g.get("/api/worklist").await;
        let rows = list.body.as_array().unwrap();
        assert_eq!(
            rows.len(),
            4,
            "after {n} + 1 first gradings no repeat is served yet: {}",
            list.body
        );
        assert!(
            rows.iter()
                .all(|r| !r["label"].as_str().unwrap().starts_with("M-")),
            "{}",
            list.body
        );
        // The graded case opens as itself, with the grader's grade.
        let form = g.get(&format!("/api/cases/{}/form", case.id)).await;
        expect(&form, 200, "graded case");
        assert_eq!(form.body["label"], json!(case.label));
        assert_eq!(form.body["grade"]["values"], icdr(1, 2));
        assert_eq!(form.body["assignment"]["status"], "done");
        // "Case k of 4": the hidden repeats are not counted before they are served.
        assert_eq!(form.body["progress"]["total"], 4, "{}", form.body);
        assert_eq!(form.body["progress"]["done"], n + 1, "{}", form.body);
        if let Some(next) = last_next.as_str() {
            assert!(
                case_ids.iter().any(|c| c == next),
                "{next} is a first grading"
            );
        }
    }
    let list = g.get("/api/worklist").await;
    let rows = list.body.as_array().unwrap();
    assert_eq!(rows.len(), 6, "{}", list.body);
    // The two repeats come after every first grading, as rows of their own.
    assert!(rows[..4].iter().all(|r| r["status"] == "done"));
    let open: Vec<&Value> = rows[4..].iter().collect();
    assert!(open.iter().all(|r| r["status"] != "done"));
    let labels: Vec<&str> = cases.iter().map(|c| c.label.as_str()).collect();
    for item in &open {
        let label = item["label"].as_str().unwrap();
        assert!(
            label.starts_with("M-") && !labels.contains(&label),
            "{item}"
        );
        assert_eq!(item["subject"], "masked");
        assert_eq!(item["visit"], "masked");
        // Its address is not the case id, and its due date is the batch's, like every row's.
        let address = item["case_id"].as_str().unwrap();
        assert!(!case_ids.iter().any(|c| c == address), "{item}");
        assert_eq!(item["due_at"], rows[0]["due_at"]);
    }
    assert!(
        open.iter().any(|r| r["case_id"] == last_next),
        "the last first grading leads to a repeat, by its address: {last_next}"
    );
    let mut shown: Vec<&str> = rows[..4]
        .iter()
        .map(|i| i["label"].as_str().unwrap())
        .collect();
    shown.sort_unstable();
    assert_eq!(
        shown, labels,
        "the first gradings stay listed under their labels"
    );
    // Opening a repeated case by its id shows the grader's first grade, not the repeat.
    for case in &repeated {
        let form = g.get(&format!("/api/cases/{case}/form")).await;
        assert_eq!(form.body["grade"]["values"], icdr(1, 2));
        assert!(labels.contains(&form.body["label"].as_str().unwrap()));
        let view = g.get(&format!("/api/cases/{case}")).await;
        assert!(labels.contains(&view.body["label"].as_str().unwrap()));
        assert_ne!(view.body["subject"], "masked");
    }
    // Each repeat, by its own address: blank, masked, and gradable.
    for item in &open {
        let address = item["case_id"].as_str().unwrap();
        let form = g.get(&format!("/api/cases/{address}/form")).await;
        expect(&form, 200, "repeat form");
        assert_eq!(form.body["grade"], Value::Null, "a repeat starts blank");
        assert_eq!(form.body["label"], item["label"]);
        assert_eq!(form.body["progress"]["total"], 6, "{}", form.body);
        assert_eq!(form.body["case_id"], json!(address));
        let view = g.get(&format!("/api/cases/{address}")).await;
        expect(&view, 200, "repeat case view");
        assert_eq!(view.body["label"], item["label"]);
        assert_eq!(view.body["subject"], "masked");
        assert_eq!(view.body["case_id"], json!(address));
        // Its streaming ticket, which the browser carries to the worker, is sealed: neither
        // the case id nor the bundle key can be read from it. The worker reads the case it
        // repeats, and the audit names that case, not the address.
        let minted = g
            .post(&format!("/api/cases/{address}/ticket"), json!({}))
            .await;
        expect(&minted, 200, "repeat ticket");
        let ticket = minted.body["ticket"].as_str().unwrap();
        assert!(ticket.starts_with("rt2."), "{ticket}");
        let claims = app
            .state
            .auth
            .tickets
            .verifier()
            .verify(&app.open_ticket(ticket), readroom_server::auth::now_unix())
            .unwrap();
        let behind: Uuid = claims.case.parse().unwrap();
        assert!(repeated.contains(&behind), "{claims:?}");
        for hidden in [claims.case.as_str(), claims.bundle.as_str()] {
            assert!(!ticket.contains(hidden), "{hidden} readable in {ticket}");
        }
        let events = app.db().audit_page(0, 10_000).await.unwrap();
        let issued = events
            .iter()
            .rfind(|e| e.action == "stream.ticket_issued")
            .unwrap();
        assert_eq!(
            issued.target.as_deref(),
            Some(format!("case:{behind}").as_str())
        );
        expect(
            &g.post(
                &format!("/api/cases/{address}/grade"),
                json!({ "values": icdr(1, 3) }),
            )
            .await,
            201,
            "repeat",
        );
        let again = g.get(&format!("/api/cases/{address}/form")).await;
        assert_eq!(again.body["grade"]["values"], icdr(1, 3));
    }
    for case in &repeated {
        let form = g.get(&format!("/api/cases/{case}/form")).await;
        assert_eq!(
            form.body["grade"]["values"],
            icdr(1, 2),
            "the first grade is still the case's"
        );
    }
    // A repeat's address is nobody else's way in.
    let mut stranger = app.sign_in(&other).await;
    let address = open[0]["case_id"].as_str().unwrap();
    expect(
        &stranger.get(&format!("/api/cases/{address}")).await,
        404,
        "someone else's repeat",
    );
    let agreement = coord.get("/api/studies/REP/agreement").await;
    let intra = agreement.body["intra"].as_array().unwrap();
    let os = intra.iter().find(|i| i["column"] == "dr_grade_os").unwrap();
    assert_eq!(os["n"], 2);
    assert_eq!(os["percent_agreement"], 0.0);
    // The coordinator reassigns nothing that is done.
    let done = app.db().assignments_for_study(study).await.unwrap()[0].id;
    let reply = coord
        .post(
            &format!("/api/studies/REP/assignments/{done}/reassign"),
            json!({}),
        )
        .await;
    expect(&reply, 409, "reassign done");
    assert_eq!(
        reply.body["error"]["reason"], "assignment_done",
        "{}",
        reply.body
    );
}

/// The `stream.started` event the server records when `user` starts streaming `case`.
async fn stream_started(app: &TestApp, user: &User, case: &str, stream_id: Uuid) {
    app.state
        .audit
        .record(readroom_server::audit::event_by(
            readroom_domain::audit::Action::StreamStarted,
            readroom_domain::audit::Outcome::Success,
            Some(user.id),
            Some(readroom_server::audit::case_target(
                Uuid::parse_str(case).unwrap(),
            )),
            None,
            json!({ "stream_id": stream_id }),
        ))
        .await
        .unwrap();
}

/// What the streaming worker reports when a viewing session ends (the real recording path).
async fn viewed(app: &TestApp, user: &User, case: &str, views: &[&str], stream_id: Uuid) {
    let report = readroom_worker::stream::SessionReport {
        stream_id,
        viewer_session: Uuid::new_v4().to_string(),
        user: user.id.to_string(),
        case: case.to_owned(),
        started_unix: 1_790_000_000,
        duration_ms: 4_200,
        frames: 30,
        views: views.iter().map(|v| (*v).to_owned()).collect(),
        lossless: Vec::new(),
        bytes_sent: 1000,
        messages: 3,
        refused: 0,
        end: readroom_worker::stream::EndReason::Closed,
    };
    readroom_server::streams::record(app.db(), &app.state.audit, &report)
        .await
        .unwrap();
}

/// Issue 16: a grade of both eyes made after the worker showed fundus OD alone is answered
/// with warnings naming what was not shown, and is an audit anomaly `graded_without_viewing`;
/// a grade made on everything it covers is neither. While a viewing session of the case has
/// reported nothing nothing is concluded at submission (`pending`); the anomaly rule counts that
/// session's views once its report arrives. A session that reports views as they are shown is
/// judged at once, and `require_viewed` refuses a grade covering what it did not show.
async fn grading_without_viewing_is_warned_and_flagged(backend: Backend) {
    let team = Team::new(backend).await;
    let app = &team.app;
    let mut coord = app.sign_in(&team.coordinator).await;
    put(
        &mut coord,
        "/api/studies/DEMO/form",
        json!({ "preset": "icdr" }),
    )
    .await;
    let batch = coord
        .post(
            "/api/studies/DEMO/batches",
            json!({ "name": "v", "graders": ["grader.one", "grader.two"], "per_case": 2 }),
        )
        .await;
    expect(&batch, 201, "batch");
    let mut one = app.sign_in(&team.graders[0]).await;
    let mut two = app.sign_in(&team.graders[1]).await;
    let items = one.get("/api/worklist").await.body;
    let (first, second) = (
        items[0]["case_id"].as_str().unwrap().to_owned(),
        items[1]["case_id"].as_str().unwrap().to_owned(),
    );
    // The fundus and OCT exams of the first case other than fundus OD: what was not shown.
    let mut expected: Vec<String> = items[0]["exams"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| matches!(e["kind"].as_str(), Some("fundus" | "oct")))
        .filter(|e| e["id"] != "fundus-od")
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    expected.sort();
    assert!(expected.contains(&"fundus-os".to_owned()), "{expected:?}");

    // Grader one: 4.2 s on fundus OD, then DR and DME for both eyes.
    viewed(
        app,
        &team.graders[0],
        &first,
        &["single:fundus-od"],
        Uuid::new_v4(),
    )
    .await;
    let reply = one
        .post(
            &format!("/api/cases/{first}/grade"),
            json!({ "values": icdr(1, 1) }),
        )
        .await;
    expect(&reply, 201, "submit");
    assert_eq!(reply.body["viewing"], "incomplete", "{}", reply.body);
    let warnings = reply.body["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .all(|w| w["code"] == "graded_without_viewing")
    );
    assert!(
        warnings
            .iter()
            .any(|w| w["eye"] == "OS" && w["exam"].is_null()),
        "the left eye was never shown: {warnings:?}"
    );
    let mut exams: Vec<String> = warnings
        .iter()
        .filter_map(|w| w["exam"].as_str().map(str::to_owned))
        .collect();
    exams.sort();
    assert_eq!(exams, expected);

    // Grader two saw both eyes' fundus and OCT: no warning.
    viewed(
        app,
        &team.graders[1],
        &first,
        &["both_eyes:fundus-od", "both_eyes:oct-od"],
        Uuid::new_v4(),
    )
    .await;
    let reply = two
        .post(
            &format!("/api/cases/{first}/grade"),
            json!({ "values": icdr(1, 1) }),
        )
        .await;
    expect(&reply, 201, "submit two");
    assert_eq!(reply.body["warnings"], json!([]), "{}", reply.body);
    assert_eq!(reply.body["viewing"], "complete");

    // Grader two on the second case, with a viewing session still open: pending. It then ends
    // having shown fundus OD only.
    let open_stream = Uuid::new_v4();
    stream_started(app, &team.graders[1], &second, open_stream).await;
    let reply = two
        .post(
            &format!("/api/cases/{second}/grade"),
            json!({ "values": icdr(0, 0) }),
        )
        .await;
    expect(&reply, 201, "submit while viewing");
    assert_eq!(reply.body["viewing"], "pending", "{}", reply.body);
    assert_eq!(reply.body["warnings"], json!([]));
    viewed(
        app,
        &team.graders[1],
        &second,
        &["single:fundus-od"],
        open_stream,
    )
    .await;

    // Grader one on the second case, with a viewing session still open whose worker reports
    // each view as it is first shown: known at once, not pending. Asked to refuse a grade that
    // covers what was not shown (the form does), the server says what and stores nothing; once
    // the worker has shown both eyes, the same request is stored as complete.
    let live_stream = Uuid::new_v4();
    stream_started(app, &team.graders[0], &second, live_stream).await;
    let shown = |view: &str| readroom_domain::workers::SessionEvent::Viewed {
        stream_id: live_stream,
        user: team.graders[0].id.to_string(),
        case: second.clone(),
        view: view.to_owned(),
    };
    let report = async |views: &[&str]| {
        for view in views {
            let event = shown(view);
            readroom_server::workers::events::handle(app.db(), &app.state.audit, "w1", &event)
                .await
                .unwrap();
        }
    };
    // Delivered twice: recorded once.
    report(&["single:fundus-od", "single:fundus-od"]).await;
    let strict = json!({ "values": icdr(1, 0), "require_viewed": true });
    let refused = one
        .post(&format!("/api/cases/{second}/grade"), strict.clone())
        .await;
    expect(&refused, 422, "graded without viewing, refused on request");
    let problems = refused.body["error"]["problems"].as_array().unwrap();
    assert!(
        problems
            .iter()
            .all(|p| p["code"] == "graded_without_viewing" && p["field"] == "viewing"),
        "{}",
        refused.body
    );
    assert!(
        problems
            .iter()
            .any(|p| p["eye"] == "OS" && p["exam"].is_null()),
        "{}",
        refused.body
    );
    assert!(
        problems
            .iter()
            .any(|p| p["exam"] == "oct-od" && p["kind"] == "oct"),
        "{}",
        refused.body
    );
    let form = one.get(&format!("/api/cases/{second}/form")).await;
    assert_eq!(form.body["grade"], Value::Null, "nothing stored");
    report(&["both_eyes:fundus-od", "both_eyes:oct-od"]).await;
    let stored = one
        .post(&format!("/api/cases/{second}/grade"), strict)
        .await;
    expect(&stored, 201, "graded after viewing");
    assert_eq!(stored.body["viewing"], "complete", "{}", stored.body);
    assert_eq!(stored.body["warnings"], json!([]));

    // The auditor sees both grades made without looking, naming what was not shown.
    let auditor = app.user("aud.v", &[(Role::Auditor, None)]).await;
    let mut aud = app.sign_in(&auditor).await;
    let flags = aud.get("/api/audit/anomalies").await;
    expect(&flags, 200, "anomalies");
    let unviewed: Vec<&Value> = flags
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "graded_without_viewing")
        .collect();
    assert_eq!(unviewed.len(), 2, "{}", flags.body);
    let of = |user: &User, case: &str| {
        unviewed
            .iter()
            .find(|f| {
                f["details"]["actor"] == json!(user.id.to_string())
                    && f["details"]["target"] == json!(format!("case:{case}"))
            })
            .unwrap_or_else(|| panic!("no flag for {} on {case}: {unviewed:?}", user.username))
    };
    assert_eq!(
        of(&team.graders[0], &first)["details"]["unviewed_eyes"],
        json!(["OS"])
    );
    assert_eq!(
        of(&team.graders[1], &second)["details"]["unviewed_eyes"],
        json!(["OS"])
    );
}

/// Reassignment when a grader is unavailable moves the unfinished assignment (and its case)
/// to another grader of the study, never to one already on the case.
async fn reassignment_moves_unfinished_work(backend: Backend) {
    let (app, cases, graders, coordinator) = small_study(backend, 2).await;
    let study = cases[0].study_id;
    let third = app.user("g.three", &[(Role::Grader, Some(study))]).await;
    let assignment = app
        .db()
        .assignments_for_case(cases[0].id)
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.user_id == graders[0].id && a.role == AssignmentRole::Grader)
        .unwrap();
    let mut coord = app.sign_in(&coordinator).await;
    let path = format!("/api/studies/SMALL/assignments/{}/reassign", assignment.id);
    let to_colleague = coord.post(&path, json!({ "username": "g.two" })).await;
    expect(&to_colleague, 400, "already on the case");
    let moved = coord.post(&path, json!({})).await;
    expect(&moved, 200, "reassign");
    assert_eq!(moved.body["username"], "g.three");
    let mut one = app.sign_in(&graders[0]).await;
    expect(
        &one.get(&format!("/api/cases/{}/form", cases[0].id)).await,
        404,
        "moved away",
    );
    let mut three = app.sign_in(&third).await;
    expect(
        &three.get(&format!("/api/cases/{}/form", cases[0].id)).await,
        200,
        "moved here",
    );
}

async fn rounds_go_to_the_least_loaded_adjudicator(backend: Backend) {
    let (app, cases, graders, _) = small_study(backend, 4).await;
    let study = cases[0].study_id;
    let adjudicators = [
        app.user("adj.a", &[(Role::Adjudicator, Some(study))]).await,
        app.user("adj.b", &[(Role::Adjudicator, Some(study))]).await,
    ];
    // A grader who is also an adjudicator never adjudicates a case they graded.
    app.user("g.one", &[(Role::Adjudicator, Some(study))]).await;
    let mut one = app.sign_in(&graders[0]).await;
    let mut two = app.sign_in(&graders[1]).await;
    for case in &cases {
        let path = format!("/api/cases/{}/grade", case.id);
        expect(
            &one.post(&path, json!({ "values": icdr(0, 0) })).await,
            201,
            "one",
        );
        expect(
            &two.post(&path, json!({ "values": icdr(3, 3) })).await,
            201,
            "two",
        );
    }
    let mut load = std::collections::HashMap::<Uuid, usize>::new();
    for case in &cases {
        let rounds = app.db().adjudications_of_case(case.id).await.unwrap();
        assert_eq!(rounds.len(), 1, "one round per disagreeing case");
        let assigned: Vec<Uuid> = app
            .db()
            .assignments_for_case(case.id)
            .await
            .unwrap()
            .into_iter()
            .filter(|a| a.role == AssignmentRole::Adjudicator)
            .map(|a| a.user_id)
            .collect();
        assert_eq!(assigned.len(), 1, "one adjudicator per round");
        assert_ne!(assigned[0], graders[0].id, "a grader of the case");
        *load.entry(assigned[0]).or_default() += 1;
    }
    assert_eq!(load.get(&adjudicators[0].id), Some(&2), "{load:?}");
    assert_eq!(load.get(&adjudicators[1].id), Some(&2), "{load:?}");
}

/// Issue 17, finding 6: a user who grades in a study does not see, as a coordinator of it, the
/// other graders' values of cases they still have to grade. The admin API refuses to make a
/// grader a coordinator of their study (and the reverse), naming the conflict; a user who holds
/// both anyway (granted before, or mapped from an identity provider) gets no coordinator access
/// to that study: no export, no case list, no assignments.
async fn a_grader_cannot_coordinate_the_study_they_grade(backend: Backend) {
    let (app, cases, graders, coordinator) = small_study(backend, 2).await;
    // g.two grades case 0: the values a blinded g.one must not see.
    let mut two = app.sign_in(&graders[1]).await;
    let grade = json!({ "dr_grade": { "od": 2, "os": 1 }, "dme": { "od": "none", "os": "none" } });
    let _ = put(
        &mut two,
        &format!("/api/cases/{}/draft", cases[0].id),
        json!({ "values": grade }),
    )
    .await;
    let admin = app.user("admin.blind", &[(Role::Admin, None)]).await;
    let mut admin = app.sign_in(&admin).await;
    for (user, role) in [(&graders[0], "coordinator"), (&coordinator, "grader")] {
        let refused = admin
            .post(
                &format!("/api/admin/users/{}/roles", user.id),
                json!({ "role": role, "study": "SMALL" }),
            )
            .await;
        expect(&refused, 409, "a grader-coordinator of one study");
        let message = refused.body["error"]["message"]
            .as_str()
            .unwrap_or_default();
        assert!(message.contains("blinding"), "{}", refused.body);
        assert!(message.contains("SMALL"), "{}", refused.body);
    }
    let created = admin
        .post(
            "/api/admin/users",
            json!({ "username": "both.new", "display_name": "Both", "roles": [
                { "role": "grader", "study": "SMALL" }, { "role": "coordinator" } ] }),
        )
        .await;
    expect(&created, 409, "a new user with both");
    // Granted anyway, below the API: the coordinator grant gives nothing in that study.
    let study = app
        .db()
        .study_by_code(&StudyCode::new("SMALL").unwrap())
        .await
        .unwrap();
    app.db()
        .grant_role(graders[0].id, Role::Coordinator, Some(study.id), None)
        .await
        .unwrap();
    let mut one = app.sign_in(&graders[0]).await;
    for path in [
        "/api/studies/SMALL/export?format=csv&table=versions",
        "/api/studies/SMALL/export?format=json",
        "/api/studies/SMALL/cases",
    ] {
        let reply = one.get(path).await;
        assert_eq!(reply.status, 403, "{path}: {}", reply.body);
    }
    let case = one.get(&format!("/api/cases/{}", cases[0].id)).await;
    assert!(
        case.body.get("assignments").is_none_or(Value::is_null)
            || case.body["assignments"] == json!([]),
        "no other graders' assignments: {}",
        case.body
    );
    // The real coordinator still has it all.
    let mut coord = app.sign_in(&coordinator).await;
    expect(
        &coord
            .get("/api/studies/SMALL/export?format=csv&table=versions")
            .await,
        200,
        "the coordinator's export",
    );
}

/// A grade that ticks "urgent referral" reaches the study's coordinators at once, with the
/// case's label, who flagged it and their comment; graders cannot read the list; an amendment
/// that unticks it withdraws it.
async fn urgent_referrals_reach_the_coordinator(backend: Backend) {
    let (app, cases, graders, coordinator) = small_study(backend, 2).await;
    let mut one = app.sign_in(&graders[0]).await;
    let mut flagged = icdr(4, 0);
    flagged["urgent_referral"] = json!(true);
    flagged["comment"] = json!("Neovascularisation at the disc, OD");
    let path = format!("/api/cases/{}/grade", cases[0].id);
    expect(
        &one.post(&path, json!({ "values": flagged })).await,
        201,
        "flagged grade",
    );
    expect(
        &one.post(
            &format!("/api/cases/{}/grade", cases[1].id),
            json!({ "values": icdr(1, 1) }),
        )
        .await,
        201,
        "ordinary grade",
    );
    let mut coord = app.sign_in(&coordinator).await;
    let list = coord.get("/api/studies/SMALL/referrals").await;
    expect(&list, 200, "referrals");
    let referrals = list.body["referrals"].as_array().unwrap();
    assert_eq!(referrals.len(), 1, "{}", list.body);
    let referral = &referrals[0];
    assert_eq!(referral["case_id"], json!(cases[0].id.to_string()));
    assert_eq!(referral["label"], json!(cases[0].label));
    assert_eq!(referral["role"], "grader");
    assert_eq!(referral["comment"], "Neovascularisation at the disc, OD");
    let by = referral["by"].as_str().unwrap();
    assert_eq!(list.body["names"][by], "g.one");
    expect(
        &one.get("/api/studies/SMALL/referrals").await,
        403,
        "graders do not read the list",
    );
    // Withdrawn by an amendment that unticks it.
    let mut withdrawn = icdr(4, 0);
    withdrawn["urgent_referral"] = json!(false);
    expect(
        &one.post(
            &format!("/api/cases/{}/amendments", cases[0].id),
            json!({ "values": withdrawn, "reason": "Artefact, not NVD" }),
        )
        .await,
        201,
        "amendment",
    );
    let list = coord.get("/api/studies/SMALL/referrals").await;
    assert_eq!(list.body["referrals"], json!([]), "{}", list.body);
}

crate::on_both_backends!(
    urgent_referrals_reach_the_coordinator,
    a_grader_cannot_coordinate_the_study_they_grade,
    workflow_end_to_end,
    concurrent_and_double_submissions,
    bad_inputs_are_refused_and_lose_nothing,
    kappa_matches_a_published_example,
    hidden_repeats_are_served_after_the_first_grade,
    grading_without_viewing_is_warned_and_flagged,
    reassignment_moves_unfinished_work,
    rounds_go_to_the_least_loaded_adjudicator,
);
