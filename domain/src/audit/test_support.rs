//! Test helpers shared by the submodules' tests: event times and a sealed sample chain.

use serde_json::json;

use super::{Action, AuditRecord, ChainHead, EventDraft, Outcome, seal};

/// `2026-12-02T10:00:00Z` plus `secs` seconds, with varying microseconds.
pub(super) fn at(secs: u32) -> String {
    format!(
        "2026-12-02T{:02}:{:02}:{:02}.{:06}Z",
        10 + secs / 3600,
        secs / 60 % 60,
        secs % 60,
        secs * 37 % 1_000_000
    )
}

pub(super) fn draft(i: usize) -> EventDraft {
    let outcomes = [Outcome::Success, Outcome::Denied, Outcome::Failure];
    let mut draft = EventDraft::new(
        at(i as u32),
        Action::ALL[i % Action::ALL.len()],
        outcomes[i % 3],
    )
    .target(format!("case:{i}"))
    .details(json!({"n": i, "z": {"b": true, "a": [1, 2.5, "x\n"]}}));
    if !i.is_multiple_of(11) {
        draft = draft.actor(format!("user-{}", i % 7));
    }
    if !i.is_multiple_of(13) {
        draft = draft.client(format!("10.0.0.{}", i % 5));
    }
    draft
}

pub(super) fn chain(n: usize) -> Vec<AuditRecord> {
    let mut head = ChainHead::genesis();
    let mut records = Vec::with_capacity(n);
    for i in 0..n {
        let record = seal(&head, draft(i)).unwrap();
        head = record.head();
        records.push(record);
    }
    records
}
