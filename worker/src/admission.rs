//! The worker's side of authorization: it trusts no caller, only tickets the server signed.
//!
//! A viewer session starts with [`TicketGate::admit`]; moving to the next case is
//! [`TicketGate::switch_case`] with a new ticket for the same user and viewer session; every
//! data-channel request naming a case goes through [`Admission::check_case`]. Pure logic: the
//! caller supplies the time, so it is tested without sockets or clocks.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use readroom_domain::ticket::{
    MAX_SEALED_RECIPIENTS, MAX_SEALED_TICKET_LEN, MAX_TICKET_LEN, SEALED_TICKET_PREFIX,
    TicketClaims, TicketError, TicketVerifier,
};

use crate::keys::WorkerIdentity;

/// Tickets remembered for single use; beyond this many live ones new admissions are refused
/// (a bound on memory under a flood of valid tickets).
const MAX_REMEMBERED: usize = 100_000;

/// What an admitted viewer session may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    /// The user (readroom user id).
    pub user: String,
    /// The case this session shows now.
    pub case: String,
    /// That case's study (empty in tickets from before December 2026).
    pub study: String,
    /// The viewer session.
    pub session: String,
    /// Object-store key of the case's encrypted bundle.
    pub bundle: String,
    /// Object-store key of the prior visit's bundle, if any.
    pub prior_bundle: Option<String>,
    /// Name for the visible watermark.
    pub label: String,
    /// Unix second at which the session must end (0: no limit); see
    /// `readroom_domain::ticket::TicketClaims::not_after`.
    pub not_after: i64,
    /// Full-resolution pixels of the case already shown losslessly to the user (the budget
    /// starts there); see `TicketClaims::lossless_spent_px`.
    pub lossless_spent_px: u64,
}

/// Why a ticket or request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmissionError {
    /// The ticket is malformed, forged or expired.
    #[error(transparent)]
    Ticket(#[from] TicketError),
    /// The ticket was already used.
    #[error("this ticket was already used")]
    Replayed,
    /// A ticket for another user or viewer session than this one.
    #[error("the ticket belongs to another user or viewer session")]
    WrongSession,
    /// A request for a case this session was not admitted to.
    #[error("this session may not show that case")]
    OtherCase,
    /// Too many live tickets remembered.
    #[error("too many sessions; try again shortly")]
    Busy,
}

/// Verifies tickets and remembers used ones until they expire.
#[derive(Debug)]
pub struct TicketGate {
    verifier: TicketVerifier,
    identities: Arc<[WorkerIdentity]>,
    used: HashMap<String, i64>,
}

impl TicketGate {
    /// A gate trusting the server key behind `verifier`, for signed (`rt1`) tickets only; see
    /// [`TicketGate::with_identities`] for the sealed ones the server hands out.
    pub fn new(verifier: TicketVerifier) -> TicketGate {
        TicketGate {
            verifier,
            identities: Arc::from(Vec::new()),
            used: HashMap::new(),
        }
    }

    /// The same gate, opening sealed (`rt2`) tickets with the worker's `identities`.
    pub fn with_identities(mut self, identities: Arc<[WorkerIdentity]>) -> TicketGate {
        self.identities = identities;
        self
    }

    /// Opens (if sealed) and verifies a ticket.
    fn verify(&self, ticket: &str, now: i64) -> Result<TicketClaims, TicketError> {
        let sealed = ticket
            .strip_prefix(SEALED_TICKET_PREFIX)
            .is_some_and(|rest| rest.starts_with('.'));
        if sealed {
            let inner = open_sealed(ticket, &self.identities)?;
            return self.verifier.verify(&inner, now);
        }
        self.verifier.verify(ticket, now)
    }

    fn redeem(&mut self, ticket: &str, now: i64) -> Result<TicketClaims, AdmissionError> {
        let claims = self.verify(ticket, now)?;
        self.used.retain(|_, expires| *expires > now);
        if self.used.contains_key(&claims.id) {
            return Err(AdmissionError::Replayed);
        }
        if self.used.len() >= MAX_REMEMBERED {
            return Err(AdmissionError::Busy);
        }
        self.used.insert(claims.id.clone(), claims.expires);
        Ok(claims)
    }

    /// Starts a viewer session from a ticket.
    pub fn admit(&mut self, ticket: &str, now: i64) -> Result<Admission, AdmissionError> {
        let claims = self.redeem(ticket, now)?;
        Ok(Admission::from(claims))
    }

    /// Moves an admitted session to the case of a new ticket, which must be for the same user
    /// and viewer session. On refusal the session keeps its current case.
    pub fn switch_case(
        &mut self,
        current: &Admission,
        ticket: &str,
        now: i64,
    ) -> Result<Admission, AdmissionError> {
        self.check_next(current, ticket, now)?;
        self.admit(ticket, now)
    }

    /// What `ticket` would admit the session `current` to next, without using it up: for
    /// getting that case ready (`prefetch_case`) before the session moves to it with
    /// [`TicketGate::switch_case`]. Same checks as there (signature, expiry, same user and
    /// viewer session), except that the ticket stays valid.
    pub fn check_next(
        &self,
        current: &Admission,
        ticket: &str,
        now: i64,
    ) -> Result<Admission, AdmissionError> {
        let claims = self.verify(ticket, now)?;
        if claims.user != current.user || claims.session != current.session {
            return Err(AdmissionError::WrongSession);
        }
        if self
            .used
            .get(&claims.id)
            .is_some_and(|expires| *expires > now)
        {
            return Err(AdmissionError::Replayed);
        }
        Ok(Admission::from(claims))
    }
}

/// The signed `rt1` ticket inside a sealed `rt2` one (see `readroom_domain::ticket`), opened
/// with any of `identities`. Bounded: the sealed text by [`MAX_SEALED_TICKET_LEN`], its
/// recipient stanzas by [`MAX_SEALED_RECIPIENTS`] (counted before any key exchange), what it
/// holds by [`MAX_TICKET_LEN`]; a sealed ticket inside a sealed ticket is refused.
pub fn open_sealed(ticket: &str, identities: &[WorkerIdentity]) -> Result<String, TicketError> {
    if ticket.len() > MAX_SEALED_TICKET_LEN {
        return Err(TicketError::Malformed("sealed ticket too long"));
    }
    let body = ticket
        .strip_prefix(SEALED_TICKET_PREFIX)
        .and_then(|rest| rest.strip_prefix('.'))
        .ok_or(TicketError::Malformed("unknown ticket version"))?;
    let sealed = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| TicketError::Malformed("sealed ticket is not base64url"))?;
    // X25519 stanzas (the only ones an identity spends a key exchange on; age adds a "grease"
    // stanza of another type to every header), counted in the text header before any is tried.
    let header_end = sealed
        .windows(5)
        .position(|w| w == b"\n--- ")
        .unwrap_or(sealed.len());
    const X25519_STANZA: &[u8] = b"\n-> X25519 ";
    let stanzas = sealed[..header_end]
        .windows(X25519_STANZA.len())
        .filter(|w| *w == X25519_STANZA)
        .count();
    if stanzas > MAX_SEALED_RECIPIENTS {
        return Err(TicketError::Malformed(
            "sealed ticket has too many recipient stanzas",
        ));
    }
    let decryptor = age::Decryptor::new(sealed.as_slice())
        .map_err(|_| TicketError::Malformed("sealed ticket is not age ciphertext"))?;
    let reader = decryptor
        .decrypt(identities.iter().map(WorkerIdentity::as_age))
        .map_err(|_| {
            TicketError::Malformed("sealed ticket does not open with this worker's identities")
        })?;
    let mut inner = Vec::new();
    reader
        .take(MAX_TICKET_LEN as u64 + 1)
        .read_to_end(&mut inner)
        .map_err(|_| TicketError::Malformed("sealed ticket is corrupt"))?;
    if inner.len() > MAX_TICKET_LEN {
        return Err(TicketError::Malformed("too long"));
    }
    let inner =
        String::from_utf8(inner).map_err(|_| TicketError::Malformed("sealed ticket is corrupt"))?;
    if inner.starts_with(SEALED_TICKET_PREFIX) {
        return Err(TicketError::Malformed(
            "a sealed ticket inside a sealed ticket",
        ));
    }
    Ok(inner)
}

impl From<TicketClaims> for Admission {
    fn from(claims: TicketClaims) -> Admission {
        Admission {
            user: claims.user,
            case: claims.case,
            study: claims.study,
            session: claims.session,
            bundle: claims.bundle,
            prior_bundle: claims.prior_bundle,
            label: claims.label,
            not_after: claims.not_after,
            lossless_spent_px: claims.lossless_spent_px,
        }
    }
}

impl Admission {
    /// Checks that a request names this session's case.
    pub fn check_case(&self, case: &str) -> Result<(), AdmissionError> {
        if case == self.case {
            Ok(())
        } else {
            Err(AdmissionError::OtherCase)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use readroom_domain::ticket::TicketSigner;

    fn ticket(signer: &TicketSigner, id: &str, user: &str, case: &str, session: &str) -> String {
        signer.sign(&TicketClaims {
            id: id.into(),
            user: user.into(),
            case: case.into(),
            study: "s1".into(),
            session: session.into(),
            expires: 100,
            bundle: format!("bundles/{case}.age"),
            prior_bundle: None,
            label: "grader".into(),
            not_after: 0,
            lossless_spent_px: 0,
        })
    }

    #[test]
    fn admits_once_and_refuses_replays() {
        let signer = TicketSigner::from_seed(&[1; 32]);
        let mut gate = TicketGate::new(signer.verifier());
        let t = ticket(&signer, "t1", "u1", "c1", "s1");
        let admission = gate.admit(&t, 10).unwrap();
        assert_eq!(admission.case, "c1");
        assert_eq!(gate.admit(&t, 11), Err(AdmissionError::Replayed));
        assert_eq!(
            gate.admit(&t, 100),
            Err(AdmissionError::Ticket(TicketError::Expired))
        );
    }

    #[test]
    fn forged_tickets_are_refused() {
        let server = TicketSigner::from_seed(&[1; 32]);
        let attacker = TicketSigner::from_seed(&[2; 32]);
        let mut gate = TicketGate::new(server.verifier());
        let forged = ticket(&attacker, "t1", "u1", "c1", "s1");
        assert_eq!(
            gate.admit(&forged, 10),
            Err(AdmissionError::Ticket(TicketError::BadSignature))
        );
        assert!(matches!(
            gate.admit("rt1.garbage", 10),
            Err(AdmissionError::Ticket(TicketError::Malformed(_)))
        ));
    }

    #[test]
    fn switching_cases_needs_a_ticket_for_the_same_user_and_session() {
        let signer = TicketSigner::from_seed(&[1; 32]);
        let mut gate = TicketGate::new(signer.verifier());
        let current = gate
            .admit(&ticket(&signer, "t1", "u1", "c1", "s1"), 10)
            .unwrap();
        let next = gate
            .switch_case(&current, &ticket(&signer, "t2", "u1", "c2", "s1"), 11)
            .unwrap();
        assert_eq!(next.case, "c2");
        let stolen = ticket(&signer, "t3", "u2", "c3", "s9");
        assert_eq!(
            gate.switch_case(&next, &stolen, 12),
            Err(AdmissionError::WrongSession)
        );
        // The refused ticket was not spent: its owner can still use it.
        assert!(gate.admit(&stolen, 12).is_ok());
    }

    #[test]
    fn checking_a_next_case_ticket_does_not_use_it_up() {
        let signer = TicketSigner::from_seed(&[1; 32]);
        let mut gate = TicketGate::new(signer.verifier());
        let current = gate
            .admit(&ticket(&signer, "t1", "u1", "c1", "s1"), 10)
            .unwrap();
        let next = ticket(&signer, "t2", "u1", "c2", "s1");
        let ready = gate.check_next(&current, &next, 11).unwrap();
        assert_eq!(ready.case, "c2");
        assert_eq!(ready.bundle, "bundles/c2.age");
        // Checked twice, then used once, then never again (not even for a prefetch).
        assert!(gate.check_next(&current, &next, 12).is_ok());
        assert_eq!(gate.switch_case(&current, &next, 13).unwrap(), ready);
        assert_eq!(
            gate.check_next(&current, &next, 14),
            Err(AdmissionError::Replayed)
        );
        // Another user's or viewer session's ticket, forged or expired ones: refused.
        let other = ticket(&signer, "t3", "u2", "c3", "s1");
        assert_eq!(
            gate.check_next(&current, &other, 14),
            Err(AdmissionError::WrongSession)
        );
        let forged = ticket(&TicketSigner::from_seed(&[2; 32]), "t4", "u1", "c2", "s1");
        assert_eq!(
            gate.check_next(&current, &forged, 14),
            Err(AdmissionError::Ticket(TicketError::BadSignature))
        );
        let late = ticket(&signer, "t5", "u1", "c2", "s1");
        assert_eq!(
            gate.check_next(&current, &late, 100),
            Err(AdmissionError::Ticket(TicketError::Expired))
        );
    }

    #[test]
    fn requests_stay_within_the_admitted_case() {
        let admission = Admission {
            user: "u1".into(),
            case: "c1".into(),
            study: "s1".into(),
            session: "s1".into(),
            bundle: "bundles/c1.age".into(),
            prior_bundle: None,
            label: "grader".into(),
            not_after: 0,
            lossless_spent_px: 0,
        };
        assert_eq!(admission.check_case("c1"), Ok(()));
        assert_eq!(admission.check_case("c2"), Err(AdmissionError::OtherCase));
        assert_eq!(admission.check_case(""), Err(AdmissionError::OtherCase));
    }
}
