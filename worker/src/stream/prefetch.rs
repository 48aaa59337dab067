//! The next case of a viewer session, made ready while the grader works on this one
//! (`prefetch_case`): its bundle opened and its first view rendered on the blocking pool,
//! beside the pipeline, so that the `open_case` that follows only encodes and sends.
//!
//! One slot per session: empty, preparing (with the `seq`s waiting for it) or ready. A ticket
//! for the case being prepared or ready joins it; one for another case replaces a ready case
//! and is refused while another is being prepared (a grader has one next case; this bounds a
//! session's memory to two cases and its prefetch work to one at a time).

use std::mem;

use readroom_domain::protocol::{ErrorCode, ProtocolError};
use tokio::task::JoinHandle;

use super::machine::WorkError;
use super::pipeline::{PipelineError, PreparedCase};
use crate::admission::Admission;

/// The blocking task preparing a case.
pub(super) type Preparing = JoinHandle<Result<PreparedCase, PipelineError>>;

/// What a prefetch request should do (see [`Prefetch::request`]).
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Plan {
    /// The case is ready: answer now.
    Answer,
    /// The case is being prepared: the answer comes when it is done.
    Wait,
    /// Start preparing the case ([`Prefetch::start`]).
    Start,
    /// Refused: another case is being prepared.
    Busy,
}

/// The next case, as far as it got.
pub(super) enum Slot {
    /// No case prepared.
    Empty,
    /// Preparing `next`; these `prefetch_case` messages wait for it.
    Preparing {
        next: Admission,
        waiting: Vec<u64>,
        task: Preparing,
    },
    /// `next` is ready.
    Ready {
        next: Admission,
        case: Box<PreparedCase>,
    },
}

/// A session's prefetch slot.
pub(super) struct Prefetch {
    slot: Slot,
}

/// Whether `a` and `b` name the same case with the same bundles (the ticket's signed keys, so
/// a case prepared from one ticket serves a later ticket for the same case).
fn same_case(a: &Admission, b: &Admission) -> bool {
    a.case == b.case && a.bundle == b.bundle && a.prior_bundle == b.prior_bundle
}

impl Prefetch {
    /// An empty slot.
    pub(super) fn new() -> Prefetch {
        Prefetch { slot: Slot::Empty }
    }

    /// What to do with a `prefetch_case` (`seq`) for `next`.
    pub(super) fn request(&mut self, seq: u64, next: &Admission) -> Plan {
        match &mut self.slot {
            Slot::Ready { next: ready, .. } if same_case(ready, next) => Plan::Answer,
            Slot::Preparing {
                next: preparing,
                waiting,
                ..
            } if same_case(preparing, next) => {
                waiting.push(seq);
                Plan::Wait
            }
            Slot::Preparing { .. } => Plan::Busy,
            Slot::Ready { .. } | Slot::Empty => Plan::Start,
        }
    }

    /// Records that `task` prepares `next` for `seq` (after [`Plan::Start`]); a case ready
    /// before is dropped.
    pub(super) fn start(&mut self, seq: u64, next: Admission, task: Preparing) {
        self.slot = Slot::Preparing {
            next,
            waiting: vec![seq],
            task,
        };
    }

    /// The task being prepared, to await (`None` when there is none).
    pub(super) fn task(&mut self) -> Option<&mut Preparing> {
        match &mut self.slot {
            Slot::Preparing { task, .. } => Some(task),
            _ => None,
        }
    }

    /// The task ended with `done`: the case is ready (or the slot empty again). Returns the
    /// waiting `seq`s and the answer for each.
    pub(super) fn finished(
        &mut self,
        done: Result<Result<PreparedCase, PipelineError>, tokio::task::JoinError>,
    ) -> (Vec<u64>, Result<String, WorkError>) {
        let Slot::Preparing { next, waiting, .. } = mem::replace(&mut self.slot, Slot::Empty)
        else {
            return (Vec::new(), Err(WorkError::Panicked));
        };
        let answer = match done {
            Ok(Ok(case)) => {
                let name = next.case.clone();
                self.slot = Slot::Ready {
                    next,
                    case: Box::new(case),
                };
                Ok(name)
            }
            Ok(Err(err)) => Err(WorkError::Failed(ProtocolError::new(
                ErrorCode::Internal,
                err.to_string(),
            ))),
            Err(_) => Err(WorkError::Panicked),
        };
        (waiting, answer)
    }

    /// Takes what is prepared for `next`, leaving the slot empty: a ready case, or the task
    /// still preparing it (with the `seq`s that wait for it). Whatever was prepared for another
    /// case is dropped.
    pub(super) fn take_for(&mut self, next: &Admission) -> Slot {
        match mem::replace(&mut self.slot, Slot::Empty) {
            Slot::Ready { next: ready, case } if same_case(&ready, next) => {
                Slot::Ready { next: ready, case }
            }
            Slot::Preparing {
                next: preparing,
                waiting,
                task,
            } if same_case(&preparing, next) => Slot::Preparing {
                next: preparing,
                waiting,
                task,
            },
            _ => Slot::Empty,
        }
    }

    /// Bytes of decoded images held by a ready case.
    pub(super) fn cached_bytes(&self) -> usize {
        match &self.slot {
            Slot::Ready { case, .. } => case.cached_bytes(),
            _ => 0,
        }
    }
}

/// The refusal for [`Plan::Busy`].
pub(super) fn busy() -> WorkError {
    WorkError::Failed(ProtocolError::new(
        ErrorCode::RateLimited,
        "another case is being prepared",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(case: &str) -> Admission {
        Admission {
            user: "u1".into(),
            case: case.into(),
            study: "s1".into(),
            session: "s1".into(),
            bundle: format!("bundles/{case}.age"),
            prior_bundle: None,
            label: "grader".into(),
            not_after: 0,
            lossless_spent_px: 0,
        }
    }

    fn never() -> Preparing {
        tokio::spawn(std::future::pending())
    }

    #[tokio::test]
    async fn one_case_is_prepared_at_a_time_and_joined_by_its_repeats() {
        let mut prefetch = Prefetch::new();
        let c2 = admission("c2");
        assert_eq!(prefetch.request(1, &c2), Plan::Start);
        prefetch.start(1, c2.clone(), never());
        // A repeat for the same case waits for the same work; another case is refused.
        assert_eq!(prefetch.request(2, &c2), Plan::Wait);
        assert_eq!(prefetch.request(3, &admission("c3")), Plan::Busy);
        // The same case with other bundle keys is another case.
        let mut moved = c2.clone();
        moved.bundle = "bundles/other.age".into();
        assert_eq!(prefetch.request(4, &moved), Plan::Busy);
        assert!(prefetch.task().is_some());
        // Moving to c2 takes the task with both waiting requests.
        match prefetch.take_for(&c2) {
            Slot::Preparing { waiting, task, .. } => {
                assert_eq!(waiting, [1, 2]);
                task.abort();
            }
            _ => panic!("the task for c2 was not handed over"),
        }
        assert!(prefetch.task().is_none());
    }

    #[tokio::test]
    async fn moving_to_another_case_drops_what_was_prepared() {
        let mut prefetch = Prefetch::new();
        prefetch.start(1, admission("c2"), never());
        assert!(matches!(prefetch.take_for(&admission("c3")), Slot::Empty));
        assert!(prefetch.task().is_none());
        assert_eq!(prefetch.request(2, &admission("c3")), Plan::Start);
    }

    #[tokio::test]
    async fn a_failed_preparation_answers_every_waiting_request_and_frees_the_slot() {
        let mut prefetch = Prefetch::new();
        let c2 = admission("c2");
        prefetch.start(1, c2.clone(), never());
        assert_eq!(prefetch.request(2, &c2), Plan::Wait);
        let (waiting, answer) = prefetch.finished(Ok(Err(PipelineError::Open(
            "bundle object: not found".into(),
        ))));
        assert_eq!(waiting, [1, 2]);
        match answer {
            Err(WorkError::Failed(error)) => {
                assert_eq!(error.code, ErrorCode::Internal);
                assert!(error.message.contains("not found"), "{}", error.message);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(prefetch.request(3, &c2), Plan::Start);
    }
}
