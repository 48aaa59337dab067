//! Recording what the streaming worker reports about ended sessions.

use readroom_worker::stream::SessionReport;
use uuid::Uuid;

use crate::db::Db;
use crate::db::streams::StreamSession;

/// Stores one ended session; reports naming ids that are not UUIDs are refused.
pub async fn record(db: &Db, report: &SessionReport) -> anyhow::Result<()> {
    let user_id = Uuid::parse_str(&report.user)?;
    let case_id = Uuid::parse_str(&report.case)?;
    let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let end_reason = serde_json::to_value(report.end)?
        .as_str()
        .unwrap_or("unknown")
        .to_owned();
    db.record_stream_session(&StreamSession {
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
        end_reason,
        views: serde_json::to_string(&report.views)?,
        lossless: serde_json::to_string(&report.lossless)?,
    })
    .await?;
    Ok(())
}
