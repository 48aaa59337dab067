//! A grader holds the ICE credentials of their own stream: the offer they send names the
//! addresses the worker checks, and checks they send are answered and their source learned as a
//! peer-reflexive candidate. With source spoofing or a crafted offer, every address so named
//! gets connectivity checks from the worker. These tests count the checks a worker sends to
//! addresses that never answer: few, and to few addresses, so a grader's account cannot turn the
//! worker into a reflector (`vendor/README.md`, "bounded checks").

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use readroom_server::db::Backend;
use serde_json::json;
use sha1::Sha1;
use tokio::net::UdpSocket;
use tokio::time::Instant;

use crate::support::{self, TestApp};
use crate::workers::grader_on_first_case;

/// Addresses an offer names (the worker checks the 12 of highest priority).
const OFFERED: usize = 24;
/// Addresses checks are sent from (the worker learns 8 of them).
const SPOOFED: usize = 12;
/// Checks to one address that never answers: the first and 10 retransmissions, over 2.1 s.
const CHECKS_PER_ADDRESS: usize = 11;

/// STUN's magic cookie (RFC 5389).
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];

/// A STUN Binding request as a browser's ICE agent (controlling) sends it: USERNAME,
/// ICE-CONTROLLING, PRIORITY, MESSAGE-INTEGRITY keyed with the receiver's password, FINGERPRINT.
fn binding_request(username: &str, password: &str, transaction: u8) -> Vec<u8> {
    fn attribute(message: &mut Vec<u8>, kind: u16, value: &[u8]) {
        message.extend_from_slice(&kind.to_be_bytes());
        message.extend_from_slice(&(value.len() as u16).to_be_bytes());
        message.extend_from_slice(value);
        message.resize(message.len().next_multiple_of(4), 0);
    }
    fn set_length(message: &mut [u8], attributes: usize) {
        message[2..4].copy_from_slice(&(attributes as u16).to_be_bytes());
    }
    let mut message = vec![0x00, 0x01, 0, 0];
    message.extend_from_slice(&MAGIC_COOKIE);
    message.extend_from_slice(&[transaction; 12]);
    attribute(&mut message, 0x0006, username.as_bytes());
    attribute(&mut message, 0x802A, &7u64.to_be_bytes());
    attribute(&mut message, 0x0024, &1_853_824_767u32.to_be_bytes());
    // MESSAGE-INTEGRITY covers the message with its length counting the attribute itself.
    let length = message.len() - 20 + 24;
    set_length(&mut message, length);
    let mut mac = Hmac::<Sha1>::new_from_slice(password.as_bytes()).unwrap();
    mac.update(&message);
    attribute(&mut message, 0x0008, &mac.finalize().into_bytes());
    let length = message.len() - 20 + 8;
    set_length(&mut message, length);
    let crc = crc32fast::hash(&message) ^ 0x5354_554E;
    attribute(&mut message, 0x8028, &crc.to_be_bytes());
    message
}

/// Whether `datagram` is a STUN Binding request.
fn is_binding_request(datagram: &[u8]) -> bool {
    datagram.len() >= 20 && datagram[..2] == [0x00, 0x01] && datagram[4..8] == MAGIC_COOKIE
}

/// `a=<name>:` in `sdp`.
fn sdp_attribute<'a>(sdp: &'a str, name: &str) -> &'a str {
    let prefix = format!("a={name}:");
    sdp.lines()
        .find_map(|line| line.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("the answer has no a={name}: {sdp}"))
}

/// The worker's UDP host candidate in its answer.
fn worker_address(sdp: &str) -> SocketAddr {
    sdp.lines()
        .filter_map(|line| line.strip_prefix("a=candidate:"))
        .map(|candidate| candidate.split_ascii_whitespace().collect::<Vec<_>>())
        .find(|fields| fields.len() > 7 && fields[2].eq_ignore_ascii_case("udp"))
        .map(|fields| format!("{}:{}", fields[4], fields[5]).parse().unwrap())
        .unwrap_or_else(|| panic!("the answer has no UDP candidate: {sdp}"))
}

/// Binding requests each socket receives until `deadline`.
async fn count_checks(sockets: Vec<Arc<UdpSocket>>, deadline: Instant) -> Vec<usize> {
    let counters = sockets.into_iter().map(|socket| {
        tokio::spawn(async move {
            let mut checks = 0;
            let mut datagram = [0u8; 1500];
            while let Ok(received) =
                tokio::time::timeout_at(deadline, socket.recv_from(&mut datagram)).await
            {
                let (length, _) = received.expect("receive");
                if is_binding_request(&datagram[..length]) {
                    checks += 1;
                }
            }
            checks
        })
    });
    let mut counts = Vec::new();
    for counter in counters.collect::<Vec<_>>() {
        counts.push(counter.await.unwrap());
    }
    counts
}

async fn bind_loopback(count: usize) -> Vec<Arc<UdpSocket>> {
    let mut sockets = Vec::new();
    for _ in 0..count {
        sockets.push(Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap()));
    }
    sockets
}

/// An offer naming 24 addresses and checks from 12 more: the worker checks the 12 offered
/// addresses of highest priority and 8 of the others, each 11 times at most, and nothing else.
/// (Before the fix: every address named, 280 checks each, 5 ms apart.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graders_offer_and_checks_cannot_make_the_worker_flood_other_addresses() {
    let app = TestApp::start_demo(Backend::Sqlite).await;
    let (_, grader, case) = grader_on_first_case(&app, "grader.reflect").await;
    let mut browser = app.sign_in(&grader).await;

    let offered = bind_loopback(OFFERED).await;
    let spoofed = bind_loopback(SPOOFED).await;
    // Priorities rise with the index: the last 12 are the ones the worker keeps.
    let candidates: String = offered
        .iter()
        .enumerate()
        .map(|(index, socket)| {
            let address = socket.local_addr().unwrap();
            format!(
                "a=candidate:{index} 1 udp {} {} {} typ host\r\n",
                2_000_000 + index,
                address.ip(),
                address.port()
            )
        })
        .collect();
    let reply = browser
        .post(
            &format!("/api/cases/{}/stream", case.id),
            json!({
                "offer": { "type": "offer", "sdp": support::chromium_like_offer(&candidates) },
                "viewport": { "width": 640, "height": 480, "dpr": 1.0 },
            }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let answer = reply.body["answer"]["sdp"].as_str().unwrap().to_owned();
    let worker = worker_address(&answer);
    let deadline = Instant::now() + Duration::from_secs(4);
    let offered_counts = tokio::spawn(count_checks(offered.clone(), deadline));

    // Checks the worker accepts: its ufrag and password, the offer's ufrag.
    let username = format!(
        "{}:{}",
        sdp_attribute(&answer, "ice-ufrag"),
        support::OFFER_ICE.0
    );
    let password = sdp_attribute(&answer, "ice-pwd");
    for (index, socket) in spoofed.iter().enumerate() {
        let request = binding_request(&username, password, index as u8);
        socket.send_to(&request, worker).await.unwrap();
    }
    let spoofed_counts = count_checks(spoofed, deadline).await;
    let offered_counts = offered_counts.await.unwrap();

    let checked: BTreeMap<usize, usize> = offered_counts
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, checks)| *checks > 0)
        .collect();
    assert_eq!(
        checked.keys().copied().collect::<Vec<_>>(),
        (OFFERED - 12..OFFERED).collect::<Vec<_>>(),
        "the worker checks the 12 offered candidates of highest priority (checks per address: \
         {offered_counts:?})"
    );
    let learned = spoofed_counts.iter().filter(|checks| **checks > 0).count();
    assert_eq!(
        learned, 8,
        "the worker learns 8 peer-reflexive candidates (checks per address: {spoofed_counts:?})"
    );
    assert!(
        offered_counts
            .iter()
            .all(|checks| *checks <= CHECKS_PER_ADDRESS),
        "an offered address that never answers gets at most {CHECKS_PER_ADDRESS} checks: \
         {offered_counts:?}"
    );
    // A check received is answered and triggers one check back (RFC 8445 §7.3.1.4), beside
    // the pair's own schedule: one check in, two packets out, as any ICE agent does.
    assert!(
        spoofed_counts
            .iter()
            .all(|checks| *checks <= CHECKS_PER_ADDRESS + 1),
        "a learned address that never answers gets at most {} checks: {spoofed_counts:?}",
        CHECKS_PER_ADDRESS + 1
    );
    assert!(
        checked.values().all(|checks| *checks >= 2),
        "an unanswered check is retransmitted: {offered_counts:?}"
    );
}
