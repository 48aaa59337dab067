//! How stored grading records are shown: a grade, an adjudication round with its blind
//! grades and agreeing values, and the worklist a user may work on (hidden repeats masked and
//! held back until their batch's first gradings are done). Pure functions of loaded rows.

use serde_json::{Value, json};
use uuid::Uuid;

use super::types::{AdjudicationView, BlindGrade, CaseProgress, GradeView};
use crate::auth::SignedIn;
use crate::db::grading::{Adjudication, Grade};
use crate::db::{AssignedCase, AssignmentKind, AssignmentStatus};
use crate::grading;
use crate::http::format::rfc3339;

pub(super) fn grade_view(grade: &Grade) -> GradeView {
    GradeView {
        id: grade.id.to_string(),
        version: grade.version,
        values: Value::Object(grade.values.clone()),
        submitted_at: rfc3339(grade.submitted_at),
        lossless_sha256: grade.lossless_sha256.clone(),
        reason: grade.reason.clone(),
    }
}

pub(super) fn adjudication_view(round: &Adjudication, grades: &[Grade]) -> AdjudicationView {
    let blind: Vec<BlindGrade> = round
        .grade_ids
        .iter()
        .zip(["A", "B", "C", "D"])
        .filter_map(|(id, label)| {
            let grade = grades.iter().find(|g| g.id == *id)?;
            Some(BlindGrade {
                label: label.to_owned(),
                values: Value::Object(grade.values.clone()),
                submitted_at: rfc3339(grade.submitted_at),
            })
        })
        .collect();
    let disagreements = round.disagreements.clone();
    let prefill = match blind.as_slice() {
        [a, b] => agreeing_values(&a.values, &b.values, &disagreements),
        _ => json!({}),
    };
    AdjudicationView {
        id: round.id.to_string(),
        round: round.round,
        status: round.status.as_str().to_owned(),
        disagreements,
        grades: blind,
        final_values: round.values.clone().map(Value::Object),
        prefill,
    }
}

/// The values two grades (normalized JSON: `{ key: value }` or `{ key: { "OD": v, "OS": v } }`)
/// have in common, leaving out every flagged disagreement (`[{ "field", "eye" }]`).
fn agreeing_values(a: &Value, b: &Value, disagreements: &Value) -> Value {
    let flagged = |field: &str, eye: Option<&str>| {
        disagreements.as_array().is_some_and(|list| {
            list.iter().any(|d| {
                d.get("field").and_then(Value::as_str) == Some(field)
                    && d.get("eye").and_then(Value::as_str) == eye
            })
        })
    };
    let mut out = serde_json::Map::new();
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return Value::Object(out);
    };
    for (key, va) in a {
        let Some(vb) = b.get(key) else {
            continue;
        };
        match (va, vb) {
            (Value::Object(ea), Value::Object(eb)) => {
                let eyes: serde_json::Map<String, Value> = ea
                    .iter()
                    .filter(|(eye, v)| eb.get(*eye) == Some(*v) && !flagged(key, Some(eye)))
                    .map(|(eye, v)| (eye.clone(), v.clone()))
                    .collect();
                if !eyes.is_empty() {
                    out.insert(key.clone(), Value::Object(eyes));
                }
            }
            _ if va == vb && !flagged(key, None) => {
                out.insert(key.clone(), va.clone());
            }
            _ => {}
        }
    }
    Value::Object(out)
}

/// The rows of a user's worklist they may still work on: roles they hold, and hidden repeats
/// only once every first grading of their batch is done ([`grading::repeat_revealed`]). A repeat
/// is its own row, presented under a masked label ([`grading::presented`]) and addressed by its
/// own id ([`grading::address`]); repeats come after the first gradings, in the order of their
/// masked labels, so neither their place nor their address points at the case they repeat.
pub fn visible_worklist(
    rows: Vec<AssignedCase>,
    signed_in: &SignedIn,
) -> Vec<crate::db::AssignedCase> {
    let held: Vec<grading::Held> = rows
        .iter()
        .map(|r| grading::Held {
            batch_id: r.batch_id,
            role: r.role,
            kind: r.kind,
            status: r.status,
        })
        .collect();
    let (primary, repeats): (Vec<AssignedCase>, Vec<AssignedCase>) = rows
        .into_iter()
        .filter(|row| {
            signed_in
                .principal
                .has_in_study(row.role.into(), row.case.case.study_id)
        })
        .partition(|row| row.kind != AssignmentKind::Repeat);
    let mut repeats: Vec<(String, AssignedCase)> = repeats
        .into_iter()
        .filter(|row| grading::repeat_revealed(row.batch_id, row.role, held.iter().copied()))
        .map(|row| {
            let masked =
                grading::presented(AssignmentKind::Repeat, row.assignment_id, "", "", "").label;
            (masked, row)
        })
        .collect();
    repeats.sort_by(|(x, _), (y, _)| x.cmp(y));
    primary
        .into_iter()
        .chain(repeats.into_iter().map(|(_, row)| row))
        .collect()
}

/// The address of a worklist row ([`grading::address`]).
pub fn row_address(row: &AssignedCase) -> Uuid {
    grading::address(row.kind, row.assignment_id, row.case.case.id)
}

/// [`next_case`] over the caller's visible worklist already loaded.
pub(super) fn next_in(rows: &[AssignedCase], current: Uuid) -> Option<String> {
    let position = rows.iter().position(|r| row_address(r) == current);
    let open = |r: &&AssignedCase| r.status != AssignmentStatus::Done && row_address(r) != current;
    let next = match position {
        Some(at) => rows[at + 1..]
            .iter()
            .find(open)
            .or_else(|| rows[..at].iter().find(open)),
        None => rows.iter().find(open),
    };
    next.map(|r| row_address(r).to_string())
}

/// Where `address` stands among `rows` (the caller's visible worklist): counted within the
/// rows of its batch (or, unbatched, its study) and role, in worklist order. Hidden repeats
/// are not in `rows` until revealed, so they are never counted before.
pub(super) fn progress_of(rows: &[AssignedCase], address: Uuid) -> Option<CaseProgress> {
    let this = rows.iter().find(|r| row_address(r) == address)?;
    let same = |r: &&AssignedCase| {
        r.role == this.role
            && match this.batch_id {
                Some(batch) => r.batch_id == Some(batch),
                None => r.batch_id.is_none() && r.case.case.study_id == this.case.case.study_id,
            }
    };
    let work: Vec<&AssignedCase> = rows.iter().filter(same).collect();
    Some(CaseProgress {
        position: work.iter().position(|r| row_address(r) == address)? + 1,
        total: work.len(),
        done: work
            .iter()
            .filter(|r| r.status == AssignmentStatus::Done)
            .count(),
    })
}
