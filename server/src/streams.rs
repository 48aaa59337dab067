//! Recording what the streaming worker reports about ended sessions: the `stream_sessions` row
//! and its audit events (`stream.ended`, and `stream.lossless_shown` for every lossless frame the
//! browser verified).

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
