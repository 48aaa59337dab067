//! Case and study listings.
//!
//! Until sign-in lands (the identity issue), these routes list metadata only (labels, pseudonyms,
//! exam kinds) and the server binds to loopback by default.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use crate::http::AppError;
use crate::state::AppState;

/// A study as the API shows it.
#[derive(Debug, Serialize)]
pub struct StudyView {
    /// Study code.
    pub code: String,
    /// Title.
    pub title: String,
    /// Number of recipients bundles are encrypted to.
    pub recipients: usize,
}

/// A case as the API lists it.
#[derive(Debug, Serialize)]
pub struct CaseView {
    /// Case id.
    pub case_id: String,
    /// Label within the study (`C-0001`).
    pub label: String,
    /// Study code.
    pub study: String,
    /// Subject pseudonym.
    pub subject: String,
    /// Visit pseudonym.
    pub visit: String,
    /// Number of exams.
    pub exam_count: u32,
    /// Non-PHI exam summary (ids, kinds, eyes, frames, dimensions).
    pub exams: serde_json::Value,
}

/// `GET /api/studies`.
pub async fn list_studies(State(state): State<AppState>) -> Result<Json<Vec<StudyView>>, AppError> {
    let studies = state.db.list_studies().await?;
    Ok(Json(
        studies
            .into_iter()
            .map(|study| StudyView {
                code: study.code.as_str().to_owned(),
                title: study.title,
                recipients: study.recipients.as_slice().len(),
            })
            .collect(),
    ))
}

/// `GET /api/cases`.
pub async fn list_cases(State(state): State<AppState>) -> Result<Json<Vec<CaseView>>, AppError> {
    let cases = state.db.list_all_cases().await?;
    Ok(Json(
        cases
            .into_iter()
            .map(|summary| CaseView {
                case_id: summary.case.id.to_string(),
                label: summary.case.label,
                study: summary.study_code.as_str().to_owned(),
                subject: summary.subject,
                visit: summary.visit,
                exam_count: summary.exam_count,
                exams: summary
                    .summary
                    .get("exams")
                    .cloned()
                    .unwrap_or(serde_json::Value::Array(Vec::new())),
            })
            .collect(),
    ))
}
