//! Commands an auditor runs on evidence: `readroom grade verify` (a grade's lossless frame,
//! rendered again from the encrypted bundle, must hash to what the grade names) and the owner
//! lookup of `readroom watermark decode` (whose viewer session a leaked picture carries).
//!
//! The database side lives here; rendering needs the worker crate and a worker identity, so it
//! is [`crate::worker_cmd::rerender_sha256`], absent from the API-only build.

use std::path::Path;

use anyhow::{Context, anyhow, bail};
use readroom_domain::view::ViewState;
use readroom_domain::workers::MarkRecord;
use uuid::Uuid;

use crate::cli::open_db;
use crate::config::Config;
use crate::db::{Db, DbError};

/// What a recorded lossless frame was rendered from, as the database holds it.
#[derive(Debug, Clone)]
pub struct FrameToRender {
    /// The case's bundle object key.
    pub bundle: String,
    /// Its prior visit's bundle object key.
    pub prior_bundle: Option<String>,
    /// The recorded render state.
    pub state: ViewState,
    /// The recorded watermark.
    pub mark: MarkRecord,
}

/// A grade's (or an adjudication's) claim: this user graded this case on this lossless frame.
#[derive(Debug)]
struct Claim {
    what: String,
    user: Uuid,
    case: Uuid,
    sha256: String,
}

/// Finds grade version or adjudication `id` and the lossless frame it names.
async fn claim(db: &Db, id: Uuid) -> anyhow::Result<Claim> {
    let (what, user, case, sha256) = match db.grade_by_id(id).await {
        Ok(grade) => (
            format!("grade {id} (version {})", grade.version),
            grade.grader_id,
            grade.case_id,
            grade.lossless_sha256,
        ),
        Err(DbError::NotFound) => match db.adjudication_by_id(id).await {
            Ok(adjudication) => {
                let user = adjudication
                    .adjudicator_id
                    .ok_or_else(|| anyhow!("adjudication {id} is not resolved yet"))?;
                (
                    format!("adjudication {id} (round {})", adjudication.round),
                    user,
                    adjudication.case_id,
                    adjudication.lossless_sha256,
                )
            }
            Err(DbError::NotFound) => bail!("no grade or adjudication has the id {id}"),
            Err(err) => return Err(err.into()),
        },
        Err(err) => return Err(err.into()),
    };
    let sha256 = sha256.ok_or_else(|| {
        anyhow!("{what} names no lossless frame: it was submitted without one, so there is nothing to verify")
    })?;
    Ok(Claim {
        what,
        user,
        case,
        sha256: sha256.to_ascii_lowercase(),
    })
}

/// `readroom grade verify <id>`: renders the lossless frame a grade (or adjudication) names
/// again from the case's encrypted bundle, with the render state and watermark the worker
/// recorded when it sent that frame to the grader, and compares the pixel hashes. Fails (non-zero
/// exit) when no worker recorded sending the frame, or the render differs.
pub async fn grade_verify(
    config: &Config,
    id: Uuid,
    identity: Option<&Path>,
    key_file: Option<&Path>,
) -> anyhow::Result<()> {
    let db = open_db(config).await?;
    let claim = claim(&db, id).await?;
    let frames = db
        .lossless_frames_sent(claim.user, claim.case, &claim.sha256)
        .await?;
    if frames.is_empty() {
        bail!(
            "{} names lossless frame {}, but no worker recorded sending that frame to user {} for case {}: the evidence is not attested",
            claim.what,
            claim.sha256,
            claim.user,
            claim.case
        );
    }
    let Some(frame) = frames.iter().find(|f| f.mark.is_some()) else {
        bail!(
            "{}: its frame {} was recorded before workers recorded the watermark (December 2026), so it cannot be rendered again; the record shows it was sent (stream {}, frame {})",
            claim.what,
            claim.sha256,
            frames[0].stream_id,
            frames[0].frame
        );
    };
    let state: ViewState = serde_json::from_str(&frame.state)
        .with_context(|| format!("the recorded render state of frame {}", frame.frame))?;
    let mark: MarkRecord = serde_json::from_str(frame.mark.as_deref().unwrap_or_default())
        .with_context(|| format!("the recorded watermark of frame {}", frame.frame))?;
    let case = db.case_by_id(claim.case).await?;
    let bundle = db.bundle_by_id(case.bundle_id).await?;
    let prior_bundle = match case.prior_bundle_id {
        Some(prior) => Some(db.bundle_by_id(prior).await?.object_key),
        None => None,
    };
    println!("{}", claim.what);
    println!("  case {} ({}), user {}", case.id, case.label, claim.user);
    println!(
        "  lossless frame {} of stream {}, sent to that user (worker's record)",
        frame.frame, frame.stream_id
    );
    let rendered = crate::worker_cmd::rerender_sha256(
        config,
        identity,
        key_file,
        FrameToRender {
            bundle: bundle.object_key.clone(),
            prior_bundle,
            state,
            mark,
        },
    )
    .await?;
    println!("  recorded sha256 {}", claim.sha256);
    println!("  rendered sha256 {rendered}");
    if rendered != claim.sha256 {
        bail!(
            "MISMATCH: {} names a frame that bundle {} does not render to in the recorded state",
            claim.what,
            bundle.object_key
        );
    }
    println!(
        "verified: the frame is exactly what bundle {} shows in the recorded state",
        bundle.object_key
    );
    Ok(())
}

/// After `readroom watermark decode`: whose viewer session carries these 8 bytes. The lookup
/// is best effort (the decoder may run where the database is not); the decode stands either way.
pub async fn print_watermark_owner(config: &Config, prefix: [u8; 8]) -> anyhow::Result<()> {
    let db = match open_db(config).await {
        Ok(db) => db,
        Err(err) => {
            eprintln!("cannot look the viewer session up (no database): {err:#}");
            return Ok(());
        }
    };
    let sessions = db.viewer_sessions_with_prefix(prefix).await?;
    if sessions.is_empty() {
        println!("no viewer session with that prefix was issued by this database");
    }
    for (session, user_id, created_unix) in sessions {
        let username = match db.user_by_id(user_id).await {
            Ok(user) => user.username,
            Err(DbError::NotFound) => "(deleted user)".to_owned(),
            Err(err) => return Err(err.into()),
        };
        let issued = time::OffsetDateTime::from_unix_timestamp(created_unix)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_else(|| created_unix.to_string());
        println!("issued: viewer session {session} to user {user_id} ({username}) at {issued}");
    }
    Ok(())
}
