//! What a worker and a server parse from each other and from the browser: the data-channel
//! `control` messages (`ClientMessage::parse`, binary chunk headers), the signed
//! `readroom-worker/1` control requests (the `x-readroom-signature` header through
//! `control_auth::verify`, and the JSON bodies both directions exchange), and streaming tickets.
//!
//! The first byte picks the parser, the rest is its input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use readroom_domain::control_auth::{self, ControlSigner, Direction, MAX_SKEW_SECS};
use readroom_domain::protocol::{ChunkHeader, ClientMessage, MAX_CLIENT_MESSAGE};
use readroom_domain::ticket::{TicketClaims, TicketSigner};
use readroom_domain::workers::{
    EndSessions, EventBatch, Heartbeat, HeartbeatReply, OpenSession, SessionFilter, SessionOpened,
    SessionsEnded, WorkerRefusal,
};

/// The receiver's clock.
const NOW: i64 = 1_800_000_000;

fn signer() -> ControlSigner {
    ControlSigner::from_seed(&[7; 32], Direction::ServerToWorker)
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    match selector % 6 {
        0 => match ClientMessage::parse(input) {
            Ok(message) => {
                // A message that parsed is within the size limit and answers its seq.
                assert!(input.len() <= MAX_CLIENT_MESSAGE);
                let _ = message.seq();
            }
            Err(err) => {
                // Every refusal becomes a message the worker can send back.
                let _ = err.to_message().to_json();
            }
        },
        1 => {
            if let Some(header) = ChunkHeader::decode(input) {
                assert_eq!(ChunkHeader::decode(&header.encode()), Some(header));
            }
        }
        2 => {
            // An arbitrary signature header.
            let text = String::from_utf8_lossy(input);
            let trusted = signer().public_key_hex();
            let _ = control_auth::verify(
                Some(&text),
                Direction::ServerToWorker,
                "POST",
                "/v1/sessions",
                b"{}",
                NOW,
                |key| hex_of(key) == trusted,
            );
            let _ = control_auth::parse_public_key(&text);
            // A genuine signature at an arbitrary time over an arbitrary body: accepted exactly
            // when the time is within the allowed skew.
            if let Some((time, body)) = input.split_first_chunk::<8>() {
                let time = i64::from_le_bytes(*time);
                let header = signer().sign("POST", "/v1/sessions", body, time);
                let verified = control_auth::verify(
                    Some(&header),
                    Direction::ServerToWorker,
                    "POST",
                    "/v1/sessions",
                    body,
                    NOW,
                    |key| hex_of(key) == trusted,
                );
                let in_time = NOW.abs_diff(time) <= MAX_SKEW_SECS.unsigned_abs();
                assert_eq!(verified.is_ok(), in_time, "time {time}: {verified:?}");
            }
        }
        3 => {
            let text = String::from_utf8_lossy(input);
            let verifier = TicketSigner::from_seed(&[9; 32]).verifier();
            let _ = verifier.verify(&text, NOW);
            let _ = serde_json::from_slice::<TicketClaims>(input);
        }
        4 => {
            // Server → worker bodies.
            let _ = serde_json::from_slice::<OpenSession>(input);
            let _ = serde_json::from_slice::<EndSessions>(input);
            let _ = serde_json::from_slice::<SessionFilter>(input);
            let _ = serde_json::from_slice::<HeartbeatReply>(input);
        }
        _ => {
            // Worker → server bodies.
            let _ = serde_json::from_slice::<Heartbeat>(input);
            let _ = serde_json::from_slice::<EventBatch>(input);
            let _ = serde_json::from_slice::<SessionOpened>(input);
            let _ = serde_json::from_slice::<SessionsEnded>(input);
            let _ = serde_json::from_slice::<WorkerRefusal>(input);
        }
    }
});

fn hex_of(key: &[u8; 32]) -> String {
    key.iter().map(|byte| format!("{byte:02x}")).collect()
}
