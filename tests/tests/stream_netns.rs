//! Streaming from a worker host with no route for multicast (issue 18).
//!
//! The test moves its own thread into a fresh network namespace (`unshare(CLONE_NEWNET)`: `lo`
//! and a veth pair on 10.218.0.1/30 for Chromium, no other route, so joining the mDNS group
//! 224.0.0.251 fails with ENODEV, as in a bare `ip netns` or some container networks), then
//! starts the real server with its in-process worker and headless Chromium from that thread:
//! the runtime's threads and the browser processes they spawn inherit the namespace, which
//! disappears with them. The browser opens a demo case and must get a frame and its lossless
//! settle. Before the worker turned mDNS off, every `POST /api/cases/{id}/stream` here answered
//! 500 `peer connection failed: io error: No such device (os error 19)`.
//!
//! It needs root (`CAP_SYS_ADMIN` for the namespace) and `ip` (iproute2); without either it
//! prints why and passes.

use crate::support;

use std::io::ErrorKind;
use std::net::{Ipv4Addr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::Duration;

use readroom_server::db::{AssignmentRole, Backend, Role};
use readroom_tests::browser;
use serde_json::{Value, json};
use support::TestApp;

/// `CLONE_NEWNET` from `<sched.h>`.
const CLONE_NEWNET: i32 = 0x4000_0000;
/// `ENODEV`: what joining a multicast group gives without a route for it.
const ENODEV: i32 = 19;

unsafe extern "C" {
    fn geteuid() -> u32;
    fn unshare(flags: i32) -> i32;
}

/// Moves the calling thread into a new network namespace with only `lo` up; `Err` says why that
/// is not possible here (the test is then skipped).
fn enter_bare_network_namespace() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { geteuid() } != 0 {
        return Err("not root (a network namespace needs CAP_SYS_ADMIN)".into());
    }
    let ip = Command::new("ip")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !ip.is_ok_and(|status| status.success()) {
        return Err("`ip` (iproute2) is not available".into());
    }
    // SAFETY: unshare only changes the calling thread's namespaces; threads and processes it
    // starts afterwards inherit them, nothing else in the process is affected.
    if unsafe { unshare(CLONE_NEWNET) } != 0 {
        return Err(format!(
            "unshare(CLONE_NEWNET) failed: {}",
            std::io::Error::last_os_error()
        ));
    }
    // `lo`, and a veth pair with a private address: Chromium ignores loopback interfaces, and
    // with no other interface it has no socket to send its ICE checks from. The pair's /30
    // route does not cover 224.0.0.0/4, so there is still no route for multicast.
    for args in [
        &["link", "set", "lo", "up"][..],
        &[
            "link", "add", "rrnet0", "type", "veth", "peer", "name", "rrnet1",
        ],
        &["addr", "add", "10.218.0.1/30", "dev", "rrnet0"],
        &["link", "set", "rrnet0", "up"],
        &["link", "set", "rrnet1", "up"],
    ] {
        let status = Command::new("ip")
            .args(args)
            .status()
            .map_err(|err| format!("ip {}: {err}", args.join(" ")))?;
        if !status.success() {
            return Err(format!("ip {} exited with {status}", args.join(" ")));
        }
    }
    Ok(())
}

#[test]
fn streams_from_a_host_without_a_multicast_route() {
    if let Err(why) = enter_bare_network_namespace() {
        println!("SKIPPED streams_from_a_host_without_a_multicast_route: {why}");
        return;
    }
    // The premise: here, joining the mDNS group fails as it does on such worker hosts.
    let socket = UdpSocket::bind("0.0.0.0:0").expect("a UDP socket in the namespace");
    let joined = socket.join_multicast_v4(&Ipv4Addr::new(224, 0, 0, 251), &Ipv4Addr::UNSPECIFIED);
    let err = joined.expect_err("no route for multicast in a bare namespace");
    assert!(
        err.raw_os_error() == Some(ENODEV) || err.kind() == ErrorKind::NotFound,
        "joining 224.0.0.251 fails with ENODEV: {err}"
    );
    drop(socket);

    browser::check_prerequisites().expect("Chromium and playwright-core (scripts/setup)");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime whose threads live in the namespace");
    runtime.block_on(stream_one_case());
}

async fn stream_one_case() {
    let app = TestApp::start_demo(Backend::Sqlite).await;
    let study = app.demo_study().await;
    let grader = app
        .user("grader.netns", &[(Role::Grader, Some(study.id))])
        .await;
    let case = app
        .db()
        .list_cases(study.id)
        .await
        .expect("demo cases")
        .into_iter()
        .next()
        .expect("a demo case")
        .case;
    app.assign(&case, &grader, AssignmentRole::Grader).await;
    let link = app.link(&grader).await;

    let result: Value = browser::run_script_async(
        "stream-first-frame.mjs",
        json!({ "base_url": app.url, "link_url": link, "case_id": case.id.to_string() }),
        Duration::from_secs(120),
    )
    .await
    .expect("browser run");
    println!("netns stream run: {result}");

    assert_eq!(
        result["stream_status"], 200,
        "the worker answered the offer: {result}"
    );
    assert_eq!(result["outcome"], "settled", "{result}");
    assert!(result["frames_decoded"].as_u64().unwrap() > 0, "{result}");
    assert_eq!(result["badge"], "LOSSLESS", "{result}");
    // The worker's host candidate on loopback, reached by the browser's checks.
    let worker = result["pair"]["worker"].as_str().unwrap_or_default();
    assert!(worker.starts_with("host 127.0.0.1:"), "{result}");
    assert_eq!(result["console_errors"], json!([]), "{result}");
    assert_eq!(result["page_errors"], json!([]), "{result}");
}
