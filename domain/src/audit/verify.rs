//! Chain verification: the streaming [`Verifier`], [`verify_records`], and the [`Break`] and
//! [`Report`] they give.

use super::canonical::is_canonical_details;
use super::chain::{AuditRecord, ChainHead, event_hash};
use super::checkpoint::{Checkpoint, CheckpointVerifier};
use super::error::ChainError;

/// Where and how a chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("broken link at event {seq}: {kind}")]
pub struct Break {
    /// The sequence number the break is reported at.
    pub seq: i64,
    /// What is wrong.
    pub kind: BreakKind,
}

/// What is wrong at a [`Break`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BreakKind {
    /// The row's seq is not the previous seq + 1 (reported at the row's own seq).
    #[error(
        "expected event {expected} here, found event {found} (a row was deleted or rows were reordered)"
    )]
    SequenceGap {
        /// The seq that should have come.
        expected: i64,
        /// The seq that came.
        found: i64,
    },
    /// The row's `prev_hash` is not the previous row's hash.
    #[error(
        "its prev_hash is not the hash of the event before it (a row was replaced, inserted or reordered)"
    )]
    PrevMismatch,
    /// The row's stored hash is not the hash of its contents.
    #[error("the stored hash does not match its contents (the row was edited)")]
    HashMismatch,
    /// The row's details are not canonical JSON of an object.
    #[error("its details are not canonical JSON (the row was written outside the application)")]
    NotCanonical,
    /// A checkpoint for this seq names another hash than the chain has.
    #[error(
        "the chain's hash differs from the signed checkpoint (the history up to here was rewritten)"
    )]
    CheckpointMismatch,
    /// A checkpoint lies beyond the last row (reported at last_seq + 1).
    #[error(
        "the chain ends at event {last_seq} but a checkpoint covers event {checkpoint_seq} (the tail was deleted)"
    )]
    Truncated {
        /// The checkpoint's seq.
        checkpoint_seq: i64,
        /// The last seq verified.
        last_seq: i64,
    },
    /// A checkpoint given for this seq does not verify with the trusted key.
    #[error("the checkpoint for this event does not verify: {0}")]
    BadCheckpointSignature(ChainError),
    /// The row cannot be hashed at all (e.g. its prev_hash is not hex).
    #[error("the row cannot be hashed: {0}")]
    Unreadable(ChainError),
}

/// The outcome of verifying a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Rows verified intact (before the first break).
    pub count: u64,
    /// The last intact head.
    pub head: ChainHead,
    /// The first break found, if any.
    pub first_break: Option<Break>,
    /// Checkpoints that matched the chain.
    pub checkpoints_checked: usize,
    /// The matched checkpoint with the highest seq.
    pub last_checkpoint: Option<Checkpoint>,
}

impl Report {
    /// Whether no break was found.
    pub fn is_intact(&self) -> bool {
        self.first_break.is_none()
    }
}

/// Streaming chain verification: feed rows in seq order with [`Verifier::push`], then call
/// [`Verifier::finish`]. Keeps only the head and the pending checkpoints, never the rows.
///
/// Once a break is found, every later push returns that same first break and changes nothing.
#[derive(Debug, Clone)]
pub struct Verifier {
    head: ChainHead,
    count: u64,
    first_break: Option<Break>,
    checkpoints: Vec<Checkpoint>,
    next_checkpoint: usize,
    key: Option<CheckpointVerifier>,
    checkpoints_checked: usize,
    last_checkpoint: Option<Checkpoint>,
}

impl Default for Verifier {
    fn default() -> Verifier {
        Verifier::new()
    }
}

impl Verifier {
    /// Verifies from the start of the chain (genesis).
    pub fn new() -> Verifier {
        Verifier::from_checkpoint(&ChainHead::genesis())
    }

    /// Verifies the rows after a trusted head (the first row pushed must have seq `head.seq + 1`).
    pub fn from_checkpoint(head: &ChainHead) -> Verifier {
        Verifier {
            head: head.clone(),
            count: 0,
            first_break: None,
            checkpoints: Vec::new(),
            next_checkpoint: 0,
            key: None,
            checkpoints_checked: 0,
            last_checkpoint: None,
        }
    }

    /// Checkpoints to check as their seq passes (call before the first push). With `key`, each
    /// must also verify ([`BreakKind::BadCheckpointSignature`] otherwise); without, only its
    /// seq and hash are compared. Checkpoints before the starting head are ignored; one at the
    /// starting head is compared with it.
    pub fn with_checkpoints(
        mut self,
        checkpoints: &[Checkpoint],
        key: Option<&CheckpointVerifier>,
    ) -> Verifier {
        let mut sorted = checkpoints.to_vec();
        sorted.sort_by_key(|checkpoint| checkpoint.seq);
        self.checkpoints = sorted;
        self.next_checkpoint = 0;
        self.key = key.cloned();
        if self.first_break.is_none()
            && let Err(found) = self.settle_checkpoints()
        {
            self.first_break = Some(found);
        }
        self
    }

    /// Checks the next row: seq, prev_hash, hash, canonical details, then any checkpoint at
    /// its seq.
    pub fn push(&mut self, record: &AuditRecord) -> Result<(), Break> {
        if let Some(found) = &self.first_break {
            return Err(found.clone());
        }
        let result = self.check_record(record).and_then(|()| {
            self.head = record.head();
            self.count += 1;
            self.settle_checkpoints()
        });
        if let Err(found) = &result {
            self.first_break = Some(found.clone());
        }
        result
    }

    /// The last intact head.
    pub fn head(&self) -> ChainHead {
        self.head.clone()
    }

    /// Rows verified intact so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The first break found so far.
    pub fn first_break(&self) -> Option<&Break> {
        self.first_break.as_ref()
    }

    /// Ends verification: any checkpoint beyond the last row means the tail was truncated.
    pub fn finish(mut self) -> Report {
        if self.first_break.is_none()
            && let Some(checkpoint) = self.checkpoints.get(self.next_checkpoint)
        {
            self.first_break = Some(self.past_the_end(checkpoint));
        }
        Report {
            count: self.count,
            head: self.head,
            first_break: self.first_break,
            checkpoints_checked: self.checkpoints_checked,
            last_checkpoint: self.last_checkpoint,
        }
    }

    fn check_record(&self, record: &AuditRecord) -> Result<(), Break> {
        let at = |kind| Break {
            seq: record.seq,
            kind,
        };
        let expected = self.head.seq.checked_add(1);
        if expected != Some(record.seq) {
            return Err(at(BreakKind::SequenceGap {
                expected: expected.unwrap_or(i64::MAX),
                found: record.seq,
            }));
        }
        if record.prev_hash != self.head.hash {
            return Err(at(BreakKind::PrevMismatch));
        }
        match event_hash(record) {
            Err(error) => return Err(at(BreakKind::Unreadable(error))),
            Ok(hash) if hash != record.hash => return Err(at(BreakKind::HashMismatch)),
            Ok(_) => {}
        }
        if !is_canonical_details(&record.details) {
            return Err(at(BreakKind::NotCanonical));
        }
        Ok(())
    }

    /// Checks every pending checkpoint at or below the head's seq.
    fn settle_checkpoints(&mut self) -> Result<(), Break> {
        while let Some(checkpoint) = self.checkpoints.get(self.next_checkpoint) {
            if checkpoint.seq > self.head.seq {
                break;
            }
            self.next_checkpoint += 1;
            if checkpoint.seq < self.head.seq {
                // Before the verified range: no hash to compare it with.
                continue;
            }
            let checkpoint = checkpoint.clone();
            let at = |kind| Break {
                seq: checkpoint.seq,
                kind,
            };
            if let Some(key) = &self.key {
                key.verify(&checkpoint)
                    .map_err(|error| at(BreakKind::BadCheckpointSignature(error)))?;
            }
            if checkpoint.hash != self.head.hash {
                return Err(at(BreakKind::CheckpointMismatch));
            }
            self.checkpoints_checked += 1;
            self.last_checkpoint = Some(checkpoint);
        }
        Ok(())
    }

    fn past_the_end(&self, checkpoint: &Checkpoint) -> Break {
        if let Some(key) = &self.key
            && let Err(error) = key.verify(checkpoint)
        {
            return Break {
                seq: checkpoint.seq,
                kind: BreakKind::BadCheckpointSignature(error),
            };
        }
        Break {
            seq: self.head.seq.saturating_add(1),
            kind: BreakKind::Truncated {
                checkpoint_seq: checkpoint.seq,
                last_seq: self.head.seq,
            },
        }
    }
}

/// Verifies `records` (in seq order, from genesis) against `checkpoints` in one call.
pub fn verify_records(
    records: &[AuditRecord],
    checkpoints: &[Checkpoint],
    key: Option<&CheckpointVerifier>,
) -> Report {
    let mut verifier = Verifier::new().with_checkpoints(checkpoints, key);
    for record in records {
        if verifier.push(record).is_err() {
            break;
        }
    }
    verifier.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::test_support::{at, chain, draft};
    use crate::audit::{AnomalyRules, CheckpointSigner, GENESIS, Outcome, anomalies, seal};

    fn first_break(records: &[AuditRecord]) -> Option<Break> {
        verify_records(records, &[], None).first_break
    }

    #[test]
    fn a_sealed_chain_of_a_thousand_events_verifies() {
        let records = chain(1000);
        assert_eq!(records[0].prev_hash, GENESIS);
        assert_eq!(records[999].seq, 1000);
        let mut verifier = Verifier::new();
        for record in &records {
            assert_eq!(verifier.push(record), Ok(()));
        }
        assert_eq!(verifier.count(), 1000);
        assert_eq!(verifier.head(), records[999].head());
        let report = verifier.finish();
        assert!(report.is_intact());
        assert_eq!(report.count, 1000);
    }

    #[test]
    fn editing_any_field_of_a_middle_row_breaks_at_that_row() {
        let records = chain(1000);
        type Edit = (&'static str, fn(&mut AuditRecord));
        let edits: Vec<Edit> = vec![
            ("at", |r| r.at = "2026-12-02T11:00:00.000000Z".into()),
            ("actor", |r| r.actor = Some("intruder".into())),
            ("actor none", |r| r.actor = None),
            ("actor empty", |r| r.actor = Some(String::new())),
            ("action", |r| {
                r.action = if r.action == "audit.exported" {
                    "key.created".into()
                } else {
                    "audit.exported".into()
                }
            }),
            ("target", |r| r.target = Some("case:other".into())),
            ("target none", |r| r.target = None),
            ("outcome", |r| r.outcome = Outcome::Success),
            ("client", |r| r.client = Some("198.51.100.1".into())),
            ("client none", |r| r.client = None),
            ("details", |r| r.details = r#"{"n":1}"#.into()),
            ("hash", |r| r.hash = GENESIS.into()),
        ];
        for (name, edit) in edits {
            let mut edited = records.clone();
            edit(&mut edited[499]);
            assert_ne!(edited[499], records[499], "{name} did not change the row");
            assert_eq!(
                first_break(&edited),
                Some(Break {
                    seq: 500,
                    kind: BreakKind::HashMismatch
                }),
                "{name}"
            );
        }
    }

    #[test]
    fn editing_the_links_of_a_row_breaks_at_that_row() {
        let mut records = chain(10);
        records[4].prev_hash = records[2].hash.clone();
        let found = first_break(&records).unwrap();
        assert_eq!((found.seq, found.kind), (5, BreakKind::PrevMismatch));
        let mut records = chain(10);
        records[4].seq = 50;
        let found = first_break(&records).unwrap();
        assert_eq!(
            (found.seq, found.kind),
            (
                50,
                BreakKind::SequenceGap {
                    expected: 5,
                    found: 50
                }
            )
        );
    }

    #[test]
    fn deleting_a_middle_row_is_a_gap_at_the_next_seq() {
        let mut records = chain(1000);
        records.remove(499);
        let report = verify_records(&records, &[], None);
        assert_eq!(
            report.first_break,
            Some(Break {
                seq: 501,
                kind: BreakKind::SequenceGap {
                    expected: 500,
                    found: 501
                }
            })
        );
        assert_eq!(report.count, 499);
        assert_eq!(report.head, records[498].head());
    }

    #[test]
    fn swapping_two_rows_is_detected_at_the_first_swapped_position() {
        // Rows swapped in place (keeping their own seq numbers).
        let mut records = chain(1000);
        records.swap(499, 500);
        let found = first_break(&records).unwrap();
        assert_eq!(found.seq, 501);
        assert_eq!(
            found.kind,
            BreakKind::SequenceGap {
                expected: 500,
                found: 501
            }
        );
        // Contents swapped under the seq numbers.
        let mut records = chain(1000);
        records.swap(499, 500);
        records[499].seq = 500;
        records[500].seq = 501;
        let found = first_break(&records).unwrap();
        assert_eq!((found.seq, found.kind), (500, BreakKind::PrevMismatch));
    }

    #[test]
    fn details_written_outside_the_application_are_not_canonical() {
        let mut records = chain(3);
        records[1].details = r#"{"b":1, "a":2}"#.into();
        records[1].hash = event_hash(&records[1]).unwrap();
        records[2].prev_hash = records[1].hash.clone();
        records[2].hash = event_hash(&records[2]).unwrap();
        let found = first_break(&records).unwrap();
        assert_eq!((found.seq, found.kind), (2, BreakKind::NotCanonical));
        for bad in ["[1]", "1", "not json", ""] {
            assert!(!is_canonical_details(bad), "{bad}");
        }
        assert!(is_canonical_details("{}"));
    }

    #[test]
    fn after_a_break_every_push_returns_the_first_break() {
        let mut records = chain(20);
        records[5].at = at(9999);
        let mut verifier = Verifier::new();
        let results: Vec<_> = records.iter().map(|r| verifier.push(r)).collect();
        let expected = Break {
            seq: 6,
            kind: BreakKind::HashMismatch,
        };
        assert!(results[..5].iter().all(Result::is_ok));
        assert!(results[5..].iter().all(|r| r == &Err(expected.clone())));
        assert_eq!(verifier.count(), 5);
        assert_eq!(verifier.head(), records[4].head());
        assert_eq!(verifier.first_break(), Some(&expected));
    }

    #[test]
    fn a_break_names_its_sequence_number() {
        let found = Break {
            seq: 42,
            kind: BreakKind::HashMismatch,
        };
        assert_eq!(
            found.to_string(),
            "broken link at event 42: the stored hash does not match its contents (the row was edited)"
        );
        let gap = Break {
            seq: 7,
            kind: BreakKind::Truncated {
                checkpoint_seq: 9,
                last_seq: 6,
            },
        };
        assert!(
            gap.to_string()
                .starts_with("broken link at event 7: the chain ends at event 6")
        );
    }

    #[test]
    fn a_checkpoint_past_the_end_reveals_a_truncated_tail() {
        let records = chain(1000);
        let signer = CheckpointSigner::from_seed(&[3; 32]);
        let checkpoint = signer.sign(&records[999].head(), &at(2000)).unwrap();
        let key = signer.verifier();
        let report = verify_records(
            &records[..900],
            std::slice::from_ref(&checkpoint),
            Some(&key),
        );
        assert_eq!(
            report.first_break,
            Some(Break {
                seq: 901,
                kind: BreakKind::Truncated {
                    checkpoint_seq: 1000,
                    last_seq: 900
                }
            })
        );
        assert_eq!(report.count, 900);
        let whole = verify_records(&records, std::slice::from_ref(&checkpoint), Some(&key));
        assert!(whole.is_intact());
        assert_eq!(whole.checkpoints_checked, 1);
        assert_eq!(whole.last_checkpoint, Some(checkpoint));
    }

    #[test]
    fn checkpoints_are_checked_as_their_seq_passes() {
        let records = chain(100);
        let signer = CheckpointSigner::from_seed(&[3; 32]);
        let key = signer.verifier();
        let c10 = signer.sign(&records[9].head(), &at(500)).unwrap();
        let c50 = signer.sign(&records[49].head(), &at(600)).unwrap();
        let report = verify_records(&records, &[c50.clone(), c10], Some(&key));
        assert!(report.is_intact());
        assert_eq!(report.checkpoints_checked, 2);
        assert_eq!(report.last_checkpoint, Some(c50));

        // A consistently rewritten history still contradicts an earlier signed checkpoint.
        let mut head = ChainHead::genesis();
        let rewritten: Vec<AuditRecord> = (0..100)
            .map(|i| {
                let mut d = draft(i);
                if i == 30 {
                    d.actor = Some("someone-else".into());
                }
                let record = seal(&head, d).unwrap();
                head = record.head();
                record
            })
            .collect();
        let c40 = signer.sign(&records[39].head(), &at(700)).unwrap();
        let report = verify_records(&rewritten, &[c40], Some(&key));
        assert_eq!(
            report.first_break,
            Some(Break {
                seq: 40,
                kind: BreakKind::CheckpointMismatch
            })
        );
        assert_eq!(report.count, 40);
    }

    #[test]
    fn verifying_from_a_checkpoint_head_skips_earlier_rows() {
        let records = chain(1000);
        let signer = CheckpointSigner::from_seed(&[3; 32]);
        let start = signer.sign(&records[499].head(), &at(3000)).unwrap();
        let end = signer.sign(&records[999].head(), &at(3001)).unwrap();
        let mut verifier = Verifier::from_checkpoint(&start.head())
            .with_checkpoints(&[start.clone(), end], Some(&signer.verifier()));
        for record in &records[500..] {
            verifier.push(record).unwrap();
        }
        let report = verifier.finish();
        assert!(report.is_intact());
        assert_eq!(report.count, 500);
        assert_eq!(report.checkpoints_checked, 2);
        assert_eq!(report.head, records[999].head());

        let wrong = ChainHead {
            seq: 500,
            hash: records[498].hash.clone(),
        };
        let mut verifier = Verifier::from_checkpoint(&wrong);
        let found = verifier.push(&records[500]).unwrap_err();
        assert_eq!((found.seq, found.kind), (501, BreakKind::PrevMismatch));

        let mut verifier = Verifier::from_checkpoint(&start.head());
        let found = verifier.push(&records[0]).unwrap_err();
        assert_eq!(
            found.kind,
            BreakKind::SequenceGap {
                expected: 501,
                found: 1
            }
        );
    }

    #[test]
    fn random_rows_never_panic_the_verifier() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let records = chain(50);
        for _ in 0..300 {
            let mut edited = records.clone();
            let row = rng.gen_range(0..edited.len());
            let text: String = (0..rng.gen_range(0..80))
                .map(|_| char::from(rng.gen_range(b' '..=b'~')))
                .collect();
            match rng.gen_range(0..5) {
                0 => edited[row].prev_hash = text,
                1 => edited[row].details = text,
                2 => edited[row].at = text,
                3 => edited[row].hash = text,
                _ => edited[row].seq = rng.r#gen(),
            }
            let report = verify_records(&edited, &[], None);
            if edited[row] != records[row] {
                assert!(report.first_break.is_some());
            }
            let _ = anomalies(&edited, &AnomalyRules::default());
        }
    }
}
