//! Streaming tickets: what the server signs so a worker can trust "user U may view case C in
//! viewer session S until T" without reaching the database.
//!
//! Wire form: `rt1.<payload>.<signature>`, both parts base64url without padding. The payload is
//! the JSON of [`TicketClaims`]; the Ed25519 signature covers the exact payload bytes as sent
//! (never a re-serialization), prefixed with a domain-separation label, so no canonical JSON is
//! needed and a signature made for anything else cannot be replayed as a ticket.
//! Tickets are short-lived (the server uses about a minute) and carry a random `id` so a worker
//! can refuse a second use.
//!
//! **Sealed form** (what the server hands out): `rt2.<base64url(age ciphertext)>`, the whole
//! `rt1` ticket encrypted with age to the study's recipients (the workers' public keys, as its
//! bundles are). The browser carries tickets to the worker (next case, prefetch), and an `rt1`
//! payload is only encoded: it names the case, study and bundle object keys, so a grader could
//! tell a hidden repeat from the case it repeats. Sealed, only a worker that can decrypt the
//! case's bundles can read it. The server seals (`server/src/auth/ticket_seal.rs`); the worker
//! opens (`worker/src/admission.rs`), then verifies the `rt1` inside as usual.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

/// The prefix of every ticket (format version 1).
pub const TICKET_PREFIX: &str = "rt1";
/// Signed bytes are `SIGNING_CONTEXT || payload`.
const SIGNING_CONTEXT: &[u8] = b"readroom stream ticket v1\0";
/// Longest ticket accepted before any decoding (a bound on work for hostile input).
pub const MAX_TICKET_LEN: usize = 2048;
/// The prefix of a sealed ticket (an `rt1` ticket encrypted to the workers' age recipients).
pub const SEALED_TICKET_PREFIX: &str = "rt2";
/// Longest sealed ticket accepted before any decoding: an `rt1` of [`MAX_TICKET_LEN`] with
/// about 25 X25519 recipients, and still inside one 8 KiB data-channel message.
pub const MAX_SEALED_TICKET_LEN: usize = 6144;
/// Most recipient stanzas a sealed ticket may carry. A worker tries its identities on each
/// (an X25519 exchange apiece) before it knows the ticket is genuine, so a grader could
/// otherwise send tickets of ~45 forged stanzas on every data-channel message to spend the
/// worker's CPU; the server refuses to seal to more.
pub const MAX_SEALED_RECIPIENTS: usize = 8;

/// What a ticket asserts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketClaims {
    /// Random id of this ticket (for single use).
    pub id: String,
    /// The user (readroom user id).
    pub user: String,
    /// The case the holder may view.
    pub case: String,
    /// The case's study (so that a worker can end a user's sessions in one study when their
    /// grant for it is revoked; empty in tickets from before December 2026).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub study: String,
    /// The viewer session the ticket belongs to.
    pub session: String,
    /// Unix second after which the ticket is refused.
    pub expires: i64,
    /// Object-store key of the case's encrypted bundle (so the worker needs no database).
    #[serde(default)]
    pub bundle: String,
    /// Object-store key of the subject's prior-visit bundle, if the case has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior_bundle: Option<String>,
    /// What the visible watermark names the viewer by (the username).
    #[serde(default)]
    pub label: String,
    /// Unix second at which a stream admitted with this ticket must end: the absolute end of
    /// the sign-in session that asked for it (0: no limit beyond the worker's own timeouts).
    #[serde(default)]
    pub not_after: i64,
    /// Full-resolution pixels of this case the server has on record as already shown
    /// losslessly to this user in the last 24 hours: the worker's lossless budget for the case
    /// starts there, so a new connection does not start a fresh budget (0 in tickets from
    /// before December 2026).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lossless_spent_px: u64,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

/// Why a ticket was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    /// Not a ticket at all (wrong prefix, shape, encoding, JSON or length).
    #[error("malformed ticket: {0}")]
    Malformed(&'static str),
    /// The signature does not verify with the server's key.
    #[error("ticket signature is not valid")]
    BadSignature,
    /// Past its expiry.
    #[error("ticket expired")]
    Expired,
}

/// Signs tickets (server side).
pub struct TicketSigner {
    key: SigningKey,
}

impl TicketSigner {
    /// A signer from a 32-byte Ed25519 seed.
    pub fn from_seed(seed: &[u8; 32]) -> TicketSigner {
        TicketSigner {
            key: SigningKey::from_bytes(seed),
        }
    }

    /// The key workers verify with.
    pub fn verifier(&self) -> TicketVerifier {
        TicketVerifier {
            key: self.key.verifying_key(),
        }
    }

    /// Signs `claims` into the wire form.
    pub fn sign(&self, claims: &TicketClaims) -> String {
        let payload = serde_json::to_vec(claims).expect("ticket claims serialize");
        let signature = self.key.sign(&signed_bytes(&payload));
        format!(
            "{TICKET_PREFIX}.{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        )
    }
}

impl std::fmt::Debug for TicketSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TicketSigner(..)")
    }
}

/// Verifies tickets (worker side).
#[derive(Debug, Clone)]
pub struct TicketVerifier {
    key: VerifyingKey,
}

impl TicketVerifier {
    /// A verifier from the server's 32-byte public key.
    pub fn from_public_key(bytes: &[u8; 32]) -> Result<TicketVerifier, TicketError> {
        VerifyingKey::from_bytes(bytes)
            .map(|key| TicketVerifier { key })
            .map_err(|_| TicketError::Malformed("not an Ed25519 public key"))
    }

    /// The public key's bytes.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// Checks the signature, then the expiry against `now_unix`, and returns the claims.
    /// Which case and session the claims must name is the caller's check.
    pub fn verify(&self, ticket: &str, now_unix: i64) -> Result<TicketClaims, TicketError> {
        if ticket.len() > MAX_TICKET_LEN {
            return Err(TicketError::Malformed("too long"));
        }
        let mut parts = ticket.split('.');
        let (Some(prefix), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TicketError::Malformed("expected three dot-separated parts"));
        };
        if prefix != TICKET_PREFIX {
            return Err(TicketError::Malformed("unknown ticket version"));
        }
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TicketError::Malformed("payload is not base64url"))?;
        let signature: [u8; 64] = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| TicketError::Malformed("signature is not base64url"))?
            .try_into()
            .map_err(|_| TicketError::Malformed("signature has the wrong length"))?;
        self.key
            .verify(&signed_bytes(&payload), &Signature::from_bytes(&signature))
            .map_err(|_| TicketError::BadSignature)?;
        let claims: TicketClaims = serde_json::from_slice(&payload)
            .map_err(|_| TicketError::Malformed("payload is not ticket JSON"))?;
        if claims.expires <= now_unix {
            return Err(TicketError::Expired);
        }
        Ok(claims)
    }
}

fn signed_bytes(payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(SIGNING_CONTEXT.len() + payload.len());
    bytes.extend_from_slice(SIGNING_CONTEXT);
    bytes.extend_from_slice(payload);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> TicketClaims {
        TicketClaims {
            id: "t1".into(),
            user: "u1".into(),
            case: "c1".into(),
            study: "s1".into(),
            session: "s1".into(),
            expires: 1_000,
            bundle: "bundles/b1.age".into(),
            prior_bundle: None,
            label: "grader.one".into(),
            not_after: 0,
            lossless_spent_px: 0,
        }
    }

    #[test]
    fn a_signed_ticket_verifies_until_it_expires() {
        let signer = TicketSigner::from_seed(&[7; 32]);
        let ticket = signer.sign(&claims());
        let verifier = signer.verifier();
        assert_eq!(verifier.verify(&ticket, 999), Ok(claims()));
        assert_eq!(verifier.verify(&ticket, 1_000), Err(TicketError::Expired));
    }

    #[test]
    fn another_servers_key_is_refused() {
        let ticket = TicketSigner::from_seed(&[7; 32]).sign(&claims());
        let other = TicketSigner::from_seed(&[8; 32]).verifier();
        assert_eq!(other.verify(&ticket, 0), Err(TicketError::BadSignature));
    }

    #[test]
    fn edited_claims_break_the_signature() {
        let signer = TicketSigner::from_seed(&[7; 32]);
        let ticket = signer.sign(&claims());
        let mut forged = claims();
        forged.case = "c2".into();
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        let signature = ticket.rsplit('.').next().unwrap();
        let tampered = format!("{TICKET_PREFIX}.{forged_payload}.{signature}");
        assert_eq!(
            signer.verifier().verify(&tampered, 0),
            Err(TicketError::BadSignature)
        );
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        let verifier = TicketSigner::from_seed(&[7; 32]).verifier();
        for bad in [
            "",
            "rt1",
            "rt1..",
            "rt2.e30.AAAA",
            "rt1.!!.AAAA",
            "rt1.e30.AAAA",
            "rt1.e30.AAAA.extra",
            &"x".repeat(MAX_TICKET_LEN + 1),
        ] {
            assert!(
                matches!(verifier.verify(bad, 0), Err(TicketError::Malformed(_))),
                "{bad:.20}"
            );
        }
    }

    #[test]
    fn random_bytes_never_verify() {
        use rand::{Rng, SeedableRng};
        let verifier = TicketSigner::from_seed(&[7; 32]).verifier();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for _ in 0..500 {
            let len = rng.gen_range(0..200);
            let text: String = (0..len)
                .map(|_| char::from(rng.gen_range(b' '..=b'~')))
                .collect();
            assert!(verifier.verify(&format!("rt1.{text}"), 0).is_err());
        }
    }
}
