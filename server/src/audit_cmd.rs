//! `readroom audit verify | export | checkpoint`: the auditor's command line.
//!
//! `verify` recomputes the chain from the database (or from an export file, offline) and checks
//! every signed checkpoint in the object store; `export` writes JSON Lines an auditor can verify
//! elsewhere with nothing but the public key; `checkpoint` signs the current head now.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use readroom_domain::audit::{
    Action, AuditRecord, ChainHead, Checkpoint, CheckpointVerifier, Outcome, Report, Verifier,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::{self, Audit};
use crate::config::Config;

/// The format name in an export's header line.
pub const EXPORT_FORMAT: &str = "readroom-audit-export/1";

/// One line of an export file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ExportLine {
    /// The first line: what the file holds and the key its checkpoints verify with.
    Header {
        /// [`EXPORT_FORMAT`].
        format: String,
        /// When the export was made.
        exported_at: String,
        /// Hex Ed25519 public key of the checkpoints.
        public_key: String,
        /// Its key id.
        key_id: String,
        /// The head before the first exported event (genesis for a full export).
        start: ChainHead,
        /// Number of event lines.
        events: u64,
    },
    /// An event, as stored.
    Event(AuditRecord),
    /// A signed checkpoint of the chain.
    Checkpoint(Checkpoint),
}

/// The key checkpoints are verified with: `audit.public_key` when set, else the public half of
/// this installation's signing key.
fn verifying_key(config: &Config) -> anyhow::Result<CheckpointVerifier> {
    if !config.audit.public_key.is_empty() {
        return CheckpointVerifier::from_public_key_hex(&config.audit.public_key)
            .map_err(|err| anyhow::anyhow!("audit.public_key: {err}"));
    }
    Ok(audit::load_or_create_key(&config.audit_key_path())?.verifier())
}

/// Prints the outcome of a verification; an error (non-zero exit) when the chain is broken.
fn conclude(report: &Report, unreadable: &[String]) -> anyhow::Result<()> {
    for problem in unreadable {
        eprintln!("warning: {problem}");
    }
    let checkpoint = report.last_checkpoint.as_ref().map_or_else(
        || "no checkpoint covers it yet".to_owned(),
        |c| format!("last at event {} signed {} (key {})", c.seq, c.at, c.key_id),
    );
    match &report.first_break {
        None => {
            println!(
                "audit chain intact: {} events verified, head event {} hash {}; {} checkpoint(s) verified, {checkpoint}",
                report.count, report.head.seq, report.head.hash, report.checkpoints_checked
            );
            Ok(())
        }
        Some(found) => anyhow::bail!(
            "audit chain BROKEN: {found}; {} events before it verified",
            report.count
        ),
    }
}

/// `readroom audit verify [--from-checkpoint] [--file EXPORT]`.
pub async fn verify_cmd(
    config: &Config,
    from_checkpoint: bool,
    file: Option<PathBuf>,
) -> anyhow::Result<()> {
    let key = verifying_key(config)?;
    if let Some(file) = file {
        let report = verify_export(&file, &key)?;
        return conclude(&report, &[]);
    }
    let db = crate::cli::open_db(config).await?;
    let store = crate::store::open_checkpoints(config).await?;
    let (checkpoints, unreadable) =
        audit::split_checkpoints(audit::load_checkpoints(&store).await?);
    let start = if from_checkpoint {
        let mut verified: Vec<&Checkpoint> = checkpoints
            .iter()
            .filter(|c| key.verify(c).is_ok())
            .collect();
        verified.sort_by_key(|c| c.seq);
        let last = verified
            .last()
            .context("--from-checkpoint: no checkpoint that verifies with the audit key")?;
        println!(
            "starting from the checkpoint at event {} ({})",
            last.seq, last.at
        );
        Some(last.head())
    } else {
        None
    };
    let report = audit::verify(&db, start.as_ref(), &checkpoints, Some(&key)).await?;
    conclude(&report, &unreadable)
}

/// Verifies an export file offline: its events from its start head, and its checkpoints.
pub fn verify_export(path: &Path, key: &CheckpointVerifier) -> anyhow::Result<Report> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut lines = std::io::BufReader::new(file).lines();
    let first = lines
        .next()
        .context("the export is empty")?
        .context("cannot read the export")?;
    let ExportLine::Header { format, start, .. } =
        serde_json::from_str(&first).context("line 1 is not an export header")?
    else {
        anyhow::bail!("line 1 is not an export header");
    };
    if format != EXPORT_FORMAT {
        anyhow::bail!("unknown export format {format:?} (expected {EXPORT_FORMAT})");
    }
    let mut events = Vec::new();
    let mut checkpoints = Vec::new();
    for (index, line) in lines.enumerate() {
        let line = line.context("cannot read the export")?;
        match serde_json::from_str(&line)
            .with_context(|| format!("line {} is not an export line", index + 2))?
        {
            ExportLine::Event(record) => events.push(record),
            ExportLine::Checkpoint(checkpoint) => checkpoints.push(checkpoint),
            ExportLine::Header { .. } => anyhow::bail!("line {}: a second header", index + 2),
        }
    }
    let mut verifier = if start.seq == 0 {
        Verifier::new()
    } else {
        Verifier::from_checkpoint(&start)
    }
    .with_checkpoints(&checkpoints, Some(key));
    for record in &events {
        if verifier.push(record).is_err() {
            break;
        }
    }
    Ok(verifier.finish())
}

/// `readroom audit export [-o FILE] [--from SEQ]`: JSON Lines with the events from `from`
/// (default 1), every checkpoint, and the public key.
pub async fn export_cmd(config: &Config, output: Option<PathBuf>, from: i64) -> anyhow::Result<()> {
    let db = crate::cli::open_db(config).await?;
    let store = crate::store::open_checkpoints(config).await?;
    let signer = audit::load_or_create_key(&config.audit_key_path())?;
    let (checkpoints, unreadable) =
        audit::split_checkpoints(audit::load_checkpoints(&store).await?);
    for problem in &unreadable {
        eprintln!("warning: {problem} (left out of the export)");
    }
    let from = from.max(1);
    let start = if from == 1 {
        ChainHead::genesis()
    } else {
        let before = db.audit_page(from - 2, 1).await?;
        let row = before
            .first()
            .filter(|row| row.seq == from - 1)
            .with_context(|| format!("there is no event {} to start after", from - 1))?;
        ChainHead {
            seq: row.seq,
            hash: row.hash.clone(),
        }
    };
    let head = db.audit_head().await?;
    let total = u64::try_from(head.seq - start.seq).unwrap_or(0);
    let mut out: Box<dyn Write> = match &output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let header = ExportLine::Header {
        format: EXPORT_FORMAT.to_owned(),
        exported_at: audit::timestamp(time::OffsetDateTime::now_utc()),
        public_key: signer.public_key_hex(),
        key_id: signer.key_id().to_owned(),
        start: start.clone(),
        events: total,
    };
    writeln!(out, "{}", serde_json::to_string(&header)?)?;
    let mut after = start.seq;
    let mut written = 0u64;
    while after < head.seq {
        let rows = db.audit_page(after, 5000).await?;
        let Some(last) = rows.last() else { break };
        after = last.seq.min(head.seq);
        for row in rows.iter().filter(|row| row.seq <= head.seq) {
            let record = row.to_record().map_err(|err| anyhow::anyhow!(err))?;
            writeln!(
                out,
                "{}",
                serde_json::to_string(&ExportLine::Event(record))?
            )?;
            written += 1;
        }
    }
    for checkpoint in checkpoints.into_iter().filter(|c| c.seq >= start.seq) {
        writeln!(
            out,
            "{}",
            serde_json::to_string(&ExportLine::Checkpoint(checkpoint))?
        )?;
    }
    out.flush()?;
    drop(out);
    let audit = Audit::start(db.clone());
    audit
        .record(audit::event_by(
            Action::AuditExported,
            Outcome::Success,
            None,
            None,
            None,
            json!({ "source": "cli", "from_seq": start.seq + 1, "to_seq": head.seq, "events": written }),
        ))
        .await?;
    if let Some(path) = output {
        eprintln!("exported {written} events to {}", path.display());
    }
    Ok(())
}

/// `readroom audit checkpoint`: signs the current head and writes it to the store now.
pub async fn checkpoint_cmd(config: &Config) -> anyhow::Result<()> {
    let db = crate::cli::open_db(config).await?;
    let store = crate::store::open_checkpoints(config).await?;
    let signer = audit::load_or_create_key(&config.audit_key_path())?;
    match audit::checkpoint(&db, &store, &signer).await? {
        Some(checkpoint) => println!(
            "checkpoint written: event {} hash {} (key {})",
            checkpoint.seq, checkpoint.hash, checkpoint.key_id
        ),
        None => println!("nothing new to checkpoint"),
    }
    Ok(())
}
