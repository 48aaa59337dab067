//! What workers report, written down by the server: a view shown in a stream goes to
//! `live_views` at once (what the grading form's coverage check reads while the stream is
//! open); an ended session becomes its
//! `stream_sessions` row and audit events (through [`crate::streams::record`]); a case switch
//! moves the `live_streams` row and is audited (`stream.switched_case`, once the worker had the
//! case open); every lossless frame a worker sent is audited with its render
//! state (`stream.lossless_sent`), so "who saw what" does not depend on the browser; a
//! session stopped by its lossless budget is audited (`stream.lossless_withheld`, flagged as
//! `bulk_extraction`).
//!
//! The in-process worker's events and those a worker process posts arrive here alike.

use readroom_domain::audit::{Action, Outcome};
use readroom_domain::workers::SessionEvent;
use serde_json::json;
use uuid::Uuid;

use crate::audit::{Audit, case_target, event_by};
use crate::db::Db;
use crate::db::lossless_frames::LosslessFrame;

/// Longest view label recorded (labels are `layout:exam`, a few dozen bytes).
const MAX_VIEW_LABEL: usize = 200;

/// Records one event from `worker`.
pub async fn handle(
    db: &Db,
    audit: &Audit,
    worker: &str,
    event: &SessionEvent,
) -> anyhow::Result<()> {
    match event {
        SessionEvent::CaseOpened {
            stream_id,
            user,
            case,
            previous_case,
            prefetched,
        } => {
            let user_id = Uuid::parse_str(user)?;
            let case_id = Uuid::parse_str(case)?;
            db.move_live_stream(*stream_id, case_id).await?;
            audit_report(
                audit,
                Action::StreamSwitchedCase,
                Outcome::Success,
                user_id,
                case_id,
                json!({
                    "stream_id": stream_id,
                    "worker": worker,
                    "previous_case": previous_case,
                    "prefetched": prefetched,
                }),
            )
            .await?;
        }
        SessionEvent::Viewed {
            stream_id,
            user,
            case,
            view,
        } => {
            let user_id = Uuid::parse_str(user)?;
            let case_id = Uuid::parse_str(case)?;
            if view.len() > MAX_VIEW_LABEL {
                tracing::warn!(worker, stream = %stream_id, "a view label over {MAX_VIEW_LABEL} bytes; skipped");
                return Ok(());
            }
            let now = crate::auth::now_unix();
            db.record_live_view(*stream_id, user_id, case_id, view, now)
                .await?;
        }
        SessionEvent::Lossless {
            stream_id,
            user,
            case,
            record,
            state,
            mark,
        } => {
            let user_id = Uuid::parse_str(user)?;
            let case_id = Uuid::parse_str(case)?;
            // Grade evidence is checked against this row; a delivery seen twice is recorded
            // (and audited) once.
            let first = db
                .record_lossless_frame(&LosslessFrame {
                    stream_id: *stream_id,
                    frame: i64::try_from(record.frame).unwrap_or(i64::MAX),
                    user_id,
                    case_id,
                    sha256: record.sha256.to_ascii_lowercase(),
                    bytes: i64::try_from(record.bytes).unwrap_or(i64::MAX),
                    revealed_px: i64::try_from(record.revealed_px).unwrap_or(i64::MAX),
                    state: serde_json::to_string(state)?,
                    sent_unix: crate::auth::now_unix(),
                    mark: mark.as_ref().map(serde_json::to_string).transpose()?,
                })
                .await?;
            if !first {
                return Ok(());
            }
            audit_report(
                audit,
                Action::StreamLosslessSent,
                Outcome::Success,
                user_id,
                case_id,
                json!({
                    "stream_id": stream_id,
                    "worker": worker,
                    "frame": record.frame,
                    "sha256": record.sha256,
                    "bytes": record.bytes,
                    "state": state,
                }),
            )
            .await?;
        }
        SessionEvent::LosslessWithheld {
            stream_id,
            user,
            case,
            reason,
            spent_px,
            frame_px,
            state,
        } => {
            let user_id = Uuid::parse_str(user)?;
            let case_id = Uuid::parse_str(case)?;
            tracing::warn!(user_id = %user_id, stream = %stream_id, reason = reason.as_str(),
                spent_px, "lossless budget reached; the session goes on lossy");
            audit_report(
                audit,
                Action::StreamLosslessWithheld,
                Outcome::Denied,
                user_id,
                case_id,
                json!({
                    "stream_id": stream_id,
                    "worker": worker,
                    "reason": reason,
                    "spent_px": spent_px,
                    "frame_px": frame_px,
                    "state": state,
                }),
            )
            .await?;
        }
        SessionEvent::CaseLeft(report) => crate::streams::record(db, audit, report).await?,
        SessionEvent::Ended(report) => {
            db.delete_live_stream(report.stream_id).await?;
            crate::streams::record(db, audit, report).await?;
            // The report holds every view now (and each case left earlier had its own).
            db.delete_live_views(report.stream_id).await?;
        }
    }
    Ok(())
}

/// Appends the audit event of a worker's report about `user` on `case`.
async fn audit_report(
    audit: &Audit,
    action: Action,
    outcome: Outcome,
    user: Uuid,
    case: Uuid,
    details: serde_json::Value,
) -> anyhow::Result<()> {
    let draft = event_by(
        action,
        outcome,
        Some(user),
        Some(case_target(case)),
        None,
        details,
    );
    audit.record(draft).await?;
    Ok(())
}

/// Records events in order. An event naming ids that are not UUIDs is logged and skipped; a
/// database or audit failure stops the batch (the worker sends it again, and an end report
/// already recorded is not recorded twice).
pub async fn handle_all(
    db: &Db,
    audit: &Audit,
    worker: &str,
    events: &[SessionEvent],
) -> anyhow::Result<()> {
    for event in events {
        match handle(db, audit, worker, event).await {
            Ok(()) => {}
            Err(err) if err.is::<uuid::Error>() => {
                tracing::warn!(worker, error = %err, "a session event names an invalid id; skipped");
            }
            Err(err) => return Err(err),
        }
    }
    Ok(())
}
