//! Signed [`Checkpoint`]s: the [`CheckpointSigner`] (server side), the [`CheckpointVerifier`]
//! and the signed message.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::chain::ChainHead;
use super::encoding::{decode_hash, put_str};
use super::error::ChainError;
use super::timestamp::parse_timestamp;

/// Signed checkpoint bytes start with this label (checkpoint format version 1).
const CHECKPOINT_CONTEXT: &[u8] = b"readroom audit checkpoint v1\0";

/// A signed statement "the chain's event `seq` has hash `hash`", stored outside the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The event's sequence number.
    pub seq: i64,
    /// The event's hash (lowercase hex).
    pub hash: String,
    /// When the checkpoint was signed (RFC 3339 UTC).
    pub at: String,
    /// Id of the signing key (first 16 hex digits of SHA-256 of the public key).
    pub key_id: String,
    /// Ed25519 signature, base64url without padding.
    pub signature: String,
}

impl Checkpoint {
    /// The chain head this checkpoint vouches for (a start for
    /// [`Verifier::from_checkpoint`](super::Verifier::from_checkpoint)).
    pub fn head(&self) -> ChainHead {
        ChainHead {
            seq: self.seq,
            hash: self.hash.clone(),
        }
    }
}

fn checkpoint_message(seq: i64, hash: &str, at: &str, key_id: &str) -> Result<Vec<u8>, ChainError> {
    let hash = decode_hash(hash, "hash")?;
    let mut bytes = Vec::with_capacity(128);
    bytes.extend_from_slice(CHECKPOINT_CONTEXT);
    bytes.extend_from_slice(&seq.to_be_bytes());
    bytes.extend_from_slice(&hash);
    put_str(&mut bytes, "at", at)?;
    put_str(&mut bytes, "key_id", key_id)?;
    Ok(bytes)
}

fn key_id_of(key: &VerifyingKey) -> String {
    let digest = Sha256::digest(key.as_bytes());
    hex::encode(&digest[..8])
}

/// Signs checkpoints (server side).
pub struct CheckpointSigner {
    key: SigningKey,
    key_id: String,
}

impl CheckpointSigner {
    /// A signer from a 32-byte Ed25519 seed.
    pub fn from_seed(seed: &[u8; 32]) -> CheckpointSigner {
        let key = SigningKey::from_bytes(seed);
        let key_id = key_id_of(&key.verifying_key());
        CheckpointSigner { key, key_id }
    }

    /// The key id checkpoints name.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The 32-byte public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// The public key as lowercase hex.
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.public_key())
    }

    /// The verifier for this signer's checkpoints.
    pub fn verifier(&self) -> CheckpointVerifier {
        CheckpointVerifier {
            key: self.key.verifying_key(),
            key_id: self.key_id.clone(),
        }
    }

    /// Signs `head` at time `at`. Refuses a malformed head hash or time.
    pub fn sign(&self, head: &ChainHead, at: &str) -> Result<Checkpoint, ChainError> {
        if parse_timestamp(at).is_none() {
            return Err(ChainError::InvalidTime);
        }
        let message = checkpoint_message(head.seq, &head.hash, at, &self.key_id)?;
        let signature = self.key.sign(&message);
        Ok(Checkpoint {
            seq: head.seq,
            hash: head.hash.clone(),
            at: at.to_owned(),
            key_id: self.key_id.clone(),
            signature: URL_SAFE_NO_PAD.encode(signature.to_bytes()),
        })
    }
}

impl fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CheckpointSigner({})", self.key_id)
    }
}

/// Verifies checkpoints with a trusted public key.
#[derive(Debug, Clone)]
pub struct CheckpointVerifier {
    key: VerifyingKey,
    key_id: String,
}

impl CheckpointVerifier {
    /// A verifier from a 32-byte Ed25519 public key.
    pub fn from_public_key(bytes: &[u8; 32]) -> Result<CheckpointVerifier, ChainError> {
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| ChainError::MalformedKey)?;
        let key_id = key_id_of(&key);
        Ok(CheckpointVerifier { key, key_id })
    }

    /// A verifier from a public key given as 64 hex digits.
    pub fn from_public_key_hex(text: &str) -> Result<CheckpointVerifier, ChainError> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut bytes).map_err(|_| ChainError::MalformedKey)?;
        CheckpointVerifier::from_public_key(&bytes)
    }

    /// The trusted key's id.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Checks that `checkpoint` names this key and that its signature covers all its fields.
    pub fn verify(&self, checkpoint: &Checkpoint) -> Result<(), ChainError> {
        if checkpoint.key_id != self.key_id {
            return Err(ChainError::WrongKey {
                expected: self.key_id.clone(),
                found: checkpoint.key_id.chars().take(32).collect(),
            });
        }
        let signature: [u8; 64] = URL_SAFE_NO_PAD
            .decode(&checkpoint.signature)
            .map_err(|_| ChainError::MalformedSignature)?
            .try_into()
            .map_err(|_| ChainError::MalformedSignature)?;
        let message = checkpoint_message(
            checkpoint.seq,
            &checkpoint.hash,
            &checkpoint.at,
            &checkpoint.key_id,
        )?;
        self.key
            .verify_strict(&message, &Signature::from_bytes(&signature))
            .map_err(|_| ChainError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::test_support::{at, chain};
    use crate::audit::{Break, BreakKind, verify_records};
    use serde_json::{Value, json};

    #[test]
    fn forged_checkpoints_fail() {
        let records = chain(10);
        let signer = CheckpointSigner::from_seed(&[3; 32]);
        let key = signer.verifier();
        let good = signer.sign(&records[9].head(), &at(100)).unwrap();
        assert_eq!(key.verify(&good), Ok(()));

        let mut hash = good.clone();
        hash.hash = records[8].hash.clone();
        assert_eq!(key.verify(&hash), Err(ChainError::BadSignature));
        let mut seq = good.clone();
        seq.seq = 9;
        assert_eq!(key.verify(&seq), Err(ChainError::BadSignature));
        let mut time = good.clone();
        time.at = at(101);
        assert_eq!(key.verify(&time), Err(ChainError::BadSignature));

        let other = CheckpointSigner::from_seed(&[4; 32]);
        let foreign = other.sign(&records[9].head(), &at(100)).unwrap();
        assert!(matches!(
            key.verify(&foreign),
            Err(ChainError::WrongKey { .. })
        ));
        let mut impostor = foreign.clone();
        impostor.key_id = key.key_id().to_owned();
        assert_eq!(key.verify(&impostor), Err(ChainError::BadSignature));

        let mut garbled = good.clone();
        garbled.signature = "!!".into();
        assert_eq!(key.verify(&garbled), Err(ChainError::MalformedSignature));
        let mut short = good.clone();
        short.signature = "AAAA".into();
        assert_eq!(key.verify(&short), Err(ChainError::MalformedSignature));
        let mut bad_hex = good.clone();
        bad_hex.hash = good.hash.to_uppercase();
        assert!(matches!(
            key.verify(&bad_hex),
            Err(ChainError::MalformedHash { .. })
        ));

        // The verifier refuses a forged checkpoint at its seq, or past the end.
        let report = verify_records(&records, &[seq], Some(&key));
        assert_eq!(
            report.first_break,
            Some(Break {
                seq: 9,
                kind: BreakKind::BadCheckpointSignature(ChainError::BadSignature)
            })
        );
        let mut beyond = good.clone();
        beyond.seq = 11;
        let report = verify_records(&records, &[beyond], Some(&key));
        assert_eq!(
            report.first_break.map(|b| (b.seq, b.kind)),
            Some((
                11,
                BreakKind::BadCheckpointSignature(ChainError::BadSignature)
            ))
        );
    }

    #[test]
    fn signer_and_verifier_agree_on_key_id_and_public_key() {
        let signer = CheckpointSigner::from_seed(&[3; 32]);
        let from_hex = CheckpointVerifier::from_public_key_hex(&signer.public_key_hex()).unwrap();
        assert_eq!(from_hex.key_id(), signer.key_id());
        assert_eq!(signer.key_id().len(), 16);
        let expected = hex::encode(&Sha256::digest(signer.public_key())[..8]);
        assert_eq!(signer.key_id(), expected);
        assert_eq!(
            CheckpointVerifier::from_public_key_hex("zz").unwrap_err(),
            ChainError::MalformedKey
        );
        let head = ChainHead::genesis();
        assert_eq!(
            signer.sign(&head, "yesterday"),
            Err(ChainError::InvalidTime)
        );
        let bad_head = ChainHead {
            seq: 1,
            hash: "abc".into(),
        };
        assert!(matches!(
            signer.sign(&bad_head, &at(0)),
            Err(ChainError::MalformedHash { .. })
        ));
    }

    #[test]
    fn checkpoints_round_trip_as_strict_json() {
        let signer = CheckpointSigner::from_seed(&[3; 32]);
        let checkpoint = signer.sign(&ChainHead::genesis(), &at(0)).unwrap();
        let text = serde_json::to_string(&checkpoint).unwrap();
        let back: Checkpoint = serde_json::from_str(&text).unwrap();
        assert_eq!(back, checkpoint);
        assert_eq!(signer.verifier().verify(&back), Ok(()));
        let mut value: Value = serde_json::from_str(&text).unwrap();
        value["extra"] = json!(1);
        assert!(serde_json::from_value::<Checkpoint>(value).is_err());
    }
}
