//! Anomaly flags computed over stored events: [`anomalies`], its [`AnomalyRules`] and the
//! detectors behind each [`Anomaly`].

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::action::{Action, Outcome};
use super::chain::AuditRecord;
use super::timestamp::parse_timestamp;

/// Thresholds for [`anomalies`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnomalyRules {
    /// How many `case.opened` by one actor within the window are flagged (default 20).
    pub rapid_opens: usize,
    /// The window, in seconds (default 300): first and last open at most this far apart.
    pub rapid_window_secs: i64,
    /// Counted sign-in refusals (`auth.refusals_counted`) of one address that make a storm
    /// (default 50).
    pub storm_refusals: u64,
    /// Counted-refusal events of one address at most this far apart (seconds) belong to the same
    /// storm (default 600).
    pub storm_gap_secs: i64,
}

impl Default for AnomalyRules {
    fn default() -> AnomalyRules {
        AnomalyRules {
            rapid_opens: 20,
            rapid_window_secs: 300,
            storm_refusals: 50,
            storm_gap_secs: 600,
        }
    }
}

/// Something in the audit log worth an auditor's look.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Anomaly {
    /// Many cases opened by one actor in a short time (one flag per burst; overlapping windows
    /// merge).
    RapidCaseOpens {
        /// The actor.
        actor: String,
        /// Opens in the burst.
        count: usize,
        /// Lowest seq in the burst.
        from_seq: i64,
        /// Highest seq in the burst.
        to_seq: i64,
    },
    /// An attempt to open a case outside the actor's assignment (`case.denied`).
    OutsideAssignment {
        /// The actor.
        actor: Option<String>,
        /// The event.
        seq: i64,
        /// The case.
        target: Option<String>,
    },
    /// A successful sign-in from an address the actor had not signed in from before (in the
    /// records given); an actor's first sign-in is not flagged.
    NewAddressSignIn {
        /// The actor.
        actor: String,
        /// The event.
        seq: i64,
        /// The new address.
        client: String,
    },
    /// A grade or adjudication submitted with values for an eye, or fundus/OCT exams of a graded
    /// eye, that the streaming worker never showed the actor on that case: the event's
    /// `viewing` details (graded eyes, exams, views of sessions ended before it) plus the views
    /// of the actor's sessions on the case that were open when it was submitted (their
    /// `stream.ended` comes later).
    GradedWithoutViewing {
        /// The actor.
        actor: Option<String>,
        /// The `grade.submitted` / `adjudication.submitted` event.
        seq: i64,
        /// The case.
        target: Option<String>,
        /// Graded eyes of which nothing was shown.
        unviewed_eyes: Vec<String>,
        /// Fundus/OCT exams of graded eyes never shown.
        unviewed_exams: Vec<String>,
    },
    /// A session asked for more full-resolution lossless pixels than a grader looks at: the
    /// worker withheld lossless frames past the session's budget (`stream.lossless_withheld`).
    BulkExtraction {
        /// The actor.
        actor: Option<String>,
        /// The `stream.lossless_withheld` event.
        seq: i64,
        /// The case.
        target: Option<String>,
        /// Which bound was reached: `rate` or `case_budget`.
        reason: String,
    },
    /// A storm of refused sign-ins from one address (`client`; `None` for the tally of many
    /// addresses): its `auth.refusals_counted` events, one per window, merged into one flag.
    RefusalStorm {
        /// The address (IPv6: the /64 network), or none for many addresses.
        client: Option<String>,
        /// Refusals counted in the storm.
        count: u64,
        /// Lowest seq in the storm.
        from_seq: i64,
        /// Highest seq in the storm.
        to_seq: i64,
    },
}

impl Anomaly {
    /// The event the anomaly starts at.
    pub fn seq(&self) -> i64 {
        match self {
            Anomaly::RapidCaseOpens { from_seq, .. } | Anomaly::RefusalStorm { from_seq, .. } => {
                *from_seq
            }
            Anomaly::OutsideAssignment { seq, .. }
            | Anomaly::NewAddressSignIn { seq, .. }
            | Anomaly::GradedWithoutViewing { seq, .. }
            | Anomaly::BulkExtraction { seq, .. } => *seq,
        }
    }
}

/// Anomalies in `records` (given in seq order), ordered by the seq they start at.
/// Rows whose time does not parse are left out of the rapid-opens rule.
pub fn anomalies(records: &[AuditRecord], rules: &AnomalyRules) -> Vec<Anomaly> {
    let mut found = rapid_case_opens(records, rules);
    found.extend(outside_assignment(records));
    found.extend(new_address_sign_ins(records));
    found.extend(graded_without_viewing(records));
    found.extend(refusal_storms(records, rules));
    found.extend(bulk_extractions(records));
    found.sort_by_key(Anomaly::seq);
    found
}

fn rapid_case_opens(records: &[AuditRecord], rules: &AnomalyRules) -> Vec<Anomaly> {
    let mut opens: BTreeMap<&str, Vec<(i64, i64)>> = BTreeMap::new();
    for record in records {
        if record.action != Action::CaseOpened.as_str() {
            continue;
        }
        if let (Some(actor), Some(micros)) = (&record.actor, parse_timestamp(&record.at)) {
            opens.entry(actor).or_default().push((micros, record.seq));
        }
    }
    let window = rules.rapid_window_secs.saturating_mul(1_000_000);
    let mut found = Vec::new();
    for (actor, mut times) in opens {
        times.sort_unstable();
        for (from, to) in bursts(&times, rules.rapid_opens.max(1), window) {
            let burst = times.get(from..=to).unwrap_or_default();
            let seqs = burst.iter().map(|&(_, seq)| seq);
            found.push(Anomaly::RapidCaseOpens {
                actor: actor.to_owned(),
                count: burst.len(),
                from_seq: seqs.clone().min().unwrap_or_default(),
                to_seq: seqs.max().unwrap_or_default(),
            });
        }
    }
    found
}

/// Index ranges of `times` (sorted) where at least `threshold` fall within `window`;
/// overlapping ranges are merged.
fn bursts(times: &[(i64, i64)], threshold: usize, window: i64) -> Vec<(usize, usize)> {
    let mut found: Vec<(usize, usize)> = Vec::new();
    let mut from = 0;
    for (to, &(end_time, _)) in times.iter().enumerate() {
        while from < to
            && times
                .get(from)
                .is_some_and(|&(t, _)| end_time.saturating_sub(t) > window)
        {
            from += 1;
        }
        if to + 1 - from < threshold {
            continue;
        }
        match found.last_mut() {
            Some(last) if from <= last.1 => last.1 = to,
            _ => found.push((from, to)),
        }
    }
    found
}

fn outside_assignment(records: &[AuditRecord]) -> impl Iterator<Item = Anomaly> + '_ {
    records
        .iter()
        .filter(|record| record.action == Action::CaseDenied.as_str())
        .map(|record| Anomaly::OutsideAssignment {
            actor: record.actor.clone(),
            seq: record.seq,
            target: record.target.clone(),
        })
}

fn graded_without_viewing(records: &[AuditRecord]) -> Vec<Anomaly> {
    use crate::grading::Eye;
    use crate::grading::coverage::{ExamRef, coverage, viewed_exams};
    use serde_json::Value as Json;
    let strings = |value: &Json| -> Vec<String> {
        value
            .as_array()
            .map(|list| {
                list.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    /// An ended stream session: its `stream.ended` seq, start time (µs) and views.
    struct Ended {
        seq: i64,
        started: Option<i64>,
        views: Vec<String>,
    }
    // Sessions by actor and case.
    let mut sessions: BTreeMap<(&str, &str), Vec<Ended>> = BTreeMap::new();
    for record in records {
        if record.action != Action::StreamEnded.as_str() {
            continue;
        }
        let (Some(actor), Some(target)) = (&record.actor, &record.target) else {
            continue;
        };
        let Ok(details) = serde_json::from_str::<Json>(&record.details) else {
            continue;
        };
        let duration_us = details["duration_ms"]
            .as_i64()
            .unwrap_or(0)
            .saturating_mul(1000);
        let started = parse_timestamp(&record.at).map(|end| end.saturating_sub(duration_us));
        sessions.entry((actor, target)).or_default().push(Ended {
            seq: record.seq,
            started,
            views: strings(&details["views"]),
        });
    }
    let mut found = Vec::new();
    for record in records {
        if record.action != Action::GradeSubmitted.as_str()
            && record.action != Action::AdjudicationSubmitted.as_str()
        {
            continue;
        }
        let Ok(details) = serde_json::from_str::<Json>(&record.details) else {
            continue;
        };
        let Some(viewing) = details.get("viewing") else {
            continue;
        };
        let exams: Vec<ExamRef> =
            serde_json::from_value(viewing["exams"].clone()).unwrap_or_default();
        let graded: BTreeSet<Eye> = strings(&viewing["graded_eyes"])
            .iter()
            .filter_map(|eye| Eye::from_code(eye))
            .collect();
        let mut viewed: BTreeSet<String> = strings(&viewing["viewed"]).into_iter().collect();
        let submitted = parse_timestamp(&record.at);
        if let (Some(actor), Some(target)) = (&record.actor, &record.target) {
            for ended in sessions
                .get(&(actor.as_str(), target.as_str()))
                .into_iter()
                .flatten()
            {
                // Sessions that ended after the submission and had begun before it.
                let open_then = match (ended.started, submitted) {
                    (Some(started), Some(submitted)) => started <= submitted,
                    _ => true,
                };
                if ended.seq > record.seq && open_then {
                    viewed.extend(viewed_exams(ended.views.as_slice(), &exams));
                }
            }
        }
        let missing = coverage(&graded, &exams, &viewed);
        if !missing.is_complete() {
            found.push(Anomaly::GradedWithoutViewing {
                actor: record.actor.clone(),
                seq: record.seq,
                target: record.target.clone(),
                unviewed_eyes: missing
                    .unviewed_eyes
                    .iter()
                    .map(|eye| eye.as_str().to_owned())
                    .collect(),
                unviewed_exams: missing.unviewed_exams,
            });
        }
    }
    found
}

/// The actions [`anomalies`] looks at; a scan may load only these.
pub const ANOMALY_ACTIONS: &[Action] = &[
    Action::CaseOpened,
    Action::CaseDenied,
    Action::AuthLogin,
    Action::AuthRefusalsCounted,
    Action::StreamEnded,
    Action::GradeSubmitted,
    Action::AdjudicationSubmitted,
    Action::StreamLosslessWithheld,
];

/// Each `stream.lossless_withheld` event is a flag: a budget a human grader does not reach.
fn bulk_extractions(records: &[AuditRecord]) -> Vec<Anomaly> {
    records
        .iter()
        .filter(|record| record.action == Action::StreamLosslessWithheld.as_str())
        .map(|record| Anomaly::BulkExtraction {
            actor: record.actor.clone(),
            seq: record.seq,
            target: record.target.clone(),
            reason: serde_json::from_str::<serde_json::Value>(&record.details)
                .ok()
                .and_then(|details| details.get("reason")?.as_str().map(str::to_owned))
                .unwrap_or_default(),
        })
        .collect()
}

fn refusal_storms(records: &[AuditRecord], rules: &AnomalyRules) -> Vec<Anomaly> {
    // Per client: the open storm (last time, count, first and last seq).
    let mut open: BTreeMap<Option<&str>, (i64, u64, i64, i64)> = BTreeMap::new();
    let mut storms = Vec::new();
    let gap = rules.storm_gap_secs.saturating_mul(1_000_000);
    let mut close = |client: Option<&str>, (_, count, from, to): (i64, u64, i64, i64)| {
        if count >= rules.storm_refusals.max(1) {
            storms.push(Anomaly::RefusalStorm {
                client: client.map(str::to_owned),
                count,
                from_seq: from,
                to_seq: to,
            });
        }
    };
    for record in records {
        if record.action != Action::AuthRefusalsCounted.as_str() {
            continue;
        }
        let Some(micros) = parse_timestamp(&record.at) else {
            continue;
        };
        let count = serde_json::from_str::<serde_json::Value>(&record.details)
            .ok()
            .and_then(|details| details.get("count").and_then(serde_json::Value::as_u64))
            .unwrap_or(0);
        let client = record.client.as_deref();
        match open.get_mut(&client) {
            Some(storm) if micros.saturating_sub(storm.0) <= gap => {
                storm.0 = micros;
                storm.1 = storm.1.saturating_add(count);
                storm.3 = record.seq;
            }
            _ => {
                if let Some(previous) = open.insert(client, (micros, count, record.seq, record.seq))
                {
                    close(client, previous);
                }
            }
        }
    }
    for (client, storm) in open {
        close(client, storm);
    }
    storms
}

fn new_address_sign_ins(records: &[AuditRecord]) -> Vec<Anomaly> {
    let mut known: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut found = Vec::new();
    for record in records {
        if record.action != Action::AuthLogin.as_str() || record.outcome != Outcome::Success {
            continue;
        }
        let (Some(actor), Some(client)) = (&record.actor, &record.client) else {
            continue;
        };
        let addresses = known.entry(actor).or_default();
        let first_sign_in = addresses.is_empty();
        if addresses.insert(client) && !first_sign_in {
            found.push(Anomaly::NewAddressSignIn {
                actor: actor.clone(),
                seq: record.seq,
                client: client.clone(),
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::test_support::at;
    use crate::audit::{ChainHead, EventDraft, seal};
    use serde_json::{Value, json};

    fn login(seq: usize, actor: &str, client: &str, outcome: Outcome) -> EventDraft {
        EventDraft::new(at(seq as u32), Action::AuthLogin, outcome)
            .actor(actor)
            .client(client)
    }

    fn seal_all(drafts: Vec<EventDraft>) -> Vec<AuditRecord> {
        let mut head = ChainHead::genesis();
        drafts
            .into_iter()
            .map(|d| {
                let record = seal(&head, d).unwrap();
                head = record.head();
                record
            })
            .collect()
    }

    fn opens(count: u32, every_secs: u32) -> Vec<AuditRecord> {
        let drafts = (0..count)
            .map(|i| {
                EventDraft::new(at(i * every_secs), Action::CaseOpened, Outcome::Success)
                    .actor("grader")
                    .target(format!("case:{i}"))
            })
            .collect();
        seal_all(drafts)
    }

    #[test]
    fn twenty_case_opens_in_four_minutes_are_flagged() {
        let rules = AnomalyRules::default();
        assert_eq!(
            anomalies(&opens(20, 12), &rules),
            vec![Anomaly::RapidCaseOpens {
                actor: "grader".into(),
                count: 20,
                from_seq: 1,
                to_seq: 20
            }]
        );
        assert_eq!(anomalies(&opens(19, 12), &rules), vec![]);
        assert_eq!(anomalies(&opens(20, 30), &rules), vec![]);
        // A longer burst is one flag, not one per window.
        let flags = anomalies(&opens(40, 12), &rules);
        assert_eq!(flags.len(), 1);
        assert!(matches!(
            flags[0],
            Anomaly::RapidCaseOpens { count: 40, .. }
        ));
    }

    #[test]
    fn unparsable_times_are_skipped_and_odd_rules_do_not_panic() {
        let mut records = opens(20, 1);
        records[0].at = "garbage".into();
        assert_eq!(anomalies(&records, &AnomalyRules::default()), vec![]);
        let odd = AnomalyRules {
            rapid_opens: 0,
            rapid_window_secs: -5,
            storm_refusals: 0,
            storm_gap_secs: -1,
        };
        assert_eq!(anomalies(&records, &odd).len(), 19);
    }

    /// Issue 16: DR, DME for both eyes submitted after fundus OD alone is flagged, naming what
    /// was never shown; views of a session still open at submission (its `stream.ended` comes
    /// later) count, a session begun after the submission does not.
    #[test]
    fn grades_made_without_viewing_are_flagged() {
        let exams = json!([
            { "id": "fundus-od", "kind": "fundus", "eye": "OD" },
            { "id": "fundus-os", "kind": "fundus", "eye": "OS" },
            { "id": "oct-od", "kind": "oct", "eye": "OD" },
            { "id": "oct-os", "kind": "oct", "eye": "OS" },
        ]);
        let graded = |secs: u32, actor: &str, viewed: Value| {
            EventDraft::new(at(secs), Action::GradeSubmitted, Outcome::Success)
                .actor(actor)
                .target("case:c1")
                .details(json!({ "viewing": {
                    "exams": exams, "graded_eyes": ["OD", "OS"], "viewed": viewed } }))
        };
        let ended = |secs: u32, actor: &str, duration_ms: u64, views: Value| {
            EventDraft::new(at(secs), Action::StreamEnded, Outcome::Success)
                .actor(actor)
                .target("case:c1")
                .details(json!({ "duration_ms": duration_ms, "views": views }))
        };
        let records = seal_all(vec![
            // ann: 4 s on fundus OD, session closed, then grades both eyes.
            ended(10, "ann", 4_200, json!(["single:fundus-od"])),
            graded(20, "ann", json!(["fundus-od"])),
            // bob: grades while his session is open; it ends afterwards having shown everything.
            graded(30, "bob", json!([])),
            ended(
                40,
                "bob",
                60_000,
                json!(["both_eyes:fundus-od", "both_eyes:oct-od"]),
            ),
            // ann again on the case after her grade: does not excuse the first grade.
            ended(
                100,
                "ann",
                10_000,
                json!(["both_eyes:fundus-od", "both_eyes:oct-od"]),
            ),
        ]);
        let found = anomalies(&records, &AnomalyRules::default());
        assert_eq!(
            found,
            vec![Anomaly::GradedWithoutViewing {
                actor: Some("ann".into()),
                seq: 2,
                target: Some("case:c1".into()),
                unviewed_eyes: vec!["OS".into()],
                unviewed_exams: vec!["oct-od".into(), "fundus-os".into(), "oct-os".into()],
            }]
        );
        let text = serde_json::to_value(&found[0]).unwrap();
        assert_eq!(text["kind"], "graded_without_viewing");
    }

    #[test]
    fn denied_cases_and_new_sign_in_addresses_are_flagged() {
        let records = seal_all(vec![
            login(0, "ann", "10.0.0.1", Outcome::Success),
            login(1, "ann", "10.0.0.1", Outcome::Success),
            login(2, "bob", "10.0.0.9", Outcome::Success),
            login(3, "ann", "10.0.0.2", Outcome::Failure),
            EventDraft::new(at(4), Action::CaseDenied, Outcome::Denied)
                .actor("ann")
                .target("case:x"),
            login(5, "ann", "10.0.0.2", Outcome::Success),
            login(6, "ann", "10.0.0.2", Outcome::Success),
            login(7, "ann", "10.0.0.1", Outcome::Success),
        ]);
        let found = anomalies(&records, &AnomalyRules::default());
        assert_eq!(
            found,
            vec![
                Anomaly::OutsideAssignment {
                    actor: Some("ann".into()),
                    seq: 5,
                    target: Some("case:x".into())
                },
                Anomaly::NewAddressSignIn {
                    actor: "ann".into(),
                    seq: 6,
                    client: "10.0.0.2".into()
                },
            ]
        );
        assert_eq!(
            serde_json::to_value(&found[1]).unwrap(),
            json!({"kind": "new_address_sign_in", "actor": "ann", "seq": 6, "client": "10.0.0.2"})
        );
    }

    fn counted(secs: u32, client: Option<&str>, count: u64) -> EventDraft {
        let draft = EventDraft::new(at(secs), Action::AuthRefusalsCounted, Outcome::Failure)
            .details(json!({ "count": count, "window_secs": 60 }));
        match client {
            Some(client) => draft.client(client),
            None => draft,
        }
    }

    #[test]
    fn a_storm_of_counted_refusals_is_one_flag_per_address() {
        let records = seal_all(vec![
            counted(0, Some("10.0.0.1"), 30),
            counted(60, Some("10.0.0.1"), 30),
            counted(60, None, 70),
            counted(120, Some("10.0.0.1"), 30),
            counted(120, Some("10.0.0.2"), 10),
            // An hour later: a new storm from the same address.
            counted(3720, Some("10.0.0.1"), 60),
        ]);
        let found = anomalies(&records, &AnomalyRules::default());
        assert_eq!(
            found,
            vec![
                Anomaly::RefusalStorm {
                    client: Some("10.0.0.1".into()),
                    count: 90,
                    from_seq: 1,
                    to_seq: 4
                },
                Anomaly::RefusalStorm {
                    client: None,
                    count: 70,
                    from_seq: 3,
                    to_seq: 3
                },
                Anomaly::RefusalStorm {
                    client: Some("10.0.0.1".into()),
                    count: 60,
                    from_seq: 6,
                    to_seq: 6
                },
            ]
        );
        assert_eq!(
            serde_json::to_value(&found[1]).unwrap(),
            json!({"kind": "refusal_storm", "client": null, "count": 70, "from_seq": 3, "to_seq": 3})
        );
    }

    #[test]
    fn every_withheld_lossless_budget_is_a_bulk_extraction_flag() {
        let sent = EventDraft::new(at(0), Action::StreamLosslessSent, Outcome::Success)
            .actor("ann")
            .target("case:x");
        let withheld = |secs, reason: &str| {
            EventDraft::new(at(secs), Action::StreamLosslessWithheld, Outcome::Denied)
                .actor("ann")
                .target("case:x")
                .details(json!({ "reason": reason, "spent_px": 96_000_000 }))
        };
        let records = seal_all(vec![sent, withheld(5, "rate"), withheld(9, "case_budget")]);
        let found = anomalies(&records, &AnomalyRules::default());
        assert_eq!(
            found,
            vec![
                Anomaly::BulkExtraction {
                    actor: Some("ann".into()),
                    seq: 2,
                    target: Some("case:x".into()),
                    reason: "rate".into()
                },
                Anomaly::BulkExtraction {
                    actor: Some("ann".into()),
                    seq: 3,
                    target: Some("case:x".into()),
                    reason: "case_budget".into()
                },
            ]
        );
        assert!(ANOMALY_ACTIONS.contains(&Action::StreamLosslessWithheld));
    }
}
