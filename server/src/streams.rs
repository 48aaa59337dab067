//! Recording what the streaming worker reports about ended sessions: the `stream_sessions` row
//! and its audit events (`stream.ended`, and `stream.lossless_shown` for every lossless frame the
//! browser verified), and `stream.prior_viewed` against the prior visit's case when its images
//! were shown beside this one.

use readroom_domain::audit::{Action, Outcome};
use readroom_domain::workers::SessionReport;
use serde_json::json;
use uuid::Uuid;

use crate::audit::{Audit, case_target, event_by};
use crate::db::Db;
use crate::db::streams::StreamSession;

/// Stores one ended session and audits it; reports naming ids that are not UUIDs are refused.
pub async fn record(db: &Db, audit: &Audit, report: &SessionReport) -> anyhow::Result<()> {
    let user_id = Uuid::parse_str(&report.user)?;
    let case_id = Uuid::parse_str(&report.case)?;
    let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let end_reason = report.end.as_str().to_owned();
    let inserted = db
        .record_stream_session(&StreamSession {
            id: report.stream_id,
            viewer_session: report.viewer_session.clone(),
            user_id,
            case_id,
            started_unix: report.started_unix,
            duration_ms: clamp(report.duration_ms),
            frames: clamp(report.frames),
            bytes_sent: clamp(report.bytes_sent),
            messages: clamp(report.messages),
            refused: clamp(report.refused),
            end_reason: end_reason.clone(),
            views: serde_json::to_string(&report.views)?,
            lossless: serde_json::to_string(&report.lossless)?,
        })
        .await?;
    if !inserted {
        tracing::debug!(session = %report.stream_id, "stream session already recorded");
        return Ok(());
    }
    for lossless in report.lossless.iter().filter(|l| l.verified == Some(true)) {
        audit
            .record(event_by(
                Action::StreamLosslessShown,
                Outcome::Success,
                Some(user_id),
                Some(case_target(case_id)),
                None,
                json!({
                    "stream_id": report.stream_id,
                    "frame": lossless.frame,
                    "sha256": lossless.sha256,
                }),
            ))
            .await?;
    }
    audit_prior_views(db, audit, report, user_id, case_id).await?;
    audit
        .record(event_by(
            Action::StreamEnded,
            Outcome::Success,
            Some(user_id),
            Some(case_target(case_id)),
            None,
            json!({
                "stream_id": report.stream_id,
                "viewer_session": report.viewer_session,
                "duration_ms": report.duration_ms,
                "frames": report.frames,
                "views": report.views,
                "lossless_frames": report.lossless.len(),
                "lossless_verified": report.lossless.iter().filter(|l| l.verified == Some(true)).count(),
                "bytes_sent": report.bytes_sent,
                "messages": report.messages,
                "refused": report.refused,
                "end_reason": end_reason,
            }),
        ))
        .await?;
    Ok(())
}

/// The prefix of a view the worker reports for the prior-visit layout (`prior:<exam>`).
const PRIOR_VIEW_PREFIX: &str = "prior:";

/// Records `stream.prior_viewed` against each case of the prior visit whose images the session
/// showed beside `case_id`, so that a case's access history includes those who saw it as
/// someone else's prior visit.
async fn audit_prior_views(
    db: &Db,
    audit: &Audit,
    report: &SessionReport,
    user_id: Uuid,
    case_id: Uuid,
) -> anyhow::Result<()> {
    let views: Vec<&str> = report
        .views
        .iter()
        .map(String::as_str)
        .filter(|view| view.starts_with(PRIOR_VIEW_PREFIX))
        .collect();
    if views.is_empty() {
        return Ok(());
    }
    let Some(prior_bundle) = db.case_by_id(case_id).await?.prior_bundle_id else {
        tracing::warn!(session = %report.stream_id, "prior views reported on a case without a prior visit");
        return Ok(());
    };
    for prior_case in db.cases_with_bundle(prior_bundle).await? {
        audit
            .record(event_by(
                Action::StreamPriorViewed,
                Outcome::Success,
                Some(user_id),
                Some(case_target(prior_case)),
                None,
                json!({
                    "stream_id": report.stream_id,
                    "via_case": case_id,
                    "prior_bundle": prior_bundle,
                    "views": views,
                }),
            ))
            .await?;
    }
    Ok(())
}
