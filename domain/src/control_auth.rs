//! Signed requests between servers and workers (the control protocol, [`crate::workers`]).
//!
//! Every request carries one header, `x-readroom-signature: v1 <key> <unix> <signature>`:
//! the signer's Ed25519 public key (hex), the time it signed, and a signature over a domain
//! label for the direction, the method, the path, the time and the SHA-256 of the body. A
//! receiver accepts it only when the key is one it trusts (a worker: the server's ticket key; a
//! server: a worker key listed in its configuration), the signature verifies and the time is
//! within [`MAX_SKEW_SECS`] of its own clock. The two directions use different labels, so a
//! request a server signed can never be replayed as a worker's, and the reverse.
//!
//! What this does not do: hide the body (run the control port on a private network or behind
//! TLS) or stop a replay within the skew window of a request already seen. Replays are harmless
//! by construction: opening a session needs a single-use ticket, ending sessions and heartbeats
//! are idempotent, and session events are keyed by stream and frame.

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

/// The header that carries the signature.
pub const HEADER: &str = "x-readroom-signature";
/// How far the signer's clock may be from the receiver's.
pub const MAX_SKEW_SECS: i64 = 30;
/// Longest header accepted before any decoding.
const MAX_HEADER_LEN: usize = 256;

/// Who signed: the direction of the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// A server asking a worker.
    ServerToWorker,
    /// A worker reporting to a server.
    WorkerToServer,
}

impl Direction {
    fn label(self) -> &'static [u8] {
        match self {
            Direction::ServerToWorker => b"readroom control v1 server-to-worker\0",
            Direction::WorkerToServer => b"readroom control v1 worker-to-server\0",
        }
    }
}

/// Why a signed request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlAuthError {
    /// No signature header.
    #[error("the request is not signed (no {HEADER} header)")]
    Missing,
    /// Not of the form `v1 <key> <unix> <signature>`.
    #[error("malformed signature header: {0}")]
    Malformed(&'static str),
    /// Signed by a key the receiver does not trust.
    #[error("the request is signed by an unknown key")]
    UnknownKey,
    /// The signature does not verify.
    #[error("the request signature is not valid")]
    BadSignature,
    /// Signed too long ago or in the future.
    #[error("the request was signed {0} s away from this clock (more than {MAX_SKEW_SECS} s)")]
    Stale(i64),
}

/// Signs control requests in one direction.
pub struct ControlSigner {
    key: SigningKey,
    direction: Direction,
}

impl std::fmt::Debug for ControlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ControlSigner({})", self.public_key_hex())
    }
}

impl ControlSigner {
    /// A signer from a 32-byte Ed25519 seed.
    pub fn from_seed(seed: &[u8; 32], direction: Direction) -> ControlSigner {
        ControlSigner {
            key: SigningKey::from_bytes(seed),
            direction,
        }
    }

    /// The public key, hex (what the other side lists as trusted).
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.key.verifying_key().to_bytes())
    }

    /// The header value for a request.
    pub fn sign(&self, method: &str, path: &str, body: &[u8], now_unix: i64) -> String {
        let message = signed_bytes(self.direction, method, path, now_unix, body);
        let signature = self.key.sign(&message);
        format!(
            "v1 {} {now_unix} {}",
            self.public_key_hex(),
            STANDARD_NO_PAD.encode(signature.to_bytes())
        )
    }
}

/// Checks a request's header; `trusted` says whether a public key may sign this direction.
/// Returns the signer's public key.
pub fn verify(
    header: Option<&str>,
    direction: Direction,
    method: &str,
    path: &str,
    body: &[u8],
    now_unix: i64,
    trusted: impl Fn(&[u8; 32]) -> bool,
) -> Result<[u8; 32], ControlAuthError> {
    let header = header.ok_or(ControlAuthError::Missing)?;
    if header.len() > MAX_HEADER_LEN {
        return Err(ControlAuthError::Malformed("too long"));
    }
    let mut parts = header.split(' ');
    let (Some("v1"), Some(key), Some(time), Some(signature), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(ControlAuthError::Malformed(
            "expected `v1 <key> <unix> <signature>`",
        ));
    };
    let key: [u8; 32] = hex::decode(key)
        .ok()
        .and_then(|k| k.try_into().ok())
        .ok_or(ControlAuthError::Malformed("the key is not 64 hex digits"))?;
    let time: i64 = time
        .parse()
        .map_err(|_| ControlAuthError::Malformed("the time is not a number"))?;
    let signature: [u8; 64] = STANDARD_NO_PAD
        .decode(signature)
        .ok()
        .and_then(|s| s.try_into().ok())
        .ok_or(ControlAuthError::Malformed(
            "the signature is not 64 bytes of base64",
        ))?;
    if !trusted(&key) {
        return Err(ControlAuthError::UnknownKey);
    }
    let verifying = VerifyingKey::from_bytes(&key).map_err(|_| ControlAuthError::UnknownKey)?;
    verifying
        .verify(
            &signed_bytes(direction, method, path, time, body),
            &Signature::from_bytes(&signature),
        )
        .map_err(|_| ControlAuthError::BadSignature)?;
    let skew = now_unix.saturating_sub(time);
    if skew.abs() > MAX_SKEW_SECS {
        return Err(ControlAuthError::Stale(skew));
    }
    Ok(key)
}

/// Parses a public key written as 64 hex digits.
pub fn parse_public_key(text: &str) -> Result<[u8; 32], ControlAuthError> {
    let key: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|k| k.try_into().ok())
        .ok_or(ControlAuthError::Malformed("a key is 64 hex digits"))?;
    VerifyingKey::from_bytes(&key)
        .map_err(|_| ControlAuthError::Malformed("not an Ed25519 key"))?;
    Ok(key)
}

fn signed_bytes(direction: Direction, method: &str, path: &str, time: i64, body: &[u8]) -> Vec<u8> {
    let mut bytes = direction.label().to_vec();
    bytes.extend_from_slice(method.as_bytes());
    bytes.push(b'\n');
    bytes.extend_from_slice(path.as_bytes());
    bytes.push(b'\n');
    bytes.extend_from_slice(time.to_string().as_bytes());
    bytes.push(b'\n');
    bytes.extend_from_slice(hex::encode(Sha256::digest(body)).as_bytes());
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> ControlSigner {
        ControlSigner::from_seed(&[1; 32], Direction::ServerToWorker)
    }

    fn check(
        header: &str,
        body: &[u8],
        now: i64,
        trusted: [u8; 32],
    ) -> Result<[u8; 32], ControlAuthError> {
        verify(
            Some(header),
            Direction::ServerToWorker,
            "POST",
            "/v1/sessions",
            body,
            now,
            |key| *key == trusted,
        )
    }

    fn key_of(signer: &ControlSigner) -> [u8; 32] {
        parse_public_key(&signer.public_key_hex()).unwrap()
    }

    #[test]
    fn a_signed_request_verifies_with_the_trusted_key() {
        let signer = server();
        let header = signer.sign("POST", "/v1/sessions", b"{}", 1000);
        assert_eq!(
            check(&header, b"{}", 1010, key_of(&signer)),
            Ok(key_of(&signer))
        );
    }

    #[test]
    fn body_path_method_and_time_are_covered() {
        let signer = server();
        let key = key_of(&signer);
        let header = signer.sign("POST", "/v1/sessions", b"{}", 1000);
        assert_eq!(
            check(&header, b"{ }", 1000, key),
            Err(ControlAuthError::BadSignature)
        );
        let other_path = verify(
            Some(&header),
            Direction::ServerToWorker,
            "POST",
            "/v1/sessions/end",
            b"{}",
            1000,
            |_| true,
        );
        assert_eq!(other_path, Err(ControlAuthError::BadSignature));
        let other_method = verify(
            Some(&header),
            Direction::ServerToWorker,
            "GET",
            "/v1/sessions",
            b"{}",
            1000,
            |_| true,
        );
        assert_eq!(other_method, Err(ControlAuthError::BadSignature));
        let moved = header.replace(" 1000 ", " 1001 ");
        assert_eq!(
            check(&moved, b"{}", 1000, key),
            Err(ControlAuthError::BadSignature)
        );
    }

    #[test]
    fn unknown_keys_stale_times_and_the_other_direction_are_refused() {
        let signer = server();
        let header = signer.sign("POST", "/v1/sessions", b"{}", 1000);
        assert_eq!(
            check(&header, b"{}", 1000, [9; 32]),
            Err(ControlAuthError::UnknownKey)
        );
        assert_eq!(
            check(&header, b"{}", 1031, key_of(&signer)),
            Err(ControlAuthError::Stale(31))
        );
        assert_eq!(
            check(&header, b"{}", 969, key_of(&signer)),
            Err(ControlAuthError::Stale(-31))
        );
        let worker = ControlSigner::from_seed(&[1; 32], Direction::WorkerToServer);
        let reversed = worker.sign("POST", "/v1/sessions", b"{}", 1000);
        assert_eq!(
            check(&reversed, b"{}", 1000, key_of(&signer)),
            Err(ControlAuthError::BadSignature),
            "the same key signing the other direction is not accepted"
        );
    }

    #[test]
    fn malformed_headers_are_named() {
        let key = key_of(&server());
        assert_eq!(
            verify(None, Direction::ServerToWorker, "GET", "/", b"", 0, |_| {
                true
            }),
            Err(ControlAuthError::Missing)
        );
        for bad in ["", "v2 aa 1 bb", "v1 zz 1 AAAA", "v1", &"x".repeat(300)] {
            assert!(
                matches!(check(bad, b"", 0, key), Err(ControlAuthError::Malformed(_))),
                "{bad:?}"
            );
        }
        assert!(parse_public_key("abc").is_err());
    }
}
