//! The lossless budget: lossless frames are a grading aid, not an export path.
//!
//! A frame's cost is the source pixels it shows at full resolution: for each panel, the image
//! pixels inside it times `min(1, scale)²` (a 3000×3000 fundus fitted at 0.28 device pixels per
//! image pixel costs the 0.7 Mpx it really shows; the same fundus at 1:1 or zoomed in costs every
//! image pixel on screen). Whatever the declared viewport, zoom or device pixel ratio, revealing
//! N full-resolution pixels costs N.
//!
//! Two bounds, both per viewer session (one peer connection):
//! - a **rate**: a token bucket of `burst_mpx`, refilled at `mpx_per_s`. A frame the bucket
//!   cannot pay is withheld until it can (the stream stays lossy meanwhile, the viewer is told
//!   when to expect it);
//! - a **per-case total**: at most `case_mpx` for one case. Past it the case stays lossy for the
//!   rest of the session.
//!
//! Either bound reached is reported once per case and bound (the worker's
//! `lossless_withheld` event, audited and flagged as `bulk_extraction`). The numbers and how
//! they were chosen are in docs/streaming.md ("The lossless budget").

use std::collections::HashMap;
use std::time::{Duration, Instant};

use readroom_domain::protocol::WithholdReason;
use readroom_domain::stream_config::LosslessBudgetConfig;

/// What to do with the next lossless frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// Send it (and [`LosslessBudget::charge`] it when it goes out).
    Send,
    /// Do not send it now.
    Withhold {
        /// Which bound.
        reason: WithholdReason,
        /// When the bucket could pay for it (rate only; `None`: not in this session).
        retry_after: Option<Duration>,
        /// Whether this is the first time this bound stopped a frame of this case (report it).
        first: bool,
    },
}

/// One session's lossless budget (sans-IO: the caller passes the time).
#[derive(Debug)]
pub struct LosslessBudget {
    burst: f64,
    rate: f64,
    case_limit: f64,
    tokens: f64,
    refilled_at: Instant,
    /// Full-resolution pixels sent per case.
    per_case: HashMap<String, f64>,
    /// (case, reason) already reported.
    reported: Vec<(String, WithholdReason)>,
}

impl LosslessBudget {
    /// A full budget at `now`.
    pub fn new(now: Instant, config: &LosslessBudgetConfig) -> LosslessBudget {
        let mpx = |value: f64| (value.max(0.0) * 1e6).floor();
        LosslessBudget {
            burst: mpx(config.burst_mpx),
            rate: mpx(config.mpx_per_s),
            case_limit: mpx(config.case_mpx),
            tokens: mpx(config.burst_mpx),
            refilled_at: now,
            per_case: HashMap::new(),
            reported: Vec::new(),
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now
            .saturating_duration_since(self.refilled_at)
            .as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.refilled_at = now;
    }

    /// Whether a frame of `case` costing `cost` full-resolution pixels may be sent at `now`.
    pub fn check(&mut self, now: Instant, case: &str, cost: u64) -> Verdict {
        self.refill(now);
        let cost = cost as f64;
        let spent = self.per_case.get(case).copied().unwrap_or(0.0);
        let (reason, retry_after) = if spent + cost > self.case_limit {
            (WithholdReason::CaseBudget, None)
        } else if cost > self.tokens && !(self.burst > 0.0 && self.tokens >= self.burst) {
            // A frame larger than the whole bucket is paid by a full one (and empties it).
            let missing = cost.min(self.burst) - self.tokens;
            let retry = (self.rate > 0.0)
                .then(|| Duration::from_secs_f64((missing / self.rate).max(0.0) + 0.001));
            (WithholdReason::Rate, retry)
        } else {
            return Verdict::Send;
        };
        let key = (case.to_owned(), reason);
        let first = !self.reported.contains(&key);
        if first {
            self.reported.push(key);
        }
        Verdict::Withhold {
            reason,
            retry_after,
            first,
        }
    }

    /// Counts `spent` full-resolution pixels of `case` as already shown (the server's record
    /// of earlier sessions, from the ticket), unless more were counted here.
    pub fn preload(&mut self, case: &str, spent: u64) {
        let entry = self.per_case.entry(case.to_owned()).or_insert(0.0);
        *entry = entry.max(spent as f64);
    }

    /// Spends `cost` full-resolution pixels on a frame of `case` sent at `now`.
    pub fn charge(&mut self, now: Instant, case: &str, cost: u64) {
        self.refill(now);
        let cost = cost as f64;
        // A frame larger than the bucket's content (only a full bucket pays for it) empties it.
        self.tokens = (self.tokens - cost).max(0.0);
        *self.per_case.entry(case.to_owned()).or_insert(0.0) += cost;
    }

    /// Full-resolution pixels sent of `case` so far.
    pub fn spent_on(&self, case: &str) -> u64 {
        self.per_case.get(case).copied().unwrap_or(0.0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MPX: u64 = 1_000_000;

    fn config() -> LosslessBudgetConfig {
        LosslessBudgetConfig {
            burst_mpx: 10.0,
            mpx_per_s: 1.0,
            case_mpx: 30.0,
        }
    }

    #[test]
    fn a_burst_is_paid_then_the_rate_holds_frames_back_until_the_bucket_refills() {
        let t0 = Instant::now();
        let mut budget = LosslessBudget::new(t0, &config());
        for _ in 0..5 {
            assert_eq!(budget.check(t0, "c1", 2 * MPX), Verdict::Send);
            budget.charge(t0, "c1", 2 * MPX);
        }
        let Verdict::Withhold {
            reason,
            retry_after,
            first,
        } = budget.check(t0, "c1", 2 * MPX)
        else {
            panic!("the bucket is empty");
        };
        assert_eq!(reason, WithholdReason::Rate);
        assert!(first);
        let retry = retry_after.expect("the bucket refills");
        assert!((retry.as_secs_f64() - 2.0).abs() < 0.01, "{retry:?}");
        // Reported once per case and bound.
        assert!(matches!(
            budget.check(t0 + Duration::from_secs(1), "c1", 2 * MPX),
            Verdict::Withhold { first: false, .. }
        ));
        assert_eq!(budget.check(t0 + retry, "c1", 2 * MPX), Verdict::Send);
    }

    #[test]
    fn a_case_stays_lossy_past_its_total_but_the_next_case_does_not() {
        let t0 = Instant::now();
        let mut budget = LosslessBudget::new(t0, &config());
        let mut now = t0;
        let mut sent = 0;
        let stopped = loop {
            match budget.check(now, "c1", MPX) {
                Verdict::Send => budget.charge(now, "c1", MPX),
                withheld => break withheld,
            }
            sent += 1;
            now += Duration::from_secs(1);
        };
        assert_eq!(sent, 30);
        assert_eq!(budget.spent_on("c1"), 30 * MPX);
        assert_eq!(
            stopped,
            Verdict::Withhold {
                reason: WithholdReason::CaseBudget,
                retry_after: None,
                first: true
            }
        );
        // Not later either (a full bucket does not help), and reported once.
        assert_eq!(
            budget.check(now + Duration::from_secs(600), "c1", MPX),
            Verdict::Withhold {
                reason: WithholdReason::CaseBudget,
                retry_after: None,
                first: false
            }
        );
        assert_eq!(budget.check(now, "c2", MPX), Verdict::Send);
    }

    #[test]
    fn a_frame_larger_than_the_bucket_waits_for_a_full_one_and_is_then_sent() {
        let t0 = Instant::now();
        let mut budget = LosslessBudget::new(t0, &config());
        budget.charge(t0, "c1", 4 * MPX);
        // 12 Mpx > the 10 Mpx bucket: wait for a full bucket (4 s), then send and empty it.
        let Verdict::Withhold { retry_after, .. } = budget.check(t0, "c1", 12 * MPX) else {
            panic!("withheld");
        };
        let at = t0 + retry_after.unwrap();
        assert!((retry_after.unwrap().as_secs_f64() - 4.0).abs() < 0.01);
        assert_eq!(budget.check(at, "c1", 12 * MPX), Verdict::Send);
        budget.charge(at, "c1", 12 * MPX);
        assert!(matches!(
            budget.check(at, "c1", MPX),
            Verdict::Withhold { .. }
        ));
    }

    #[test]
    fn a_zero_budget_withholds_everything() {
        let t0 = Instant::now();
        let mut budget = LosslessBudget::new(
            t0,
            &LosslessBudgetConfig {
                burst_mpx: 0.0,
                mpx_per_s: 0.0,
                case_mpx: 0.0,
            },
        );
        assert!(matches!(
            budget.check(t0, "c1", 1),
            Verdict::Withhold {
                retry_after: None,
                ..
            }
        ));
    }
}
