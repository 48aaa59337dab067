//! Urgent referrals: grades and final grades that tick `urgent_referral` (the ICDR and demo
//! presets have it), for the study's coordinators to act on at once, as a reading centre refers
//! sight-threatening findings. Pure selection over loaded rows.

use std::collections::HashMap;

use time::OffsetDateTime;
use uuid::Uuid;

use serde_json::{Map, Value as Json};

use super::records::{Adjudication, Grade};

/// The form field that flags a case for urgent referral.
pub const URGENT_FIELD: &str = "urgent_referral";
/// The free-text field shown beside a referral.
pub const COMMENT_FIELD: &str = "comment";

/// One grade or final grade that asks for an urgent referral.
#[derive(Debug, Clone, PartialEq)]
pub struct Referral {
    /// The case.
    pub case_id: Uuid,
    /// Who flagged it.
    pub by: Uuid,
    /// `grader` or `adjudicator`.
    pub role: &'static str,
    /// When the flagging grade was submitted (or the adjudication resolved).
    pub at: OffsetDateTime,
    /// The grade's comment, if any.
    pub comment: Option<String>,
}

/// `Some(comment)` if the values tick the urgent-referral flag.
fn flagged(values: &Map<String, Json>) -> Option<Option<String>> {
    if values.get(URGENT_FIELD) != Some(&Json::Bool(true)) {
        return None;
    }
    Some(
        values
            .get(COMMENT_FIELD)
            .and_then(Json::as_str)
            .map(str::to_owned),
    )
}

/// The referrals among a study's grades (only each assignment's latest version counts: an
/// amendment that unticks the flag withdraws it) and resolved adjudications, newest first.
pub fn referrals(grades: &[Grade], adjudications: &[Adjudication]) -> Vec<Referral> {
    let mut latest: HashMap<Uuid, &Grade> = HashMap::new();
    for grade in grades {
        let slot = latest.entry(grade.assignment_id).or_insert(grade);
        if grade.version > slot.version {
            *slot = grade;
        }
    }
    let mut found: Vec<Referral> = latest
        .values()
        .filter_map(|grade| {
            flagged(&grade.values).map(|comment| Referral {
                case_id: grade.case_id,
                by: grade.grader_id,
                role: "grader",
                at: grade.submitted_at,
                comment,
            })
        })
        .collect();
    found.extend(adjudications.iter().filter_map(|round| {
        let values = round.values.as_ref()?;
        let comment = flagged(values)?;
        Some(Referral {
            case_id: round.case_id,
            by: round.adjudicator_id?,
            role: "adjudicator",
            at: round.resolved_at?,
            comment,
        })
    }));
    found.sort_by(|a, b| b.at.cmp(&a.at).then(a.case_id.cmp(&b.case_id)));
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grading::records::AdjudicationStatus;

    fn values(text: &str) -> Map<String, Json> {
        serde_json::from_str(text).unwrap()
    }

    fn grade(assignment: u128, version: i32, text: &str, minute: i64) -> Grade {
        Grade {
            id: Uuid::new_v4(),
            assignment_id: Uuid::from_u128(assignment),
            case_id: Uuid::from_u128(100 + assignment),
            grader_id: Uuid::from_u128(200 + assignment),
            form_id: Uuid::nil(),
            version,
            values: values(text),
            render_state: None,
            lossless_sha256: None,
            reason: None,
            duration_ms: None,
            submitted_at: OffsetDateTime::from_unix_timestamp(minute * 60).unwrap(),
        }
    }

    #[test]
    fn only_the_latest_version_of_each_grade_and_resolved_final_grades_count() {
        let grades = [
            // Flagged, then withdrawn by an amendment.
            grade(1, 1, r#"{"urgent_referral": true}"#, 1),
            grade(1, 2, r#"{"urgent_referral": false}"#, 2),
            // Flagged with a comment, in its latest version.
            grade(2, 1, r#"{"dr_grade": {"OD": 4}}"#, 3),
            grade(2, 2, r#"{"urgent_referral": true, "comment": "PDR OD"}"#, 4),
            // Not flagged; a string "true" is not a flag.
            grade(3, 1, r#"{"urgent_referral": "true"}"#, 5),
        ];
        let resolved = Adjudication {
            id: Uuid::new_v4(),
            case_id: Uuid::from_u128(103),
            round: 1,
            disagreements: Json::Array(Vec::new()),
            grade_ids: Vec::new(),
            status: AdjudicationStatus::Resolved,
            created_at: OffsetDateTime::from_unix_timestamp(0).unwrap(),
            adjudicator_id: Some(Uuid::from_u128(9)),
            form_id: None,
            values: Some(values(r#"{"urgent_referral": true}"#)),
            render_state: None,
            lossless_sha256: None,
            reason: None,
            resolved_at: Some(OffsetDateTime::from_unix_timestamp(600).unwrap()),
        };
        let open = Adjudication {
            values: None,
            resolved_at: None,
            adjudicator_id: None,
            ..resolved.clone()
        };
        let found = referrals(&grades, &[resolved, open]);
        let summary: Vec<(Uuid, &str, Option<&str>)> = found
            .iter()
            .map(|r| (r.case_id, r.role, r.comment.as_deref()))
            .collect();
        assert_eq!(
            summary,
            [
                (Uuid::from_u128(103), "adjudicator", None),
                (Uuid::from_u128(102), "grader", Some("PDR OD")),
            ]
        );
    }
}
