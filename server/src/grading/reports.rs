//! Loading what a study's reports are computed from: its records, its current form and its
//! ground truths. The statistics, exports, accuracy against ground truth and referrals
//! themselves are pure functions in `readroom_domain::grading::{stats, export, truth,
//! referrals}`, unit-tested there without a database.

use std::collections::HashMap;

use readroom_domain::grading::export::{self, Export};
use readroom_domain::grading::records::{CaseInfo, FormVersion, StudyRecords};
use readroom_domain::grading::stats::{self, Agreement, Progress};
use serde_json::Value as Json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{GradingError, LoadedForm, current_form};
use crate::db::{Db, DbError, Study};

/// Loads a study's records: cases, batches, assignments, grades and adjudication rounds (five
/// queries, none per case).
pub async fn load(db: &Db, study: &Study) -> Result<StudyRecords, DbError> {
    let cases = db
        .list_cases(study.id)
        .await?
        .into_iter()
        .map(|c| CaseInfo {
            id: c.case.id,
            label: c.case.label,
            subject: Some(c.subject),
            visit: Some(c.visit),
        })
        .collect();
    Ok(StudyRecords {
        study: study.code.as_str().to_owned(),
        cases,
        batches: db.batches_of_study(study.id).await?,
        assignments: db.assignments_for_study(study.id).await?,
        grades: db.grades_of_study(study.id).await?,
        adjudications: db.adjudications_of_study(study.id).await?,
        batch: None,
    })
}

/// Loads a study's records, limited to one batch when `batch` is given
/// ([`DbError::NotFound`] if the study has no such batch).
pub async fn load_scoped(
    db: &Db,
    study: &Study,
    batch: Option<Uuid>,
) -> Result<StudyRecords, DbError> {
    let records = load(db, study).await?;
    match batch {
        None => Ok(records),
        Some(id) => records.batch_scope(id).ok_or(DbError::NotFound),
    }
}

/// Progress of a study, or of one of its batches ([`DbError::NotFound`] for a batch the study
/// does not have), now.
pub async fn study_progress(
    db: &Db,
    study: &Study,
    batch: Option<Uuid>,
) -> Result<Progress, GradingError> {
    let records = load_scoped(db, study, batch).await?;
    Ok(stats::progress(&records, OffsetDateTime::now_utc()))
}

/// Agreement statistics of a study, or of one of its batches, on the study's current form
/// ([`GradingError::NoForm`] if it has none).
pub async fn study_agreement(
    db: &Db,
    study: &Study,
    batch: Option<Uuid>,
) -> Result<Agreement, GradingError> {
    let form = current_form(db, study).await?;
    let records = load_scoped(db, study, batch).await?;
    Ok(stats::agreement(&records, &form.form))
}

/// The form version an export describes.
pub fn form_version(loaded: &LoadedForm) -> Result<FormVersion, GradingError> {
    Ok(FormVersion {
        version: loaded.stored.version,
        fingerprint: loaded.stored.fingerprint.clone(),
        definition: super::definition_json(&loaded.stored)?,
        form: loaded.form.clone(),
    })
}

/// Loads a study's export, now ([`GradingError::NoForm`] if the study has no form).
pub async fn load_export(db: &Db, study: &Study) -> Result<Export, GradingError> {
    let form = form_version(&current_form(db, study).await?)?;
    let records = load(db, study).await?;
    Ok(export::build(records, form, OffsetDateTime::now_utc()))
}

/// The ground truths of a study's cases that have one (case id → serialized
/// [`readroom_bundle::synth::GroundTruth`]), for
/// `readroom_domain::grading::truth::truth_agreement`.
pub async fn load_truths(db: &Db, study: &Study) -> Result<HashMap<Uuid, Json>, DbError> {
    Ok(db
        .ground_truths_of_study(study.id)
        .await?
        .into_iter()
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn load_truths_reads_the_cases_that_have_one() {
        use crate::db::{NewBundle, NewCase, Recipients, StudyCode};
        let dir = std::env::temp_dir().join(format!("readroom-truth-{}", Uuid::new_v4()));
        let url = format!("sqlite://{}/readroom.db", dir.display());
        let db = Db::connect(&url).await.unwrap();
        db.migrate().await.unwrap();
        let recipients = Recipients::from_lines("age1demo").unwrap();
        let study = db
            .create_study(&StudyCode::new("DEMO").unwrap(), "Demo", &recipients)
            .await
            .unwrap();
        let other = db
            .create_study(&StudyCode::new("OTHER").unwrap(), "Other", &recipients)
            .await
            .unwrap();
        let mut ids = Vec::new();
        for (n, (study_id, truth)) in [
            (study.id, Some(json!({ "eyes": [] }))),
            (study.id, None),
            (other.id, Some(json!({ "eyes": [1] }))),
            (study.id, Some(json!({ "eyes": [2] }))),
        ]
        .into_iter()
        .enumerate()
        {
            let bundle = NewBundle {
                study_id,
                subject: format!("S{n}"),
                visit: "V1".into(),
                format: "readroom-bundle/1".into(),
                object_key: format!("bundles/{n}.age"),
                ciphertext_sha256: "ab".repeat(32),
                ciphertext_size: 1,
                plaintext_size: 1,
                file_count: 1,
                exam_count: 1,
                recipients_fingerprint: recipients.fingerprint(),
                summary: json!({ "exams": [] }),
                ingested_by: None,
            };
            let (_, case) = db
                .register_ingest(
                    &bundle,
                    &NewCase {
                        prior_bundle_id: None,
                        ground_truth: truth,
                    },
                )
                .await
                .unwrap();
            ids.push(case.id);
        }
        let listed = db.ground_truths_of_study(study.id).await.unwrap();
        assert_eq!(
            listed,
            [
                (ids[0], json!({ "eyes": [] })),
                (ids[3], json!({ "eyes": [2] }))
            ]
        );
        let truths = load_truths(&db, &study).await.unwrap();
        assert_eq!(truths.len(), 2);
        assert_eq!(truths[&ids[3]], json!({ "eyes": [2] }));
        db.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
