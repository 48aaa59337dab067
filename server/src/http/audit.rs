//! `/api/audit/*`: the auditor's views of the tamper-evident log — search, a case's access
//! history ("who saw this case, when, how long, what they did"), a user's activity, anomaly
//! flags, the chain's verification status, and exports (which are audited themselves).

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::extract::State;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use readroom_domain::audit::{
    ANOMALY_ACTIONS, Action, AnomalyRules, AuditRecord, Outcome, anomalies,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::AppError;
use super::extract::{ApiPath, ApiQuery};
use crate::audit::{case_target, timestamp, user_target};
use crate::auth::SignedIn;
use crate::db::{AuditFilter, AuditRow, DbError, User};
use crate::state::AppState;

/// Most events one search page returns.
const MAX_PAGE: u32 = 500;
/// Most events one export holds.
const MAX_EXPORT: u32 = 100_000;
/// Days of events the anomaly scan covers unless the query says otherwise.
const ANOMALY_DAYS: u32 = 7;
/// Most days one anomaly scan may cover.
const MAX_ANOMALY_DAYS: u32 = 366;
/// Most events of one action one anomaly scan loads (the newest ones of the period); only the
/// actions the rules read are loaded, so refused sign-ins cannot push anything out.
const ANOMALY_SCAN_CAP: u32 = 500_000;

/// Filters of `GET /api/audit/events` and its export (all optional, combined with AND).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    /// Events by this user (id or username).
    pub user: Option<String>,
    /// Events about this case (id).
    pub case: Option<Uuid>,
    /// Events with this action code (`case.opened` …).
    pub action: Option<String>,
    /// `success`, `denied` or `failure`.
    pub outcome: Option<String>,
    /// At or after this time (RFC 3339, or a date `YYYY-MM-DD`).
    pub from: Option<String>,
    /// Before this time (RFC 3339, or a date `YYYY-MM-DD`: up to the end of that day).
    pub to: Option<String>,
    /// Only events before this sequence number (the next page).
    pub before: Option<i64>,
    /// Page size (default 100, at most 500).
    pub limit: Option<u32>,
    /// Export format: `csv` or `json` (export route only).
    pub format: Option<String>,
}

/// Who an event names, as the auditor sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ActorView {
    /// User id.
    pub id: String,
    /// Username (empty if the user is unknown).
    pub username: String,
    /// Display name.
    pub display_name: String,
}

/// One audit event.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    /// Sequence number.
    pub seq: i64,
    /// Time (RFC 3339 UTC).
    pub at: String,
    /// Who did it (null: the system or an unidentified client).
    pub actor: Option<ActorView>,
    /// Action code.
    pub action: String,
    /// What it was about (`case:<id>`, `user:<id>`, `study:<code>`).
    pub target: Option<String>,
    /// A readable name of the target (case label, username).
    pub target_label: Option<String>,
    /// `success`, `denied` or `failure`.
    pub outcome: String,
    /// Client address.
    pub client: Option<String>,
    /// Details (JSON object).
    #[schema(value_type = Object)]
    pub details: Value,
    /// Hash of this event in the chain.
    pub hash: String,
}

/// A page of events, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    /// The events.
    pub events: Vec<EventView>,
    /// How many events match the filters in all.
    pub total: i64,
    /// `before` for the next page (null on the last page).
    pub next_before: Option<i64>,
}

/// Resolves ids in events to names, caching within one request.
struct Names {
    users: HashMap<Uuid, User>,
    cases: HashMap<Uuid, Option<String>>,
}

impl Names {
    async fn load(state: &AppState) -> Result<Names, AppError> {
        let users = state
            .db
            .list_users()
            .await?
            .into_iter()
            .map(|user| (user.id, user))
            .collect();
        Ok(Names {
            users,
            cases: HashMap::new(),
        })
    }

    fn actor(&self, id: &str) -> ActorView {
        let user = Uuid::parse_str(id).ok().and_then(|id| self.users.get(&id));
        ActorView {
            id: id.to_owned(),
            username: user.map(|u| u.username.clone()).unwrap_or_default(),
            display_name: user.map(|u| u.display_name.clone()).unwrap_or_default(),
        }
    }

    async fn target_label(&mut self, state: &AppState, target: &str) -> Option<String> {
        if let Some(id) = target
            .strip_prefix("case:")
            .and_then(|id| Uuid::parse_str(id).ok())
        {
            if let Some(label) = self.cases.get(&id) {
                return label.clone();
            }
            let label = state.db.case_by_id(id).await.ok().map(|case| case.label);
            self.cases.insert(id, label.clone());
            return label;
        }
        if let Some(id) = target
            .strip_prefix("user:")
            .and_then(|id| Uuid::parse_str(id).ok())
        {
            return self.users.get(&id).map(|u| u.username.clone());
        }
        target.strip_prefix("study:").map(str::to_owned)
    }

    async fn view(&mut self, state: &AppState, row: AuditRow) -> EventView {
        let target_label = match &row.target {
            Some(target) => self.target_label(state, target).await,
            None => None,
        };
        EventView {
            seq: row.seq,
            at: row.at,
            actor: row.actor.as_deref().map(|id| self.actor(id)),
            action: row.action,
            target: row.target,
            target_label,
            outcome: row.outcome,
            client: row.client,
            details: serde_json::from_str(&row.details).unwrap_or(Value::Null),
            hash: row.hash,
        }
    }

    async fn views(&mut self, state: &AppState, rows: Vec<AuditRow>) -> Vec<EventView> {
        let mut views = Vec::with_capacity(rows.len());
        for row in rows {
            views.push(self.view(state, row).await);
        }
        views
    }
}

/// A time filter in the log's text format; a bare date means its start (or, for `to`, the
/// start of the next day).
fn time_bound(text: &str, name: &str, end_of_day: bool) -> Result<String, AppError> {
    if let Ok(time) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(timestamp(time));
    }
    let date = time::Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .map_err(|_| {
        AppError::BadRequest(format!(
            "{name} must be an RFC 3339 time or a date YYYY-MM-DD"
        ))
    })?;
    let date = if end_of_day {
        date.next_day().unwrap_or(date)
    } else {
        date
    };
    Ok(timestamp(date.midnight().assume_utc()))
}

/// The database filter for a query; a username is resolved to its id (an unknown one matches
/// nothing).
async fn filter_of(state: &AppState, query: &EventQuery) -> Result<AuditFilter, AppError> {
    let actor = match query
        .user
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
    {
        None => None,
        Some(user) => match Uuid::parse_str(user) {
            Ok(id) => Some(id.to_string()),
            Err(_) => match state.db.user_by_username(user).await {
                Ok(found) => Some(found.id.to_string()),
                Err(DbError::NotFound) => Some(format!("unknown:{user}")),
                Err(err) => return Err(err.into()),
            },
        },
    };
    if let Some(action) = &query.action
        && action.parse::<Action>().is_err()
    {
        return Err(AppError::BadRequest(format!("unknown action {action:?}")));
    }
    if let Some(outcome) = &query.outcome
        && outcome.parse::<Outcome>().is_err()
    {
        return Err(AppError::BadRequest(
            "outcome must be success, denied or failure".into(),
        ));
    }
    Ok(AuditFilter {
        actor,
        target: query.case.map(case_target),
        action: query.action.clone(),
        outcome: query.outcome.clone(),
        from: query
            .from
            .as_deref()
            .map(|t| time_bound(t, "from", false))
            .transpose()?,
        to: query
            .to
            .as_deref()
            .map(|t| time_bound(t, "to", true))
            .transpose()?,
        before_seq: query.before,
        after_seq: None,
    })
}

/// Searches the audit log (newest first).
#[utoipa::path(get, path = "/api/audit/events", tag = "audit",
    extensions(("x-readroom-policy" = json!("auditor"))),
    params(EventQuery),
    responses((status = 200, body = EventPage), (status = 400, description = "Malformed filter")))]
pub async fn events(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<EventQuery>,
) -> Result<Json<EventPage>, AppError> {
    if query.format.is_some() {
        return Err(AppError::BadRequest(
            "format is for /api/audit/events/export".into(),
        ));
    }
    let filter = filter_of(&state, &query).await?;
    let limit = query.limit.unwrap_or(100).clamp(1, MAX_PAGE);
    let rows = state.db.search_audit(&filter, limit).await?;
    let total = state
        .db
        .count_audit(&AuditFilter {
            before_seq: None,
            ..filter.clone()
        })
        .await?;
    let next_before = if rows.len() as u32 == limit {
        rows.last().map(|row| row.seq)
    } else {
        None
    };
    let mut names = Names::load(&state).await?;
    let events = names.views(&state, rows).await;
    Ok(Json(EventPage {
        events,
        total,
        next_before,
    }))
}

/// Downloads the events matching the filters as CSV or JSON (at most 100,000, newest first).
/// The export itself is recorded (`audit.exported`).
#[utoipa::path(get, path = "/api/audit/events/export", tag = "audit",
    extensions(("x-readroom-policy" = json!("auditor"))),
    params(EventQuery),
    responses((status = 200, description = "text/csv or application/json attachment"), (status = 400)))]
pub async fn export(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiQuery(query): ApiQuery<EventQuery>,
) -> Result<Response, AppError> {
    let format = query.format.as_deref().unwrap_or("csv");
    if !matches!(format, "csv" | "json") {
        return Err(AppError::BadRequest("format must be csv or json".into()));
    }
    let filter = filter_of(&state, &query).await?;
    let rows = state.db.search_audit(&filter, MAX_EXPORT).await?;
    let count = rows.len();
    let mut names = Names::load(&state).await?;
    let views = names.views(&state, rows).await;
    let filters = json!({
        "user": query.user, "case": query.case, "action": query.action, "outcome": query.outcome,
        "from": query.from, "to": query.to,
    });
    let draft = signed_in.event(
        Action::AuditExported,
        Outcome::Success,
        None,
        json!({ "format": format, "events": count, "filters": filters }),
    );
    state.audit.record(draft).await?;
    let stamp = timestamp(OffsetDateTime::now_utc()).replace([':', '.'], "");
    let (body, content_type) = if format == "json" {
        (
            serde_json::to_vec_pretty(&views).map_err(|e| AppError::Internal(e.to_string()))?,
            "application/json",
        )
    } else {
        (events_csv(&views).into_bytes(), "text/csv; charset=utf-8")
    };
    Ok((
        [
            (CONTENT_TYPE, content_type.to_owned()),
            (
                CONTENT_DISPOSITION,
                format!("attachment; filename=\"readroom-audit-{stamp}.{format}\""),
            ),
        ],
        body,
    )
        .into_response())
}

/// The CSV form of events: one row each, details as JSON text.
fn events_csv(views: &[EventView]) -> String {
    let mut out = String::from(
        "seq,at,actor_id,actor_username,action,target,target_label,outcome,client,details,hash\n",
    );
    for view in views {
        let (actor_id, username) = view
            .actor
            .as_ref()
            .map_or(("", ""), |a| (a.id.as_str(), a.username.as_str()));
        let cells = [
            view.seq.to_string(),
            view.at.clone(),
            actor_id.to_owned(),
            username.to_owned(),
            view.action.clone(),
            view.target.clone().unwrap_or_default(),
            view.target_label.clone().unwrap_or_default(),
            view.outcome.clone(),
            view.client.clone().unwrap_or_default(),
            view.details.to_string(),
            view.hash.clone(),
        ];
        let line: Vec<String> = cells.iter().map(|cell| csv_cell(cell)).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    out
}

/// A CSV cell: quoted when needed, and a leading `=`, `+`, `-`, `@` neutralized so a
/// spreadsheet does not run it as a formula.
pub fn csv_cell(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// One user's viewing of a case, summed over their stream sessions.
#[derive(Debug, Serialize, ToSchema)]
pub struct ViewerSummary {
    /// Who.
    pub user: ActorView,
    /// Times the case page was opened.
    pub opened: u64,
    /// Stream sessions that ended.
    pub sessions: u64,
    /// Total streamed time, milliseconds.
    pub total_ms: u64,
    /// Video frames sent.
    pub frames: u64,
    /// Lossless frames the browser verified.
    pub lossless_verified: u64,
    /// Views used (`layout:exam`).
    pub views: Vec<String>,
    /// Grade events (drafts, submissions, amendments, adjudications).
    pub grade_events: u64,
    /// Refused attempts.
    pub denied: u64,
    /// First event.
    pub first_at: String,
    /// Last event.
    pub last_at: String,
}

/// Who saw a case, when, for how long, and what they did.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseHistory {
    /// Case id.
    pub case_id: String,
    /// Case label (null if the case does not exist).
    pub label: Option<String>,
    /// Code of the case's study (null if the case does not exist).
    pub study: Option<String>,
    /// Per user, oldest first.
    pub viewers: Vec<ViewerSummary>,
    /// Every event about the case, newest first (at most 500).
    pub events: Vec<EventView>,
}

fn summarize(records: &[AuditRow], names: &Names) -> Vec<ViewerSummary> {
    let mut order: Vec<String> = Vec::new();
    let mut by_user: HashMap<String, ViewerSummary> = HashMap::new();
    for row in records {
        let Some(actor) = &row.actor else { continue };
        let summary = by_user.entry(actor.clone()).or_insert_with(|| {
            order.push(actor.clone());
            ViewerSummary {
                user: names.actor(actor),
                opened: 0,
                sessions: 0,
                total_ms: 0,
                frames: 0,
                lossless_verified: 0,
                views: Vec::new(),
                grade_events: 0,
                denied: 0,
                first_at: row.at.clone(),
                last_at: row.at.clone(),
            }
        });
        summary.last_at = row.at.clone();
        let details: Value = serde_json::from_str(&row.details).unwrap_or(Value::Null);
        let number = |key: &str| details.get(key).and_then(Value::as_u64).unwrap_or(0);
        match row.action.as_str() {
            "case.opened" => summary.opened += 1,
            "case.denied" => summary.denied += 1,
            "stream.ended" => {
                summary.sessions += 1;
                summary.total_ms += number("duration_ms");
                summary.frames += number("frames");
                summary.lossless_verified += number("lossless_verified");
                for view in details
                    .get("views")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(view) = view.as_str()
                        && !summary.views.iter().any(|v| v == view)
                    {
                        summary.views.push(view.to_owned());
                    }
                }
            }
            action if action.starts_with("grade.") || action.starts_with("adjudication.") => {
                summary.grade_events += 1;
            }
            _ => {}
        }
    }
    order
        .into_iter()
        .filter_map(|actor| by_user.remove(&actor))
        .collect()
}

/// Every event of one target, oldest first (for summaries), at most `cap`.
async fn all_of(
    state: &AppState,
    filter: AuditFilter,
    cap: u32,
) -> Result<Vec<AuditRow>, AppError> {
    let mut rows = state.db.search_audit(&filter, cap).await?;
    rows.reverse();
    Ok(rows)
}

/// `GET /api/audit/cases` query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CaseLookup {
    /// A case label as the worklists show it (`C-0001`), or `STUDY/C-0001` for one study's.
    pub label: String,
}

/// A case found by its label.
#[derive(Debug, Serialize, ToSchema)]
pub struct LabelledCase {
    /// Case id (for `/api/audit/cases/{id}` and the `case` filter).
    pub case_id: Uuid,
    /// Its label.
    pub label: String,
    /// Its study's code.
    pub study: String,
}

/// The cases a label names: one per study that has a case so labelled (labels are unique
/// within a study only), so the auditor can search by the label people quote.
#[utoipa::path(get, path = "/api/audit/cases", tag = "audit",
    extensions(("x-readroom-policy" = json!("auditor"))),
    params(CaseLookup),
    responses((status = 200, body = Vec<LabelledCase>),
        (status = 400, description = "An empty or over-long label")))]
pub async fn cases_by_label(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<CaseLookup>,
) -> Result<Json<Vec<LabelledCase>>, AppError> {
    let text = query.label.trim();
    if text.is_empty() || text.len() > 100 {
        return Err(AppError::BadRequest(
            "label must be a case label such as C-0001 (or STUDY/C-0001)".into(),
        ));
    }
    let (study, label) = match text.split_once('/') {
        Some((study, label)) => (Some(study.trim()), label.trim()),
        None => (None, text),
    };
    let found = state.db.cases_labelled(label, study).await?;
    Ok(Json(
        found
            .into_iter()
            .map(|(case_id, label, study)| LabelledCase {
                case_id,
                label,
                study,
            })
            .collect(),
    ))
}

/// Who saw this case, when, for how long, and what they did.
#[utoipa::path(get, path = "/api/audit/cases/{id}", tag = "audit",
    extensions(("x-readroom-policy" = json!("auditor"))),
    params(("id" = Uuid, Path, description = "Case id")),
    responses((status = 200, body = CaseHistory)))]
pub async fn case_history(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<CaseHistory>, AppError> {
    let (label, study) = match state.db.case_by_id(id).await {
        Ok(case) => {
            let study = state.db.study_by_id(case.study_id).await?;
            (Some(case.label), Some(study.code.as_str().to_owned()))
        }
        Err(DbError::NotFound) => (None, None),
        Err(err) => return Err(err.into()),
    };
    let filter = AuditFilter {
        target: Some(case_target(id)),
        ..AuditFilter::default()
    };
    let rows = all_of(&state, filter, MAX_EXPORT).await?;
    let mut names = Names::load(&state).await?;
    let viewers = summarize(&rows, &names);
    let newest: Vec<AuditRow> = rows.into_iter().rev().take(MAX_PAGE as usize).collect();
    let events = names.views(&state, newest).await;
    Ok(Json(CaseHistory {
        case_id: id.to_string(),
        label,
        study,
        viewers,
        events,
    }))
}

/// A user's activity on one case.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserCase {
    /// Case id.
    pub case_id: String,
    /// Case label.
    pub label: Option<String>,
    /// Events about it by this user.
    pub events: u64,
    /// Last event.
    pub last_at: String,
}

/// What one user did.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserActivity {
    /// The user.
    pub user: ActorView,
    /// Events by action code.
    pub counts: BTreeMap<String, u64>,
    /// Cases the user touched, most recent first.
    pub cases: Vec<UserCase>,
    /// The user's events (as actor or as target), newest first (at most 500).
    pub events: Vec<EventView>,
}

/// Everything one user did (as the actor) and what was done to their account.
#[utoipa::path(get, path = "/api/audit/users/{id}", tag = "audit",
    extensions(("x-readroom-policy" = json!("auditor"))),
    params(("id" = Uuid, Path, description = "User id")),
    responses((status = 200, body = UserActivity), (status = 404)))]
pub async fn user_activity(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<UserActivity>, AppError> {
    let user = state.db.user_by_id(id).await?;
    let mut names = Names::load(&state).await?;
    let by = all_of(
        &state,
        AuditFilter {
            actor: Some(id.to_string()),
            ..AuditFilter::default()
        },
        MAX_EXPORT,
    )
    .await?;
    let about = all_of(
        &state,
        AuditFilter {
            target: Some(user_target(id)),
            ..AuditFilter::default()
        },
        MAX_PAGE,
    )
    .await?;
    let mut counts = BTreeMap::new();
    let mut cases: Vec<UserCase> = Vec::new();
    for row in by.iter().rev() {
        *counts.entry(row.action.clone()).or_insert(0) += 1;
        if let Some(case) = row.target.as_deref().and_then(|t| t.strip_prefix("case:")) {
            match cases.iter_mut().find(|c| c.case_id == case) {
                Some(found) => found.events += 1,
                None => cases.push(UserCase {
                    case_id: case.to_owned(),
                    label: None,
                    events: 1,
                    last_at: row.at.clone(),
                }),
            }
        }
    }
    for case in &mut cases {
        case.label = names
            .target_label(&state, &format!("case:{}", case.case_id))
            .await;
    }
    let mut rows: Vec<AuditRow> = by.into_iter().chain(about).collect();
    rows.sort_by_key(|row| std::cmp::Reverse(row.seq));
    rows.dedup_by_key(|row| row.seq);
    rows.truncate(MAX_PAGE as usize);
    let events = names.views(&state, rows).await;
    Ok(Json(UserActivity {
        user: names.actor(&user.id.to_string()),
        counts,
        cases,
        events,
    }))
}

/// An anomaly flag, with who it is about.
#[derive(Debug, Serialize, ToSchema)]
pub struct AnomalyView {
    /// `rapid_case_opens`, `outside_assignment`, `new_address_sign_in` or `refusal_storm`.
    pub kind: String,
    /// Who.
    pub actor: ActorView,
    /// The event (or first event) it points at.
    pub seq: i64,
    /// When that event happened.
    pub at: String,
    /// The case it is about (outside-assignment attempts), as a readable label.
    pub target_label: Option<String>,
    /// For rapid opens: the time of the last open in the burst.
    pub until: Option<String>,
    /// The flag's fields.
    #[schema(value_type = Object)]
    pub details: Value,
}

/// Query of `GET /api/audit/anomalies`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AnomalyQuery {
    /// Days back from now the scan covers (default 7, at most 366).
    pub days: Option<u32>,
}

/// Anomaly flags over the events of the last `days` days (default 7): many cases opened
/// quickly, access attempts outside assignment, sign-ins from new addresses, storms of refused
/// sign-ins.
#[utoipa::path(get, path = "/api/audit/anomalies", tag = "audit",
    extensions(("x-readroom-policy" = json!("auditor"))),
    params(AnomalyQuery),
    responses((status = 200, body = Vec<AnomalyView>), (status = 400, description = "`days` out of range")))]
pub async fn anomaly_flags(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<AnomalyQuery>,
) -> Result<Json<Vec<AnomalyView>>, AppError> {
    let days = query.days.unwrap_or(ANOMALY_DAYS);
    if !(1..=MAX_ANOMALY_DAYS).contains(&days) {
        return Err(AppError::BadRequest(format!(
            "days must be between 1 and {MAX_ANOMALY_DAYS}"
        )));
    }
    let from = OffsetDateTime::now_utc() - time::Duration::days(i64::from(days));
    let mut rows = Vec::new();
    for action in ANOMALY_ACTIONS {
        let filter = AuditFilter {
            action: Some(action.as_str().to_owned()),
            from: Some(timestamp(from)),
            ..AuditFilter::default()
        };
        let found = all_of(&state, filter, ANOMALY_SCAN_CAP).await?;
        if found.len() >= ANOMALY_SCAN_CAP as usize {
            tracing::warn!(action = %action, days, "anomaly scan capped: only the newest events of this action in the period were read");
        }
        rows.extend(found);
    }
    rows.sort_by_key(|row| row.seq);
    let records: Vec<AuditRecord> = rows.iter().filter_map(|row| row.to_record().ok()).collect();
    let mut names = Names::load(&state).await?;
    let at_of: HashMap<i64, &AuditRow> = rows.iter().map(|row| (row.seq, row)).collect();
    let mut views = Vec::new();
    for anomaly in anomalies(&records, &AnomalyRules::default()) {
        let details = serde_json::to_value(&anomaly).unwrap_or(Value::Null);
        let kind = details
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_owned();
        let actor = details
            .get("actor")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let row = at_of.get(&anomaly.seq());
        let target_label = match row.and_then(|r| r.target.as_deref()) {
            Some(target) => names.target_label(&state, target).await,
            None => None,
        };
        let until = details
            .get("to_seq")
            .and_then(Value::as_i64)
            .and_then(|seq| at_of.get(&seq))
            .map(|r| r.at.clone());
        views.push(AnomalyView {
            kind,
            actor: names.actor(&actor),
            seq: anomaly.seq(),
            at: row.map(|r| r.at.clone()).unwrap_or_default(),
            target_label,
            until,
            details,
        });
    }
    views.reverse();
    Ok(Json(views))
}

/// The chain's verification status.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChainStatus {
    /// No broken link found.
    pub intact: bool,
    /// Events verified intact.
    pub verified_events: u64,
    /// The last intact event's sequence number.
    pub head_seq: i64,
    /// Its hash.
    pub head_hash: String,
    /// The first broken link: its sequence number and what is wrong.
    #[schema(value_type = Object)]
    pub first_break: Option<Value>,
    /// Signed checkpoints that matched the chain.
    pub checkpoints_checked: usize,
    /// The newest verified checkpoint (`seq`, `at`, `key_id`).
    #[schema(value_type = Object)]
    pub last_checkpoint: Option<Value>,
    /// When this was verified.
    pub checked_at: Option<String>,
    /// Id of the key checkpoints are verified with.
    pub key_id: String,
}

/// A stable code for a kind of broken link (the page translates it).
fn break_code(kind: &readroom_domain::audit::BreakKind) -> &'static str {
    use readroom_domain::audit::BreakKind;
    match kind {
        BreakKind::SequenceGap { .. } => "sequence_gap",
        BreakKind::PrevMismatch => "prev_mismatch",
        BreakKind::HashMismatch => "hash_mismatch",
        BreakKind::NotCanonical => "not_canonical",
        BreakKind::CheckpointMismatch => "checkpoint_mismatch",
        BreakKind::Truncated { .. } => "truncated",
        BreakKind::BadCheckpointSignature(_) => "bad_checkpoint_signature",
        BreakKind::Unreadable(_) => "unreadable",
    }
}

/// The action codes the log can hold, in catalogue order (for filters).
#[utoipa::path(get, path = "/api/audit/actions", tag = "audit",
    extensions(("x-readroom-policy" = json!("auditor"))),
    responses((status = 200, body = Vec<String>)))]
pub async fn actions() -> Json<Vec<&'static str>> {
    Json(Action::ALL.iter().map(|action| action.as_str()).collect())
}

/// Recomputes the whole chain and checks every checkpoint, and reports its state. (Every look
/// starts from the first event, so an edit to an event verified before is found too; at the
/// measured verification speed this takes about a second per 100,000 events.)
#[utoipa::path(get, path = "/api/audit/status", tag = "audit",
    extensions(("x-readroom-policy" = json!("auditor"))),
    responses((status = 200, body = ChainStatus)))]
pub async fn status(State(state): State<AppState>) -> Result<Json<ChainStatus>, AppError> {
    let key = state.audit_signer.verifier();
    let mut cached = state.audit_verified.lock().await;
    let report = crate::audit::refresh(&state.db, &state.checkpoints, &key, &mut cached).await?;
    Ok(Json(ChainStatus {
        intact: report.is_intact(),
        verified_events: report.count,
        head_seq: report.head.seq,
        head_hash: report.head.hash.clone(),
        first_break: report.first_break.as_ref().map(
            |b| json!({ "seq": b.seq, "kind": break_code(&b.kind), "message": b.to_string() }),
        ),
        checkpoints_checked: report.checkpoints_checked,
        last_checkpoint: report
            .last_checkpoint
            .as_ref()
            .map(|c| json!({ "seq": c.seq, "at": c.at, "key_id": c.key_id })),
        checked_at: cached.checked_at.clone(),
        key_id: key.key_id().to_owned(),
    }))
}
