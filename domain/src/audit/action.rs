//! The closed catalogues hashed into every event: [`Action`] and [`Outcome`], and the
//! [`UnknownCode`] error for codes outside them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A code that is not in a closed catalogue ([`Action`] or [`Outcome`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} code {code:?}")]
pub struct UnknownCode {
    /// Which catalogue (`"action"` or `"outcome"`).
    pub what: &'static str,
    /// The code given (at most 64 characters of it).
    pub code: String,
}

impl UnknownCode {
    fn new(what: &'static str, code: &str) -> UnknownCode {
        UnknownCode {
            what,
            code: code.chars().take(64).collect(),
        }
    }
}

/// How an audited request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The action was carried out.
    Success,
    /// Policy refused the action.
    Denied,
    /// The action was attempted and failed (bad input, error).
    Failure,
}

impl Outcome {
    /// The wire and column string: `success`, `denied` or `failure`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Denied => "denied",
            Outcome::Failure => "failure",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Outcome {
    type Err = UnknownCode;

    fn from_str(code: &str) -> Result<Outcome, UnknownCode> {
        match code {
            "success" => Ok(Outcome::Success),
            "denied" => Ok(Outcome::Denied),
            "failure" => Ok(Outcome::Failure),
            _ => Err(UnknownCode::new("outcome", code)),
        }
    }
}

macro_rules! actions {
    ($( $(#[doc = $doc:literal])* $variant:ident = $code:literal, )*) => {
        /// The closed catalogue of audited actions. Each code is stable: it is stored in the
        /// `action` column and hashed into the chain, so a code is never renamed or reused.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Action {
            $( $(#[doc = $doc])* $variant, )*
        }

        impl Action {
            /// Every action, in catalogue order.
            pub const ALL: &'static [Action] = &[$(Action::$variant),*];

            /// The stable dotted code.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Action::$variant => $code,)*
                }
            }
        }

        impl FromStr for Action {
            type Err = UnknownCode;

            fn from_str(code: &str) -> Result<Action, UnknownCode> {
                match code {
                    $($code => Ok(Action::$variant),)*
                    _ => Err(UnknownCode::new("action", code)),
                }
            }
        }
    };
}

actions! {
    /// A user signed in.
    AuthLogin = "auth.login",
    /// A sign-in attempt failed (wrong password or code, unknown or disabled user).
    AuthLoginFailed = "auth.login_failed",
    /// Refused sign-ins from one address (or, past the per-window budget, from many), counted
    /// in one event per window instead of recorded one by one.
    AuthRefusalsCounted = "auth.refusals_counted",
    /// A user signed out.
    AuthLogout = "auth.logout",
    /// A one-time sign-in link was issued for a user (by an admin, the CLI or the demo).
    AuthLinkIssued = "auth.link_issued",
    /// A user changed their password.
    AuthPasswordChanged = "auth.password_changed",
    /// A user enabled TOTP second-factor sign-in.
    AuthTotpEnabled = "auth.totp_enabled",
    /// A user turned TOTP second-factor sign-in off.
    AuthTotpDisabled = "auth.totp_disabled",
    /// An admin unlocked an account locked by failed sign-ins.
    AuthUnlocked = "auth.unlocked",
    /// A case was opened for viewing.
    CaseOpened = "case.opened",
    /// An attempt to open a case outside the user's assignment was refused.
    CaseDenied = "case.denied",
    /// An image stream to a viewer started.
    StreamStarted = "stream.started",
    /// An image stream ended.
    StreamEnded = "stream.ended",
    /// Lossless (full-quality) pixels were shown.
    StreamLosslessShown = "stream.lossless_shown",
    /// A running stream switched to another case (reported by the worker once the case
    /// was open; before December 2026 recorded when the ticket was issued).
    StreamSwitchedCase = "stream.switched_case",
    /// A worker sent a lossless frame (its hash, bytes and the exact render state), whatever
    /// the browser said about it.
    StreamLosslessSent = "stream.lossless_sent",
    /// A worker withheld lossless frames of a case from a session past its lossless budget
    /// (`reason`: `rate` or `case_budget`); the stream went on lossy. Flagged as
    /// `bulk_extraction`.
    StreamLosslessWithheld = "stream.lossless_withheld",
    /// Images of a prior visit were shown beside a case (layout `prior`). Recorded against the
    /// prior visit's case, so "who saw case X" includes those who saw it as a prior visit;
    /// `via_case`, `stream_id` and the prior `views` in details.
    StreamPriorViewed = "stream.prior_viewed",
    /// An open stream was ended because the access that admitted it ended (why in details).
    StreamRevoked = "stream.revoked",
    /// A ticket was issued to move an open viewer session to a case, or to get that case
    /// ready beside it (`purpose`: `open_case` or `prefetch`).
    StreamTicketIssued = "stream.ticket_issued",
    /// A worker process registered with the pool (its first heartbeat seen by this database).
    WorkerRegistered = "worker.registered",
    /// A worker stopped sending heartbeats; its open streams were closed in the record.
    WorkerLost = "worker.lost",
    /// A grade draft was saved.
    GradeDraftSaved = "grade.draft_saved",
    /// A grade was submitted.
    GradeSubmitted = "grade.submitted",
    /// A submitted grade was amended.
    GradeAmended = "grade.amended",
    /// An adjudication of disagreeing grades was submitted.
    AdjudicationSubmitted = "adjudication.submitted",
    /// A case was assigned to a grader.
    AssignmentCreated = "assignment.created",
    /// An assignment was removed.
    AssignmentRemoved = "assignment.removed",
    /// An assignment was moved to another grader.
    AssignmentReassigned = "assignment.reassigned",
    /// A batch of assignments was created.
    BatchCreated = "batch.created",
    /// A study was created.
    StudyCreated = "study.created",
    /// A study's grading form was changed.
    StudyFormChanged = "study.form_changed",
    /// An exam bundle passed the ingest gate.
    IngestAccepted = "ingest.accepted",
    /// An exam bundle was refused by the ingest gate.
    IngestRefused = "ingest.refused",
    /// A data export was downloaded.
    ExportDownloaded = "export.downloaded",
    /// The audit log was exported.
    AuditExported = "audit.exported",
    /// A user account was created.
    UserCreated = "user.created",
    /// A user account was disabled.
    UserDisabled = "user.disabled",
    /// A user account was enabled again.
    UserEnabled = "user.enabled",
    /// A role was granted to a user.
    RoleGranted = "role.granted",
    /// A role was revoked from a user.
    RoleRevoked = "role.revoked",
    /// A key (signing or encryption) was created.
    KeyCreated = "key.created",
    /// Any other request refused by route policy.
    AccessDenied = "access.denied",
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Action {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Action, D::Error> {
        let code = String::deserialize(deserializer)?;
        code.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeSet;

    #[test]
    fn every_action_code_round_trips() {
        assert_eq!(Action::ALL.len(), 43);
        let codes: BTreeSet<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(codes.len(), Action::ALL.len());
        for &action in Action::ALL {
            assert_eq!(action.as_str().parse::<Action>(), Ok(action));
            let json = serde_json::to_string(&action).unwrap();
            assert_eq!(json, format!("\"{}\"", action.as_str()));
            assert_eq!(serde_json::from_str::<Action>(&json).unwrap(), action);
        }
        assert_eq!("case.denied".parse(), Ok(Action::CaseDenied));
        assert!("case.deleted".parse::<Action>().is_err());
        assert!("".parse::<Action>().is_err());
        for outcome in [Outcome::Success, Outcome::Denied, Outcome::Failure] {
            assert_eq!(outcome.as_str().parse(), Ok(outcome));
            assert_eq!(
                serde_json::to_value(outcome).unwrap(),
                json!(outcome.as_str())
            );
        }
        assert!("Success".parse::<Outcome>().is_err());
    }
}
