//! The grading workflow in headless Chromium (Debian's, driven by playwright-core) over the demo
//! data on SQLite, graded with the keyboard only (`tests/js/grading.mjs`):
//!
//! - grader A signs in with a one-time link, opens the first case of the worklist with Enter,
//!   answers the demo form with digits and Tab (the draft autosaves), submits with Enter and lands
//!   on the next case; an early Enter there gets the server's 422 marked per field and eye; A
//!   finishes and submits that case too, and amends the first one (with a reason);
//! - grader B grades the same first case with another DR grade, through a save the server never
//!   receives (kept in sessionStorage, restored after a reload, saved when the server answers);
//! - the adjudicator's queue lists the case; its form shows grades A and B side by side with the
//!   disagreeing DR grade highlighted, and the final grade is entered the same way;
//! - the coordinator's study dashboard shows the progress and agreement, and the CSV exports
//!   downloaded from it hold the grades; an auditor's shows progress and agreement only.
//!
//! Every page is checked for console errors, page errors, failed requests and
//! Content-Security-Policy violations.

use crate::support;

use std::time::{Duration, Instant};

use readroom_server::db::{AssignmentRole, Backend};
use readroom_tests::browser;
use serde_json::{Value, json};
use support::TestApp;
use uuid::Uuid;

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
            (false, '\r') => {}
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

/// The rows of a CSV as maps from column name to cell.
fn csv_records(text: &str) -> Vec<std::collections::HashMap<String, String>> {
    let rows = parse_csv(text);
    let (header, body) = rows.split_first().expect("a CSV header");
    body.iter()
        .map(|row| header.iter().cloned().zip(row.iter().cloned()).collect())
        .collect()
}

/// A screenshot directory from `$READROOM_GRADING_SCREENSHOTS`, if set.
fn screenshot_dir() -> Option<String> {
    std::env::var("READROOM_GRADING_SCREENSHOTS").ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_graders_an_adjudicator_and_the_coordinator_work_through_a_case_by_keyboard() {
    browser::check_prerequisites().expect("Chromium and playwright-core (scripts/setup)");
    let app = TestApp::start_demo(Backend::Sqlite).await;
    let users = readroom_server::demo::seed_users(app.db(), &app.state.audit)
        .await
        .expect("demo users, form and batch");
    let user = |name: &str| {
        users
            .iter()
            .find(|(_, u)| u.username == name)
            .map(|(_, u)| u.clone())
            .unwrap_or_else(|| panic!("demo user {name}"))
    };
    let (a, coord, adj, auditor) = (
        user("grader.kim"),
        user("coord.park"),
        user("adj.choi"),
        user("auditor.lee"),
    );

    // A's first unfinished case in worklist order (what Enter opens), and the other grader on it.
    let mut kim = app.sign_in(&a).await;
    let worklist = kim.get("/api/worklist").await;
    assert_eq!(worklist.status, 200, "{}", worklist.body);
    let items = worklist.body.as_array().unwrap();
    let first = items
        .iter()
        .find(|i| i["status"] == "in_progress")
        .or_else(|| items.iter().find(|i| i["status"] == "assigned"))
        .expect("grader.kim has a case to grade");
    let case_id = first["case_id"].as_str().unwrap().to_owned();
    let label = first["label"].as_str().unwrap().to_owned();
    let mut park = app.sign_in(&coord).await;
    let cases = park.get("/api/studies/DEMO/cases").await;
    assert_eq!(cases.status, 200, "{}", cases.body);
    let shared = cases
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["case_id"] == json!(case_id))
        .expect("the case in the coordinator's list");
    let graders: Vec<String> = shared["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["role"] == "grader")
        .map(|x| x["username"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        graders.len(),
        2,
        "the demo batch double-grades: {graders:?}"
    );
    let b_name = graders.iter().find(|n| *n != "grader.kim").unwrap().clone();
    let b = user(&b_name);

    let started = Instant::now();
    let result = browser::run_script_async(
        "grading",
        json!({
            "base_url": app.url,
            "a_link": app.link(&a).await,
            "b_link": app.link(&b).await,
            "adj_link": app.link(&adj).await,
            "coord_link": app.link(&coord).await,
            "auditor_link": app.link(&auditor).await,
            "case_id": case_id,
            "case_label": label,
            // e.g. READROOM_GRADING_SCREENSHOTS=/tmp/grading to look at the pages.
            "screenshot_dir": screenshot_dir(),
        }),
        Duration::from_secs(300),
    )
    .await
    .expect("browser run");
    println!(
        "grading run: {:.1} s, steps {}",
        started.elapsed().as_secs_f64(),
        result["timings"]
    );
    let (ra, rb, radj, rcoord) = (
        &result["a"],
        &result["b"],
        &result["adjudicator"],
        &result["coordinator"],
    );
    let case_path = format!("/cases/{case_id}");

    // ---- grader A -----------------------------------------------------------------------------
    assert_eq!(ra["worklist_focus"], json!(case_path), "{ra}");
    assert_eq!(ra["first_url"], json!(case_path), "Enter opened it: {ra}");
    assert_eq!(ra["first_focus"], "gradable:OD", "{ra}");
    // Where the case stands in the grader's work, and the time on it.
    let progress = ra["first_progress"].as_str().unwrap_or_default();
    assert!(
        progress.starts_with("Case 1 of ") && progress.ends_with(" · 0 done"),
        "{ra}"
    );
    let clock = ra["first_clock"].as_str().unwrap_or_default();
    assert!(
        clock.starts_with("0:") && clock.ends_with(" on this case"),
        "{ra}"
    );
    // The visit's visual acuity and IOP (from the bundle, through the worker) above the form,
    // both eyes, acuity with its Snellen line.
    let measurements = ra["first_measurements"]
        .as_array()
        .expect("measurements shown");
    let row = |key: &str| {
        measurements
            .iter()
            .find(|m| m["measure"] == key)
            .unwrap_or_else(|| panic!("no {key} row: {measurements:?}"))
    };
    let (va, iop) = (row("va_logmar"), row("iop_mmhg"));
    assert_eq!(va["label"], "VA (logMAR)");
    assert_eq!(iop["label"], "IOP (mmHg)");
    for eye in ["OD", "OS"] {
        let acuity = va["cells"][eye]["now"].as_str().unwrap_or_default();
        let (logmar, snellen) = acuity.split_once(" (20/").unwrap_or_else(|| panic!("{va}"));
        assert!(!logmar.starts_with("-0.00"), "{va}");
        let logmar: f64 = logmar.parse().unwrap_or_else(|_| panic!("{va}"));
        assert!((-0.3..=1.3).contains(&logmar), "{va}");
        assert!(snellen.ends_with(')'), "{va}");
        let pressure: u32 = iop["cells"][eye]["now"]
            .as_str()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{iop}"));
        assert!((5..=60).contains(&pressure), "{iop}");
    }
    // Before gradability is known only it and the optional findings are asked; then the
    // fields that depend on it appear for both eyes (the reason for ungradable does not).
    assert_eq!(
        ra["first_cells_before"],
        json!([
            "gradable:OD",
            "gradable:OS",
            "other_findings",
            "urgent_referral",
            "comment"
        ]),
        "{ra}"
    );
    let after = ra["first_cells_after"].as_array().unwrap();
    for cell in ["dr_grade:OD", "dr_grade:OS", "dme:OS", "vcdr:OS"] {
        assert!(after.contains(&json!(cell)), "{cell} shown: {ra}");
    }
    assert!(!after.contains(&json!("ungradable_reason:OD")), "{ra}");
    assert_eq!(
        ra["first_values"],
        json!({
            "gradable:OD": "0", "gradable:OS": "0", "dr_grade:OD": "2", "dr_grade:OS": "0",
            "dme:OD": "0", "dme:OS": "0", "areds_category:OD": "0", "areds_category:OS": "0",
            "vcdr:OD": "0.3", "vcdr:OS": "0.35",
        }),
        "{ra}"
    );
    // Only the first view (fundus OD) was shown, and the grade covers both eyes: the server
    // (from the worker's record of views, reported live) refused it with what was never shown,
    // the form asked with the focus on looking first, and Tab + Enter submitted anyway.
    let question = &ra["first_unviewed"];
    let asked = question["text"].as_str().unwrap_or_default();
    assert!(
        asked.contains("any image of OS (left)") && asked.contains("OCT OD"),
        "asked about the unviewed eye and exam: {ra}"
    );
    assert!(!asked.contains("Fundus OD"), "fundus OD was shown: {ra}");
    assert!(
        !asked.contains("OCT OS"),
        "the unseen eye is named once: {ra}"
    );
    assert_eq!(question["focus"], "grading-unviewed-look", "{ra}");
    assert_eq!(question["tab_focus"], "grading-unviewed-submit", "{ra}");
    let second = ra["second_url"].as_str().unwrap();
    assert!(
        second.starts_with("/cases/") && second != case_path,
        "Enter submitted and opened the next case: {ra}"
    );
    let flash = ra["second_message"].as_str().unwrap_or_default();
    assert!(
        flash.starts_with(&format!(
            "Grade for {label} submitted. Not shown before grading: "
        )),
        "{ra}"
    );
    assert_eq!(ra["second_focus"], "gradable:OD", "{ra}");
    // The early Enter: every required field of the asked eyes is marked, the focus on the first.
    let invalid = &ra["invalid"];
    assert_eq!(invalid["focus"], "gradable:OS", "{invalid}");
    assert!(
        invalid["message"].as_str().unwrap().contains("problems"),
        "{invalid}"
    );
    let marked = invalid["marked"].as_array().unwrap();
    for cell in ["gradable:OS", "dr_grade:OD", "dme:OD", "vcdr:OD"] {
        assert!(marked.contains(&json!(cell)), "{cell} marked: {invalid}");
    }
    assert!(!marked.contains(&json!("dr_grade:OS")), "{invalid}");
    // OS ungradable: its reason is asked, its grades are not.
    let cells = ra["ungradable_cells"].as_array().unwrap();
    assert!(cells.contains(&json!("ungradable_reason:OS")), "{ra}");
    assert!(!cells.contains(&json!("ungradable_reason:OD")), "{ra}");
    assert!(!cells.contains(&json!("dr_grade:OS")), "{ra}");
    assert!(cells.contains(&json!("dr_grade:OD")), "{ra}");
    assert_ne!(ra["after_second_url"], json!(second), "{ra}");
    // "Cannot grade" by X for DME OD (its last choice) and VCDR OD (the box locks the input),
    // stored as the word and counted as answered.
    assert_eq!(ra["second_cannot"]["dme_label"], "Cannot grade", "{ra}");
    assert_eq!(ra["second_cannot"]["vcdr_input_disabled"], true, "{ra}");
    let box_width = ra["second_cannot"]["box_width"].as_f64().unwrap_or(0.0);
    assert!(
        (10.0..=24.0).contains(&box_width),
        "a checkbox, not a bar: {ra}"
    );
    assert_eq!(ra["second_cannot"]["focus"], "vcdr:OD", "on the box: {ra}");
    assert_eq!(
        ra["second_cannot"]["definitions_open"], true,
        "D opened them: {ra}"
    );
    assert_eq!(ra["second_values"]["dme:OD"], "3", "{ra}");
    assert_eq!(ra["second_values"]["vcdr:OD"], "cannot", "{ra}");
    let second_id = second.trim_start_matches("/cases/");
    let second_form = kim.get(&format!("/api/cases/{second_id}/form")).await;
    assert_eq!(second_form.status, 200, "{}", second_form.body);
    let stored = &second_form.body["grade"]["values"];
    assert_eq!(stored["dme"], json!({ "OD": "cannot_grade" }), "{stored}");
    assert_eq!(stored["vcdr"], json!({ "OD": "cannot_grade" }), "{stored}");
    assert_eq!(stored["dr_grade"], json!({ "OD": 1 }), "{stored}");
    // The first case again: read-only with the submitted values and Amend focused.
    assert_eq!(ra["first_again"]["mode"], "readonly", "{ra}");
    assert_eq!(ra["first_again"]["focus"], "grading-amend", "{ra}");
    assert_eq!(ra["first_again"]["values"], ra["first_values"], "{ra}");
    // The amendment: Enter on Amend, a changed VCDR, Enter asks for the reason, Ctrl+Enter.
    assert_eq!(ra["amend_focus"], "gradable:OD", "{ra}");
    assert_eq!(ra["amend_field"], "vcdr:OD", "{ra}");
    assert_eq!(
        ra["amend_reason_prompt"], "Give a reason for the amendment.",
        "{ra}"
    );
    assert_eq!(ra["amend_reason_focus"], "grading-reason", "{ra}");
    assert_eq!(
        ra["amended"]["message"], "Amendment saved as version 2.",
        "{ra}"
    );
    let note = ra["amended"]["note"].as_str().unwrap();
    assert!(
        note.contains("(version 2)") && note.contains("Re-measured the cup"),
        "{ra}"
    );
    assert_eq!(ra["amended"]["values"]["vcdr:OD"], "0.35", "{ra}");
    browser::assert_clean(ra, "grader A");
    let a_http: Vec<&str> = ra["http_errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    // Refused three times, each time before anything was stored: the first grade (it covered
    // what was never shown, and the grader was asked), the second case's early Enter (fields
    // missing) and then its grade (asked again: only its first view had been shown).
    assert_eq!(a_http.len(), 3, "{a_http:?}");
    assert_eq!(a_http[0], format!("422 POST /api/cases/{case_id}/grade"));
    assert!(
        a_http[1] == a_http[2]
            && a_http[1].starts_with("422 POST /api/cases/")
            && a_http[1].ends_with("/grade"),
        "{a_http:?}"
    );
    assert!(ra["second_unviewed"]["text"].is_string(), "{ra}");

    // ---- grader B -----------------------------------------------------------------------------
    assert_eq!(rb["focus"], "gradable:OD", "{rb}");
    assert!(
        rb["offline_text"].as_str().unwrap().starts_with("Offline"),
        "{rb}"
    );
    let stored = rb["stored"].as_object().unwrap();
    assert_eq!(stored.len(), 1, "one assignment's unsent values: {rb}");
    let kept = stored.values().next().unwrap();
    assert_eq!(kept["dr_grade"], json!({ "OD": 3, "OS": 0 }), "{rb}");
    assert!(
        !rb["local_storage_keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k.as_str().unwrap().contains("grading")),
        "grades never go to localStorage: {rb}"
    );
    assert_eq!(
        rb["restored_message"],
        "Restored changes that had not reached the server; saving them now.",
        "{rb}"
    );
    assert_eq!(rb["restored_values"]["dr_grade:OS"], "0", "{rb}");
    assert_eq!(rb["restored_values"]["dr_grade:OD"], "3", "{rb}");
    assert_eq!(
        rb["stored_after_save"],
        json!([]),
        "saved: nothing left in sessionStorage: {rb}"
    );
    assert!(
        !rb["simulated_failures"].as_array().unwrap().is_empty(),
        "the test did cut saves off: {rb}"
    );
    assert_eq!(rb["before_reload_focus"], "dme:OD", "{rb}");
    assert_eq!(rb["reloaded_values"]["dme:OD"], "0", "{rb}");
    assert_eq!(rb["after_escape"], "viewer-stage", "{rb}");
    assert_eq!(rb["after_f"], "dme:OS", "{rb}");
    assert_eq!(rb["help_open"], true, "{rb}");
    assert_eq!(rb["help_closed"], true, "{rb}");
    assert_eq!(rb["after_help"], "dme:OS", "{rb}");
    assert_ne!(rb["after_submit"], json!(case_path), "{rb}");
    assert_eq!(rb["raw_keys_ko"], json!([]), "{rb}");
    let tools: Vec<&str> = rb["ko_tools"]
        .as_array()
        .map(|b| b.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    assert!(
        tools.contains(&"이동") && tools.contains(&"초기화") && !tools.contains(&"Pan"),
        "the viewer's controls in Korean after the switch: {tools:?}"
    );
    assert!(
        rb["unviewed"]["text"].is_string(),
        "asked before submitting: {rb}"
    );
    browser::assert_clean(rb, "grader B");

    // ---- adjudicator --------------------------------------------------------------------------
    let queue = radj["queue"].as_array().unwrap();
    assert_eq!(queue.len(), 1, "{radj}");
    assert_eq!(queue[0]["case_id"], json!(case_id), "{radj}");
    assert_eq!(queue[0]["status"], "open", "{radj}");
    assert!(
        queue[0]["fields"]
            .as_str()
            .unwrap()
            .contains("DR grade (ICDR) (OD)"),
        "{radj}"
    );
    assert_eq!(
        radj["url"],
        json!(case_path),
        "Enter opened the queued case: {radj}"
    );
    assert_eq!(radj["role"], "adjudicator", "{radj}");
    assert_eq!(
        radj["compare_heads"],
        json!(["Field", "Grade A", "Grade B"]),
        "{radj}"
    );
    let compare = radj["compare"].as_array().unwrap();
    let dr_od = compare
        .iter()
        .find(|r| r["cell"] == "dr_grade:OD")
        .expect("DR grade OD compared");
    assert_eq!(dr_od["disagree"], true, "{radj}");
    let mut pair = [dr_od["a"].as_str().unwrap(), dr_od["b"].as_str().unwrap()];
    pair.sort_unstable();
    assert_eq!(pair, ["2 · Moderate NPDR", "3 · Severe NPDR"], "{radj}");
    assert!(
        compare
            .iter()
            .filter(|r| r["cell"] != "dr_grade:OD")
            .all(|r| r["disagree"] == false),
        "only DR grade OD disagrees: {radj}"
    );
    assert_eq!(radj["highlighted"], json!(["dr_grade:OD"]), "{radj}");
    assert_eq!(radj["names_shown"], false, "blind: {radj}");
    // The agreeing values are prefilled, so the form opens on the field to resolve.
    assert_eq!(radj["focus"], "dr_grade:OD", "{radj}");
    // The cup-to-disc ratio OD differed within tolerance: not prefilled, named at submit.
    assert_eq!(radj["problem_focus"], "vcdr:OD", "{radj}");
    assert_eq!(
        radj["after_submit"], "/",
        "no next case: the worklist: {radj}"
    );
    assert_eq!(radj["flash"], true, "{radj}");
    assert_eq!(radj["queue_after"], json!(["resolved"]), "{radj}");
    browser::assert_clean(radj, "adjudicator");
    // Two refusals: the first submit, without the cup-to-disc ratio OD; then the final grade
    // of both eyes after only fundus OD was shown, which the adjudicator was asked about.
    assert!(
        radj["unviewed"]["text"]
            .as_str()
            .is_some_and(|text| text.contains("OS (left)")),
        "{radj}"
    );
    let refused = format!("422 POST /api/cases/{case_id}/grade");
    assert_eq!(radj["http_errors"], json!([refused, refused]), "{radj}");

    // ---- coordinator --------------------------------------------------------------------------
    assert!(
        rcoord["nav"]
            .as_array()
            .unwrap()
            .contains(&json!("/studies/DEMO")),
        "{rcoord}"
    );
    assert_eq!(rcoord["url"], "/studies/DEMO", "{rcoord}");
    assert_eq!(
        rcoord["landing"], "/studies/DEMO",
        "a coordinator of one study lands on it: {rcoord}"
    );
    // Urgent referrals come first on the dashboard (none in this walk-through).
    assert_eq!(
        rcoord["referrals"], "Urgent referralsNo grade asks for an urgent referral.",
        "{rcoord}"
    );
    // Presets by their names, and a form switch that asks before it applies.
    assert!(
        rcoord["preset_options"]
            .as_array()
            .unwrap()
            .contains(&json!("Vertical cup-to-disc ratio (vcdr)")),
        "{rcoord}"
    );
    assert_eq!(
        rcoord["form_switch"]["button"], "Switch to Vertical cup-to-disc ratio",
        "{rcoord}"
    );
    assert_eq!(
        rcoord["form_switch"]["version"], rcoord["form_version"],
        "nothing switched yet: {rcoord}"
    );
    let stages = &rcoord["stages"];
    assert_eq!(stages["total"], 9, "{rcoord}");
    assert_eq!(stages["adjudicated"], 1, "{rcoord}");
    let throughput = rcoord["throughput"].as_array().unwrap();
    let graded = |name: &str| {
        throughput
            .iter()
            .find(|r| r["grader"] == name)
            .map(|r| r["graded"].as_u64().unwrap())
            .unwrap_or_else(|| panic!("{name} in the throughput table: {rcoord}"))
    };
    assert_eq!(graded("grader.kim"), 2, "{rcoord}");
    assert_eq!(graded(&b_name), 1, "{rcoord}");
    let kappa = rcoord["kappa_rows"].as_array().unwrap();
    assert!(
        kappa.iter().any(|r| r["column"] == "dr_grade_od"),
        "{rcoord}"
    );
    // The demo's synthetic cases have ground truth: the final grades are scored against it.
    let truth = rcoord["truth_rows"].as_array().unwrap();
    assert!(
        truth
            .iter()
            .any(|r| r["grader"] == "final" && r["column"] == "dr_grade_od"),
        "{rcoord}"
    );
    assert_eq!(rcoord["batches"], json!(["Demo batch 1"]), "{rcoord}");
    // A batch of one picked case with 3 graders per case (all demo cases are batched: the "not
    // yet in a batch" filter showed none), given to the one demo grader who does not have it.
    let picked = &rcoord["picked_batch"];
    assert_eq!(picked["unbatched_shown"], 0, "{picked}");
    assert_eq!(
        picked["case_lists"], 1,
        "one fetch of the cases for the picker and the reassignment list: {picked}"
    );
    assert!(picked["all_shown"].as_u64().unwrap_or(0) > 1, "{picked}");
    assert_eq!(picked["filtered"], json!([case_id]), "{picked}");
    assert_eq!(picked["count"], "1 picked · 1 shown", "{picked}");
    assert_eq!(
        picked["status"], "Batch Picked re-grade created: 1 cases, 1 assignments.",
        "{picked}"
    );
    assert_eq!(
        picked["batches"],
        json!([
            ["Demo batch 1", picked["batches"][0][1]],
            ["Picked re-grade", "1"]
        ]),
        "{picked}"
    );
    let assigned = app
        .db()
        .assignments_for_case(Uuid::parse_str(&case_id).unwrap())
        .await
        .unwrap();
    let graders: std::collections::HashSet<Uuid> = assigned
        .iter()
        .filter(|a| a.role == AssignmentRole::Grader)
        .map(|a| a.user_id)
        .collect();
    assert_eq!(graders.len(), 3, "the third demo grader now has the case");
    // Reassignment: one of grader.kim's unfinished cases moved, to the least loaded grader not
    // on it; the others stay with kim.
    let reassign = &rcoord["reassign"];
    let before = reassign["before"].as_array().expect("kim has open cases");
    assert!(!before.is_empty(), "{reassign}");
    assert_eq!(reassign["to"], "", "automatic by default: {reassign}");
    assert_eq!(reassign["status"], "Moved 1 of 1.", "{reassign}");
    let moved = reassign["moving"].as_str().expect("a case to move");
    let after: Vec<&str> = reassign["after"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(after.len(), before.len() - 1, "{reassign}");
    assert!(!after.contains(&moved), "{reassign}");
    let cases_now = park.get("/api/studies/DEMO/cases").await;
    let holder = cases_now
        .body
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["assignments"].as_array().unwrap().iter())
        .find(|x| x["id"] == moved)
        .map(|x| x["username"].as_str().unwrap_or_default().to_owned())
        .expect("the moved assignment is still listed");
    assert!(
        holder.starts_with("grader.") && holder != "grader.kim",
        "{holder}"
    );
    assert_eq!(rcoord["form_version"], "1", "{rcoord}");
    assert_eq!(rcoord["title_ko"], "연구 DEMO", "{rcoord}");
    assert_eq!(rcoord["raw_keys_ko"], json!([]), "{rcoord}");

    // The CSV exports: the final (adjudicated) grade of the case, and every grade version.
    let grades = &rcoord["grades_csv"];
    assert!(
        grades["name"].as_str().unwrap().ends_with(".csv"),
        "{grades}"
    );
    let final_rows = csv_records(grades["text"].as_str().unwrap());
    let row = final_rows
        .iter()
        .find(|r| r.values().any(|v| *v == label))
        .unwrap_or_else(|| panic!("{label} in the grades CSV: {}", grades["text"]));
    assert_eq!(row["dr_grade_od"], "3", "{row:?}");
    assert_eq!(row["dr_grade_os"], "0", "{row:?}");
    assert_eq!(row["gradable_od"], "gradable", "{row:?}");
    assert_eq!(row["vcdr_od"], "0.35", "{row:?}");
    let versions = csv_records(rcoord["versions_csv"]["text"].as_str().unwrap());
    let of_case: Vec<_> = versions
        .iter()
        .filter(|r| r.values().any(|v| *v == label))
        .collect();
    let mut dr: Vec<&str> = of_case.iter().map(|r| r["dr_grade_od"].as_str()).collect();
    dr.sort_unstable();
    assert_eq!(
        dr,
        ["2", "2", "3"],
        "A's two versions and B's grade: {}",
        rcoord["versions_csv"]["text"]
    );
    // A's first grade was submitted with the LOSSLESS badge showing: the frame's hash and the
    // view are stored with it.
    let a_first = of_case
        .iter()
        .find(|r| r["dr_grade_od"] == "2" && r["vcdr_od"] == "0.3")
        .expect("A's first version");
    assert_eq!(
        json!(a_first["lossless_sha256"]),
        ra["first_lossless"],
        "{a_first:?}"
    );
    browser::assert_clean(rcoord, "coordinator");
    assert_eq!(rcoord["http_errors"], json!([]), "{rcoord}");

    // ---- auditor: progress and agreement, nothing a coordinator manages ----------------------
    let raud = &result["auditor"];
    assert!(
        raud["nav"]
            .as_array()
            .unwrap()
            .contains(&json!("/studies/DEMO")),
        "{raud}"
    );
    // The auditor reads (never changes) what the coordinator reads first: referrals, progress,
    // agreement; no batches, exports or form.
    assert_eq!(
        raud["sections"],
        json!(["study-referrals", "study-progress", "study-agreement"]),
        "{raud}"
    );
    assert!(raud["kappa_rows"].as_u64().unwrap() > 0, "{raud}");
    browser::assert_clean(raud, "auditor");
    assert_eq!(raud["http_errors"], json!([]), "{raud}");

    // What the server holds agrees with what the pages showed.
    let progress = park.get("/api/studies/DEMO/progress").await;
    assert_eq!(progress.status, 200, "{}", progress.body);
    assert_eq!(progress.body["grades_submitted"], 3, "{}", progress.body);
    assert_eq!(
        progress.body["adjudications"]["resolved"], 1,
        "{}",
        progress.body
    );
    assert_eq!(progress.body["amendments"], 1, "{}", progress.body);
    let export = park.get("/api/studies/DEMO/export?format=json").await;
    assert_eq!(export.status, 200);
    let versions = export.body["grades"]["all_versions"].as_array().unwrap();
    let first_version = versions
        .iter()
        .find(|g| g["lossless_sha256"] == ra["first_lossless"])
        .expect("A's first version in the JSON export");
    assert_eq!(
        first_version["render_state"]["exam"], ra["first_view"]["exam"],
        "the view the grade was made on: {first_version}"
    );

    // Grade evidence from the source: `readroom grade verify` renders A's lossless frame again
    // from the encrypted bundle, with the state and watermark the worker recorded, and gets the
    // same hash.
    let grade_id: Uuid = first_version["grade_id"].as_str().unwrap().parse().unwrap();
    let verify = grade_verify(&app, grade_id);
    assert!(verify.status.success(), "{verify:?}");
    let stdout = String::from_utf8_lossy(&verify.stdout);
    assert!(stdout.contains("verified"), "{stdout}");
    assert!(
        stdout.contains(ra["first_lossless"].as_str().unwrap()),
        "{stdout}"
    );
    // A record that does not match what the bundle shows (here: the next B-scan, as a forged or
    // corrupted record would claim) is reported, with a non-zero exit.
    let recorded = app
        .db()
        .lossless_frames_sent(
            first_version["grader_id"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap(),
            first_version["case_id"].as_str().unwrap().parse().unwrap(),
            ra["first_lossless"].as_str().unwrap(),
        )
        .await
        .unwrap();
    let mut forged = recorded[0].clone();
    let mut state: Value = serde_json::from_str(&forged.state).unwrap();
    state["window"] = json!(0.5);
    forged.state = state.to_string();
    forged.stream_id = Uuid::new_v4();
    forged.sent_unix += 1;
    app.db().record_lossless_frame(&forged).await.unwrap();
    let verify = grade_verify(&app, grade_id);
    assert!(!verify.status.success(), "{verify:?}");
    let stderr = String::from_utf8_lossy(&verify.stderr);
    assert!(stderr.contains("MISMATCH"), "{stderr}");
    // Nothing to verify on an id that is no grade.
    let verify = grade_verify(&app, Uuid::new_v4());
    assert!(!verify.status.success());
    assert!(
        String::from_utf8_lossy(&verify.stderr).contains("no grade or adjudication"),
        "{verify:?}"
    );
}

/// `readroom grade verify <id>` run on the test app's data directory (its database, store,
/// worker identity and watermark key).
fn grade_verify(app: &TestApp, id: Uuid) -> std::process::Output {
    std::process::Command::new(readroom_tests::readroom_binary())
        .arg("--data-dir")
        .arg(&app.state.config.data_dir)
        .args(["grade", "verify", &id.to_string()])
        .env_remove("READROOM_CONFIG")
        .output()
        .expect("readroom grade verify runs")
}
