//! A stream never outlives the access that admitted it. Every tick, each open stream in
//! `live_streams` is checked again the way `POST /api/cases/{id}/stream` checked it: the sign-in
//! session still exists and has not reached its absolute end, the account is enabled, and the
//! user may still view the case (an assignment *and* the matching role in the case's study).
//! A stream that fails is ended on its worker (`revoked`), and one replica records why
//! (`stream.revoked`). Checking the state, instead of hooking every way access can end, covers
//! them all: assignment removed or moved, role revoked, account disabled, sign-out, sign-out
//! everywhere, session expiry, and any added later.
//!
//! The same loop closes the record of streams whose worker stopped sending heartbeats
//! (`stream.ended` with `worker_lost`), and of reservations no worker ever answered.

use std::time::Duration;

use readroom_domain::audit::{Action, Outcome};
use readroom_domain::workers::{EndReason, SessionFilter};
use serde_json::json;

use super::{EMBEDDED_ID, Pool};
use crate::access::{CaseAccess, CaseFacts};
use crate::audit::{Audit, case_target, event_by};
use crate::db::workers::LiveStream;
use crate::db::{Db, DbError};

/// A reservation older than this was never answered (the server asking died).
const RESERVATION_TIMEOUT_SECS: i64 = 60;

/// Why an open stream's access ended, or `None` if it still holds.
pub async fn why_revoked(
    db: &Db,
    stream: &LiveStream,
    now: i64,
) -> Result<Option<&'static str>, DbError> {
    match db.session_times(stream.auth_session).await? {
        None => return Ok(Some("signed_out")),
        Some((expires, _)) if expires <= now => return Ok(Some("session_expired")),
        Some(_) => {}
    }
    let user = match db.user_by_id(stream.user_id).await {
        Ok(user) => user,
        Err(DbError::NotFound) => return Ok(Some("user_removed")),
        Err(err) => return Err(err),
    };
    if user.disabled {
        return Ok(Some("user_disabled"));
    }
    let case = match db.case_by_id(stream.case_id).await {
        Ok(case) => case,
        Err(DbError::NotFound) => return Ok(Some("case_removed")),
        Err(err) => return Err(err),
    };
    let mine: Vec<_> = db
        .assignments_for_case(case.id)
        .await?
        .into_iter()
        .filter(|a| a.user_id == stream.user_id)
        .map(|a| a.role)
        .collect();
    let principal = crate::auth::principal(db, stream.user_id).await?;
    let facts = CaseFacts {
        study: case.study_id,
        assigned_as: mine.clone(),
    };
    Ok(match principal.case_access(&facts) {
        Some(CaseAccess::View) => None,
        _ if mine.is_empty() => Some("assignment_removed"),
        _ => Some("role_revoked"),
    })
}

/// Runs one pass: ends revoked streams and closes the records of lost ones.
pub async fn pass(pool: &Pool, audit: &Audit) -> Result<(), DbError> {
    let db = pool.db();
    let now = crate::auth::now_unix();
    let stale = i64::try_from(pool.config().stale_after_secs).unwrap_or(i64::MAX);
    let workers = db.workers().await?;
    record_pool_gauges(&workers, now, stale);
    let streams = db.live_streams().await?;
    if streams.is_empty() {
        return Ok(());
    }
    let alive = |id: &str| {
        id == EMBEDDED_ID
            || workers
                .iter()
                .any(|w| w.id == id && now - w.last_seen_unix <= stale)
    };
    for stream in streams {
        if stream.worker_id.is_empty() {
            if now - stream.started_unix > RESERVATION_TIMEOUT_SECS {
                db.delete_live_stream(stream.id).await?;
            }
            continue;
        }
        if !alive(&stream.worker_id) {
            worker_lost(db, audit, &stream).await;
            continue;
        }
        let Some(why) = why_revoked(db, &stream, now).await? else {
            continue;
        };
        if db.mark_live_stream_revoked(stream.id, now).await? {
            tracing::info!(session = %stream.id, user_id = %stream.user_id, why, "stream access revoked");
            let draft = stream_event(Action::StreamRevoked, Outcome::Success, &stream, "why", why);
            if let Err(err) = audit.record(draft).await {
                tracing::warn!(error = %err, "cannot audit a stream revocation");
            }
        }
        // Asked again each pass until the worker's end report removes the row.
        pool.end_stream_on(stream.id, &stream.worker_id, &workers, EndReason::Revoked)
            .await;
    }
    Ok(())
}

/// Ends `user`'s streams on cases of `study` at once, for `why` (their grant for the study was
/// revoked and no other lets them view its cases), instead of at the next pass: the streams
/// open in the record are marked and audited (`stream.revoked`) as a pass would, and every
/// worker is told to end the user's sessions in that study (`SessionFilter::user_in_study`),
/// which also reaches a stream being opened at this moment, not yet in the record with its
/// worker. Returns how many sessions the workers ended.
pub async fn end_in_study(
    pool: &Pool,
    audit: &Audit,
    user: uuid::Uuid,
    study: uuid::Uuid,
    why: &'static str,
) -> Result<usize, DbError> {
    let db = pool.db();
    let now = crate::auth::now_unix();
    for stream in db.live_streams().await? {
        if stream.user_id != user || stream.worker_id.is_empty() {
            continue;
        }
        match db.case_by_id(stream.case_id).await {
            Ok(case) if case.study_id == study => {}
            Ok(_) | Err(DbError::NotFound) => continue,
            Err(err) => return Err(err),
        }
        if db.mark_live_stream_revoked(stream.id, now).await? {
            tracing::info!(session = %stream.id, user_id = %user, why, "stream access revoked");
            let draft = stream_event(Action::StreamRevoked, Outcome::Success, &stream, "why", why);
            if let Err(err) = audit.record(draft).await {
                tracing::warn!(error = %err, "cannot audit a stream revocation");
            }
        }
    }
    let filter = SessionFilter::user_in_study(user.to_string(), study.to_string());
    Ok(pool.end(filter, EndReason::Revoked).await)
}

/// The pool as this replica sees it: workers with fresh heartbeats, and the sessions they can
/// still take (not draining).
fn record_pool_gauges(workers: &[crate::db::workers::WorkerRow], now: i64, stale: i64) {
    let fresh: Vec<_> = workers
        .iter()
        .filter(|w| now - w.last_seen_unix <= stale)
        .collect();
    let free: i64 = fresh
        .iter()
        .filter(|w| !w.draining)
        .map(|w| (w.capacity - w.active_sessions).max(0))
        .sum();
    metrics::gauge!("readroom_workers_healthy").set(fresh.len() as f64);
    metrics::gauge!("readroom_pool_free_slots").set(free as f64);
}

/// How old a stream must be before a heartbeat that does not list it closes it (a heartbeat
/// sent while the stream was being opened may not list it yet).
const UNLISTED_GRACE_SECS: i64 = 10;

/// Closes the records of streams a worker's heartbeat no longer lists (`listed`): the worker
/// restarted (a container restarted within the stale window keeps its id and its heartbeats
/// look continuous) or lost them. Without this they would stay open in the record, counted
/// against their users' stream limit, for as long as the worker lives.
pub async fn reconcile(db: &Db, audit: &Audit, worker_id: &str, listed: &[uuid::Uuid], now: i64) {
    let streams = match db.live_streams_on(worker_id).await {
        Ok(streams) => streams,
        Err(err) => {
            tracing::warn!(error = %err, "cannot reconcile a heartbeat's sessions");
            return;
        }
    };
    for stream in streams {
        if now - stream.started_unix > UNLISTED_GRACE_SECS && !listed.contains(&stream.id) {
            worker_lost(db, audit, &stream).await;
        }
    }
}

/// Closes the record of a stream whose worker went silent: the row goes, and the audit log
/// says the stream ended with its worker. If the worker comes back and reports the session,
/// its report is recorded as well.
async fn worker_lost(db: &Db, audit: &Audit, stream: &LiveStream) {
    match db.delete_live_stream(stream.id).await {
        Ok(true) => {}
        Ok(false) => return,
        Err(err) => {
            tracing::warn!(error = %err, "cannot close a lost stream");
            return;
        }
    }
    tracing::warn!(session = %stream.id, worker = %stream.worker_id, "stream lost with its worker");
    let draft = stream_event(
        Action::StreamEnded,
        Outcome::Failure,
        stream,
        "end_reason",
        EndReason::WorkerLost.as_str(),
    );
    if let Err(err) = audit.record(draft).await {
        tracing::warn!(error = %err, "cannot audit a lost stream");
    }
}

/// An audit event about an open stream, with one fact (`key`: `value`) besides its ids.
fn stream_event(
    action: Action,
    outcome: Outcome,
    stream: &LiveStream,
    key: &str,
    value: &str,
) -> readroom_domain::audit::EventDraft {
    let mut details = json!({
        "stream_id": stream.id,
        "viewer_session": stream.viewer_session,
        "worker": stream.worker_id,
    });
    details[key] = json!(value);
    event_by(
        action,
        outcome,
        Some(stream.user_id),
        Some(case_target(stream.case_id)),
        None,
        details,
    )
}

/// Closes, at start, the records of streams the previous run of the in-process worker left
/// open (a crash, or a kill before its reports were written).
pub async fn close_embedded_leftovers(db: &Db, audit: &Audit) -> Result<(), DbError> {
    for stream in db.live_streams().await? {
        if stream.worker_id == EMBEDDED_ID || stream.worker_id.is_empty() {
            worker_lost(db, audit, &stream).await;
        }
    }
    Ok(())
}

/// Runs [`pass`] every `workers.revalidate_ms` for the life of the process.
pub fn spawn(pool: Pool, audit: Audit) {
    let every = Duration::from_millis(pool.config().revalidate_ms.max(100));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(err) = pass(&pool, &audit).await {
                tracing::warn!(error = %err, "stream revalidation failed");
            }
        }
    });
}
