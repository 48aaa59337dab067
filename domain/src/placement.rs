//! Where a new stream session goes: the pool's registrations in, an ordered list of workers to
//! try out. Pure: the server loads the registrations and the time.

/// A worker as the pool knows it (from its last heartbeat).
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerLoad {
    /// The worker's id.
    pub id: String,
    /// Most concurrent sessions.
    pub capacity: u32,
    /// Sessions at its last heartbeat.
    pub active_sessions: u32,
    /// Load (0 idle … 1 saturated).
    pub cpu_load: f32,
    /// Takes no new sessions.
    pub draining: bool,
    /// Unix second of its last heartbeat.
    pub last_seen_unix: i64,
}

impl WorkerLoad {
    /// Whether its last heartbeat is recent enough.
    pub fn is_alive(&self, now_unix: i64, stale_after_secs: i64) -> bool {
        now_unix - self.last_seen_unix <= stale_after_secs
    }

    /// Sessions as a share of capacity, with the CPU load breaking ties.
    fn busyness(&self) -> (f64, f32) {
        let share = if self.capacity == 0 {
            f64::INFINITY
        } else {
            f64::from(self.active_sessions) / f64::from(self.capacity)
        };
        (share, self.cpu_load)
    }
}

/// The workers a new session may go to, least loaded first: alive, not draining, below
/// capacity. The caller tries them in order (a worker that refuses or cannot be reached is
/// skipped), so one dead worker costs one failed connection, not a failed session.
pub fn candidates(
    workers: &[WorkerLoad],
    now_unix: i64,
    stale_after_secs: i64,
) -> Vec<&WorkerLoad> {
    let mut open: Vec<&WorkerLoad> = workers
        .iter()
        .filter(|w| w.is_alive(now_unix, stale_after_secs))
        .filter(|w| !w.draining && w.active_sessions < w.capacity)
        .collect();
    open.sort_by(|a, b| {
        let (sa, ca) = a.busyness();
        let (sb, cb) = b.busyness();
        sa.total_cmp(&sb)
            .then(ca.total_cmp(&cb))
            .then_with(|| a.id.cmp(&b.id))
    });
    open
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(id: &str, active: u32, capacity: u32, seen: i64) -> WorkerLoad {
        WorkerLoad {
            id: id.into(),
            capacity,
            active_sessions: active,
            cpu_load: 0.1,
            draining: false,
            last_seen_unix: seen,
        }
    }

    fn ids(list: Vec<&WorkerLoad>) -> Vec<&str> {
        list.into_iter().map(|w| w.id.as_str()).collect()
    }

    #[test]
    fn least_loaded_first_by_share_of_capacity() {
        let pool = [
            worker("a", 8, 10, 100),
            worker("b", 2, 10, 100),
            worker("c", 5, 40, 100),
        ];
        assert_eq!(ids(candidates(&pool, 101, 3)), ["c", "b", "a"]);
    }

    #[test]
    fn dead_draining_and_full_workers_are_left_out() {
        let mut draining = worker("d", 0, 10, 100);
        draining.draining = true;
        let pool = [
            worker("stale", 0, 10, 90),
            draining,
            worker("full", 10, 10, 100),
            worker("ok", 9, 10, 100),
        ];
        assert_eq!(ids(candidates(&pool, 100, 3)), ["ok"]);
        assert!(candidates(&pool[..3], 100, 3).is_empty());
    }

    #[test]
    fn cpu_load_then_id_break_ties() {
        let mut hot = worker("a", 1, 10, 100);
        hot.cpu_load = 0.9;
        let pool = [hot, worker("c", 1, 10, 100), worker("b", 1, 10, 100)];
        assert_eq!(ids(candidates(&pool, 100, 3)), ["b", "c", "a"]);
    }
}
