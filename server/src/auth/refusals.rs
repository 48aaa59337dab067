//! Refused sign-ins, counted instead of recorded one by one once they become a storm.
//!
//! Every refused sign-in (password, one-time link, OIDC callback) used to append one audit event,
//! so anyone could fill the log. Time is cut into fixed windows (aligned to the Unix epoch, so
//! replicas agree on them); per window, an address gets its first refusals recorded one by one
//! (they carry the reason and, for passwords, the named account), the rest are counted, and when
//! the window closes each address with counted refusals gets one `auth.refusals_counted` event.
//! A global budget bounds the individual events of all addresses together; past it, and past
//! [`MAX_ADDRESSES`] distinct addresses, refusals go to one "many addresses" tally.
//! IPv6 addresses are taken per /64 (one host usually holds a whole /64).
//!
//! Pure bookkeeping with the time given; the HTTP layer records what it is told to.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;

/// Most distinct addresses tallied per window; past this, refusals join the overflow tally.
pub const MAX_ADDRESSES: usize = 10_000;

/// The key an address is counted under: IPv4 as is, IPv6 by its /64 prefix.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
    }
}

/// What to do with one refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Note {
    /// Record it as its own event.
    Record,
    /// Counted; `start_flusher` asks the caller to start the task that writes the summaries
    /// (none is running).
    Counted {
        /// No flusher is running: start one.
        start_flusher: bool,
    },
}

/// Counted refusals of one address (or of the overflow) in one closed window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The address (the /64 network for IPv6); `None` for the overflow tally.
    pub client: Option<IpAddr>,
    /// Refusals counted (not recorded one by one).
    pub count: u64,
    /// Count per `method:reason`.
    pub reasons: BTreeMap<String, u64>,
    /// First and last counted refusal (Unix seconds).
    pub first: i64,
    /// Last counted refusal (Unix seconds).
    pub last: i64,
    /// The window's length in seconds.
    pub window_secs: i64,
}

#[derive(Debug, Default)]
struct Tally {
    recorded: u32,
    counted: u64,
    reasons: BTreeMap<String, u64>,
    first: i64,
    last: i64,
}

impl Tally {
    fn count(&mut self, reason: &str, now: i64) {
        if self.counted == 0 {
            self.first = now;
        }
        self.counted += 1;
        self.last = now;
        *self.reasons.entry(reason.to_owned()).or_default() += 1;
    }

    fn summary(self, client: Option<IpAddr>, window_secs: i64) -> Option<Summary> {
        (self.counted > 0).then_some(Summary {
            client,
            count: self.counted,
            reasons: self.reasons,
            first: self.first,
            last: self.last,
            window_secs,
        })
    }
}

#[derive(Debug, Default)]
struct Inner {
    window: i64,
    recorded_total: u32,
    by_address: HashMap<IpAddr, Tally>,
    overflow: Tally,
    closed: Vec<Summary>,
    flushing: bool,
}

/// The refusal tallies of this server process.
#[derive(Debug)]
pub struct Refusals {
    window_secs: i64,
    per_address: u32,
    total: u32,
    inner: Mutex<Inner>,
}

impl Refusals {
    /// Windows of `window_secs` (at least 1); per window, up to `per_address` refusals of one
    /// address and `total` of all addresses are recorded one by one.
    pub fn new(window_secs: u64, per_address: u32, total: u32) -> Refusals {
        Refusals {
            window_secs: i64::try_from(window_secs.max(1)).unwrap_or(i64::MAX),
            per_address,
            total,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The window length in seconds.
    pub fn window_secs(&self) -> i64 {
        self.window_secs
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Notes one refusal from `client` (`method:reason`) at Unix second `now`.
    pub fn note(&self, client: Option<IpAddr>, reason: &str, now: i64) -> Note {
        let mut guard = self.lock();
        let inner = &mut *guard;
        self.roll(inner, now);
        let budget_left = inner.recorded_total < self.total;
        let room = inner.by_address.len() < MAX_ADDRESSES;
        let key = client.map(client_key);
        let per_address = self.per_address;
        let recorded = match key.and_then(|key| inner.by_address.get_mut(&key)) {
            Some(tally) if budget_left && tally.recorded < per_address => {
                tally.recorded += 1;
                true
            }
            Some(tally) => {
                tally.count(reason, now);
                false
            }
            None => match key {
                // A new address gets its own tally only while individual events are left.
                Some(key) if budget_left && room && per_address > 0 => {
                    inner.by_address.insert(
                        key,
                        Tally {
                            recorded: 1,
                            ..Tally::default()
                        },
                    );
                    true
                }
                _ => {
                    inner.overflow.count(reason, now);
                    false
                }
            },
        };
        if recorded {
            inner.recorded_total += 1;
            return Note::Record;
        }
        let start_flusher = !inner.flushing;
        inner.flushing = true;
        Note::Counted { start_flusher }
    }

    /// The summaries of the windows closed by `now`, and whether the flusher must keep running
    /// (refusals are being counted in the current window). When it returns `false`, the flusher
    /// stops and the next counted refusal starts a new one.
    pub fn take_closed(&self, now: i64) -> (Vec<Summary>, bool) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        self.roll(inner, now);
        let closed = std::mem::take(&mut inner.closed);
        let counting =
            inner.overflow.counted > 0 || inner.by_address.values().any(|t| t.counted > 0);
        inner.flushing = counting;
        (closed, counting)
    }

    /// Seconds from `now` until the current window closes.
    pub fn secs_to_close(&self, now: i64) -> i64 {
        self.window_secs - now.rem_euclid(self.window_secs)
    }

    fn roll(&self, inner: &mut Inner, now: i64) {
        let window = now.div_euclid(self.window_secs);
        if window == inner.window {
            return;
        }
        inner.window = window;
        inner.recorded_total = 0;
        let tallies = std::mem::take(&mut inner.by_address);
        let mut closed: Vec<Summary> = tallies
            .into_iter()
            .filter_map(|(client, tally)| tally.summary(Some(client), self.window_secs))
            .collect();
        closed.sort_by_key(|s| s.client);
        closed.extend(std::mem::take(&mut inner.overflow).summary(None, self.window_secs));
        inner.closed.extend(closed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn first_refusals_are_recorded_then_counted_and_summarized_when_the_window_closes() {
        let refusals = Refusals::new(60, 3, 100);
        let a = ip("10.0.0.1");
        let notes: Vec<Note> = (0..6)
            .map(|_| refusals.note(a, "link:invalid_link", 120))
            .collect();
        assert_eq!(notes[..3], [Note::Record; 3]);
        assert_eq!(
            notes[3],
            Note::Counted {
                start_flusher: true
            }
        );
        assert_eq!(
            notes[4],
            Note::Counted {
                start_flusher: false
            }
        );
        // Another address has its own budget.
        assert_eq!(refusals.note(ip("10.0.0.2"), "x", 121), Note::Record);
        // Nothing closed yet; counting goes on.
        assert_eq!(refusals.take_closed(179), (vec![], true));
        let (closed, counting) = refusals.take_closed(180);
        assert!(!counting);
        assert_eq!(
            closed,
            vec![Summary {
                client: a,
                count: 3,
                reasons: [("link:invalid_link".to_owned(), 3)].into(),
                first: 120,
                last: 120,
                window_secs: 60,
            }]
        );
        // A new window: recorded again, and a new flusher is needed once counting starts.
        assert_eq!(refusals.note(a, "x", 181), Note::Record);
    }

    #[test]
    fn the_global_budget_and_the_address_limit_feed_one_overflow_tally() {
        let refusals = Refusals::new(10, 5, 2);
        assert_eq!(refusals.note(ip("10.0.0.1"), "r", 0), Note::Record);
        assert_eq!(refusals.note(ip("10.0.0.2"), "r", 0), Note::Record);
        // Budget spent: a known address counts under itself, a new one under the overflow.
        assert!(matches!(
            refusals.note(ip("10.0.0.1"), "r", 1),
            Note::Counted { .. }
        ));
        for n in 3..50 {
            let addr = ip(&format!("10.0.1.{n}"));
            assert!(matches!(refusals.note(addr, "r", 2), Note::Counted { .. }));
        }
        let (closed, _) = refusals.take_closed(10);
        assert_eq!(closed.len(), 2);
        assert_eq!((closed[0].client, closed[0].count), (ip("10.0.0.1"), 1));
        assert_eq!((closed[1].client, closed[1].count), (None, 47));
    }

    #[test]
    fn ipv6_is_counted_per_64() {
        assert_eq!(
            client_key("2001:db8:1:2:aaaa::1".parse().unwrap()),
            "2001:db8:1:2::".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_key("::ffff:10.1.2.3".parse().unwrap()),
            "10.1.2.3".parse::<IpAddr>().unwrap()
        );
        let refusals = Refusals::new(60, 1, 100);
        assert_eq!(refusals.note(ip("2001:db8::1"), "r", 0), Note::Record);
        assert!(matches!(
            refusals.note(ip("2001:db8::2"), "r", 0),
            Note::Counted { .. }
        ));
        assert_eq!(refusals.secs_to_close(0), 60);
        assert_eq!(refusals.secs_to_close(59), 1);
    }
}
