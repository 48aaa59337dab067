//! The auditor page (`/audit`) in headless Chromium (Debian's, driven by playwright-core) over
//! the demo data on SQLite: a grader opens an assigned case and tries one that is not theirs;
//! the auditor then sees the grader in the case's "who saw this case", the chain status as the
//! API reports it, the outside-assignment flag, and downloads a CSV export of the case's events
//! (which is itself audited). A grader opening `/audit` gets the not-allowed message, no data.
//! Each run asserts the pages produced no console errors, page errors, failed requests or
//! Content-Security-Policy violations (`tests/js/audit.mjs`).

use crate::support;

use std::time::Duration;

use readroom_server::db::{AssignmentRole, Backend, Role};
use readroom_tests::browser;
use serde_json::json;
use support::TestApp;

/// Splits CSV text into rows of cells (quoted cells may hold commas, quotes and newlines).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                cell.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\n') => {
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => cell.push(c),
        }
    }
    if !cell.is_empty() || !row.is_empty() {
        row.push(cell);
        rows.push(row);
    }
    rows
}

/// A screenshot path under `$READROOM_AUDIT_SCREENSHOT` (a directory), if set.
fn screenshot(name: &str) -> Option<String> {
    std::env::var("READROOM_AUDIT_SCREENSHOT")
        .ok()
        .map(|dir| format!("{dir}/{name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auditor_page_shows_case_history_chain_status_anomalies_and_exports() {
    browser::check_prerequisites().expect("Chromium and playwright-core (scripts/setup)");
    let app = TestApp::start_demo(Backend::Sqlite).await;
    let study = app.demo_study().await;
    let cases = app.db().list_cases(study.id).await.expect("demo cases");
    assert!(cases.len() >= 2, "the demo has cases");
    let (seen, other) = (&cases[0].case, &cases[1].case);
    let grader = app
        .user("grader.kim", &[(Role::Grader, Some(study.id))])
        .await;
    let auditor = app.user("auditor.lee", &[(Role::Auditor, None)]).await;
    app.assign(seen, &grader, AssignmentRole::Grader).await;

    // The grader opens their case, then tries one that is not assigned to them.
    let mut kim = app.sign_in(&grader).await;
    let opened = kim.get(&format!("/api/cases/{}", seen.id)).await;
    assert_eq!(opened.status, 200, "{}", opened.body);
    let refused = kim.get(&format!("/api/cases/{}", other.id)).await;
    assert_eq!(refused.status, 404, "{}", refused.body);

    let result = browser::run_script_async(
        "audit",
        json!({
            "base_url": app.url,
            "auditor_link": app.link(&auditor).await,
            "grader_link": app.link(&grader).await,
            "case_id": seen.id,
            "case_label": seen.label,
            "grader_username": "grader.kim",
            // e.g. READROOM_AUDIT_SCREENSHOT=/tmp/audit to look at the pages.
            "screenshot": screenshot("case.png"),
            "screenshot_user": screenshot("user.png"),
            "screenshot_ko": screenshot("case-ko.png"),
        }),
        Duration::from_secs(180),
    )
    .await
    .expect("browser run");
    let seen_auditor = &result["auditor"];
    let seen_grader = &result["grader"];

    // What the API says, for comparison (an API session of the auditor).
    let mut lee = app.sign_in(&auditor).await;
    let status = lee.get("/api/audit/status").await;
    assert_eq!(status.status, 200, "{}", status.body);
    let denied = lee
        .get(&format!(
            "/api/audit/events?action=case.denied&case={}",
            other.id
        ))
        .await;
    assert_eq!(denied.status, 200, "{}", denied.body);
    let denied_seq = denied.body["events"][0]["seq"]
        .as_i64()
        .expect("a case.denied event");

    // The header links to the page for auditors only.
    assert!(
        seen_auditor["nav"]
            .as_array()
            .unwrap()
            .contains(&json!("/audit")),
        "{seen_auditor}"
    );
    assert_eq!(seen_auditor["nav_current"], "page");
    assert_eq!(seen_auditor["title"], "Audit log");

    // Paging: two a page, "Load more" adds the next two (older ones) and takes the focus there.
    let paging = &seen_auditor["paging"];
    assert_eq!(paging["first_page"], 2, "{paging}");
    assert!(paging["total"].as_i64().unwrap() >= 4, "{paging}");
    assert_eq!(paging["after_more"], 4, "{paging}");
    assert_eq!(paging["newest_first"], true, "{paging}");
    assert_eq!(paging["focused_row"], paging["third_seq"], "{paging}");

    // The search form filters by action and puts the filter in the address.
    let search = &seen_auditor["search"];
    assert_eq!(search["url"], "/audit?action=case.opened", "{search}");
    assert_eq!(search["actions"], json!(["case.opened"]), "{search}");
    assert_eq!(search["rows"], 1, "{search}");
    assert_eq!(search["users"], json!(["grader.kim"]), "{search}");

    // A case found by its label (typed in lower case): the address carries its id. An unknown
    // label is named and searches nothing.
    let by_label = &seen_auditor["by_label"];
    assert_eq!(
        by_label["url"],
        json!(format!("/audit?case={}", seen.id)),
        "{by_label}"
    );
    assert!(
        by_label["heading"].as_str().unwrap().contains(&seen.label),
        "{by_label}"
    );
    // The case field then names the case as people do, not by the id in the address.
    assert_eq!(
        by_label["field"],
        json!(format!("{}/{}", study.code.as_str(), seen.label)),
        "{by_label}"
    );
    let unknown = &seen_auditor["unknown_label"];
    assert_eq!(unknown["url"], "/audit", "{unknown}");
    assert_eq!(
        unknown["status"], "No case is labelled c-9999.",
        "{unknown}"
    );

    // "Who saw this case": the grader, with the open counted.
    let heading = seen_auditor["case_heading"].as_str().unwrap();
    assert!(heading.contains(&seen.label), "{heading}");
    let viewers = seen_auditor["viewers"].as_array().unwrap();
    let kim_row = viewers
        .iter()
        .find(|row| row["username"] == "grader.kim")
        .unwrap_or_else(|| panic!("grader.kim in who saw this case: {viewers:?}"));
    assert!(kim_row["opened"].as_u64().unwrap() >= 1, "{kim_row}");
    assert_eq!(kim_row["denied"], 0, "{kim_row}");
    let case_events = seen_auditor["case_events"].as_array().unwrap();
    assert!(
        case_events
            .iter()
            .any(|e| e["action"] == "case.opened" && e["user"] == "grader.kim"),
        "{case_events:?}"
    );

    // The chain status as shown matches the server's verification.
    let chain = &seen_auditor["chain"];
    assert_eq!(chain["intact"], "true", "{chain}");
    assert!(
        chain["verdict"].as_str().unwrap().starts_with("Intact"),
        "{chain}"
    );
    assert_eq!(status.body["intact"], true, "{}", status.body);
    let shown_head = chain["head"].as_i64().unwrap();
    let shown_verified = chain["verified"].as_u64().unwrap();
    // (`total` counts every match regardless of `before`, so count the page's events.)
    let up_to_shown = lee
        .get(&format!(
            "/api/audit/events?before={}&limit=500",
            shown_head + 1
        ))
        .await;
    let up_to_shown = up_to_shown.body["events"].as_array().unwrap().clone();
    assert_eq!(
        up_to_shown.len() as u64,
        shown_verified,
        "the page showed every event up to its head as verified"
    );
    assert_eq!(up_to_shown[0]["seq"].as_i64(), Some(shown_head));
    assert_eq!(
        status.body["verified_events"].as_i64(),
        status.body["head_seq"].as_i64(),
        "{}",
        status.body
    );
    let head_now = status.body["head_seq"].as_i64().unwrap();
    assert!(shown_head <= head_now);
    // Everything after what the page showed came from the test's own later steps.
    let later = lee
        .get(&format!(
            "/api/audit/events?limit={}",
            head_now - shown_head
        ))
        .await;
    let later = later.body["events"].as_array().unwrap().clone();
    assert_eq!(
        status.body["verified_events"].as_u64(),
        Some(shown_verified + later.len() as u64),
        "{later:?}"
    );
    for event in &later {
        assert!(event["seq"].as_i64().unwrap() > shown_head);
        let action = event["action"].as_str().unwrap();
        assert!(
            matches!(
                action,
                "audit.exported" | "auth.login" | "auth.link_issued" | "access.denied"
            ),
            "unexpected later event {event}"
        );
    }
    // The export was audited.
    let exported = later
        .iter()
        .find(|e| e["action"] == "audit.exported")
        .unwrap_or_else(|| panic!("an audit.exported event: {later:?}"));
    assert_eq!(exported["actor"]["username"], "auditor.lee");
    assert_eq!(exported["details"]["format"], "csv");
    assert_eq!(
        exported["details"]["filters"]["case"],
        json!(seen.id.to_string())
    );

    // The anomalies panel lists the grader's outside-assignment attempt.
    let anomalies = seen_auditor["anomalies"].as_array().unwrap();
    let outside = anomalies
        .iter()
        .find(|a| a["kind"] == "outside_assignment" && a["seq"].as_i64() == Some(denied_seq))
        .unwrap_or_else(|| panic!("the outside-assignment flag: {anomalies:?}"));
    assert_eq!(outside["actor"], "grader.kim", "{outside}");
    assert!(
        outside["text"].as_str().unwrap().contains(&other.label),
        "the flag names the case: {outside}"
    );
    let link = outside["events_link"].as_str().unwrap();
    assert!(
        link.contains("action=case.denied") && link.contains(&format!("before={}", denied_seq + 1)),
        "{link}"
    );

    // A row's details expand to the full JSON record.
    assert_eq!(seen_auditor["details_open"], true);

    // The CSV export of the case view: the same filters, rows of that case, case.opened among them.
    let href = seen_auditor["export_csv_href"].as_str().unwrap();
    assert_eq!(
        href,
        format!("/api/audit/events/export?format=csv&case={}", seen.id)
    );
    assert_eq!(
        seen_auditor["export_json_href"],
        format!("/api/audit/events/export?format=json&case={}", seen.id)
    );
    assert!(
        seen_auditor["csv_filename"]
            .as_str()
            .unwrap()
            .ends_with(".csv"),
        "{}",
        seen_auditor["csv_filename"]
    );
    let rows = parse_csv(seen_auditor["csv"].as_str().unwrap());
    let header = &rows[0];
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("CSV column {name}: {header:?}"))
    };
    let (action, target, username) = (column("action"), column("target"), column("actor_username"));
    let target_case = format!("case:{}", seen.id);
    assert!(rows.len() > 1, "the CSV has events");
    for row in &rows[1..] {
        assert_eq!(row[target], target_case, "{row:?}");
    }
    assert!(
        rows[1..]
            .iter()
            .any(|row| row[action] == "case.opened" && row[username] == "grader.kim"),
        "case.opened by grader.kim in the CSV: {rows:?}"
    );

    // The grader's activity, opened from "who saw this case".
    let user = &seen_auditor["user"];
    assert_eq!(user["url"], format!("/audit?user_id={}", grader.id));
    assert_eq!(user["heading"], "User grader.kim");
    assert_eq!(user["focused"], "audit-user-heading");
    assert!(
        user["counts"]["case.opened"].as_u64().unwrap() >= 1,
        "{user}"
    );
    assert_eq!(user["counts"]["case.denied"], 1, "{user}");
    let touched = user["cases"].as_array().unwrap();
    assert!(
        touched
            .iter()
            .any(|c| c["case_id"] == json!(seen.id.to_string()) && c["label"] == json!(seen.label)),
        "{touched:?}"
    );
    assert_eq!(user["event_users"], json!(["grader.kim"]), "{user}");
    // What was done to the account: its sign-in (target `user:<id>`).
    assert!(
        user["account_events"]
            .as_array()
            .unwrap()
            .contains(&json!("auth.login")),
        "{user}"
    );
    assert_eq!(user["raw_keys"], json!([]), "{user}");

    // Back goes back to the case view; every string is translated in both languages.
    assert_eq!(seen_auditor["back_url"], format!("/audit?case={}", seen.id));
    assert_eq!(seen_auditor["title_ko"], "감사 로그");
    assert_eq!(seen_auditor["viewers_heading_ko"], "이 증례를 본 사람");
    assert_eq!(seen_auditor["raw_keys_en"], json!([]));
    assert_eq!(seen_auditor["raw_keys_ko"], json!([]));

    browser::assert_clean(seen_auditor, "auditor");
    assert_eq!(seen_auditor["http_errors"], json!([]), "{seen_auditor}");

    // A grader gets the not-allowed message and no audit data.
    assert!(
        !seen_grader["nav"]
            .as_array()
            .unwrap()
            .contains(&json!("/audit")),
        "{seen_grader}"
    );
    assert_eq!(
        seen_grader["message"], "Only auditors may view the audit log.",
        "{seen_grader}"
    );
    assert_eq!(seen_grader["has_form"], false);
    assert_eq!(seen_grader["has_chain"], false);
    assert_eq!(seen_grader["tables"], 0);
    assert_eq!(
        seen_grader["http_errors"],
        json!(["403 GET /api/audit/status"]),
        "one refused request, no more"
    );
    browser::assert_clean(seen_grader, "grader");
}

/// An event edited behind the application's back (append-only triggers dropped, as someone
/// with database rights could) shows as a broken chain, in red, at that event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auditor_page_shows_a_tampered_chain_as_broken() {
    use sqlx::Connection;
    browser::check_prerequisites().expect("Chromium and playwright-core (scripts/setup)");
    let app = TestApp::start_demo(Backend::Sqlite).await;
    let auditor = app.user("auditor.lee", &[(Role::Auditor, None)]).await;
    let rows = app.db().audit_page(0, 1000).await.expect("audit rows");
    assert!(rows.len() > 6, "the demo wrote events");
    let edited = rows[4].seq;

    let mut conn = sqlx::SqliteConnection::connect(&app.state.config.database_url())
        .await
        .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP TRIGGER audit_events_no_update; \
         UPDATE audit_events SET details = '{{\"edited\":true}}' WHERE seq = {edited};"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();

    let result = browser::run_script_async(
        "audit",
        json!({
            "base_url": app.url,
            "mode": "broken",
            "auditor_link": app.link(&auditor).await,
            "screenshot": screenshot("broken.png"),
        }),
        browser::DEFAULT_TIMEOUT,
    )
    .await
    .expect("browser run");
    let chain = &result["auditor"];
    assert_eq!(chain["intact"], "false", "{chain}");
    assert_eq!(chain["verified"], edited - 1, "{chain}");
    assert_eq!(chain["head"], edited - 1, "{chain}");
    let verdict = chain["verdict"].as_str().unwrap();
    assert!(
        verdict.starts_with("BROKEN")
            && verdict.contains(&format!("The chain is broken at event #{edited}:")),
        "{verdict}"
    );
    assert_eq!(chain["verdict_role"], "alert", "{chain}");
    assert_eq!(
        chain["verdict_color"], "rgb(224, 108, 108)",
        "var(--bad): {chain}"
    );
    browser::assert_clean(chain, "auditor");
    assert_eq!(chain["http_errors"], json!([]), "{chain}");
}
