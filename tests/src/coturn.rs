//! A real TURN relay for tests: Debian's coturn (`turnserver`) on loopback, with the TURN REST
//! API shared-secret scheme (`use-auth-secret` + `static-auth-secret`) and a random secret per
//! relay, the way a deployment runs it for graders behind firewalls.
//!
//! [`Coturn::start`] writes a temporary configuration (no system files are read or written:
//! `-c` points at it, and the user database, pid file and log go to the temporary directory),
//! listens for TURN over UDP and TCP on one free loopback port, relays from `127.0.0.1` on a
//! 64-port window above the kernel's ephemeral range (61000–65535, so no test's client socket
//! holds them), and waits until the TCP listener accepts connections.
//!
//! The flags that matter on loopback:
//! - `allow-loopback-peers`: coturn refuses to relay to 127.0.0.0/8 and ::1 by default, and the
//!   tests' workers listen there. Never in production (there `denied-peer-ip` should keep the
//!   relay away from everything but the workers' media addresses).
//! - `no-cli`: coturn refuses `allow-loopback-peers` while its telnet CLI is on without a
//!   password; the tests need no CLI.
//! - `listening-ip` / `relay-ip` `127.0.0.1`: nothing listens beyond loopback, and relayed
//!   packets come from the address the worker can answer.
//! - `no-tls` / `no-dtls` unless TLS is asked for (no certificate needed).
//!
//! Dropping the relay kills the process and deletes the directory.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::lines::{Tail, each_line};

/// Debian's coturn binary.
pub const TURNSERVER: &str = "/usr/bin/turnserver";

/// The realm the relay announces.
pub const REALM: &str = "readroom.test";

/// How long to wait for the listener.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(15);

/// Output lines kept (coturn logs each allocation and refusal).
const KEPT_LINES: usize = 2000;

/// Relay ports per server.
const RELAY_PORTS: u16 = 64;

/// Options of a relay.
#[derive(Debug, Clone, Default)]
pub struct CoturnOptions {
    /// Also listen for TURN over TLS (`turns:`) with a fresh self-signed certificate for
    /// `127.0.0.1` (made with `openssl`).
    pub tls: bool,
}

/// A running coturn; killed on drop.
pub struct Coturn {
    /// The port of the UDP and TCP listeners on 127.0.0.1.
    pub port: u16,
    /// The port of the TLS listener, when asked for.
    pub tls_port: Option<u16>,
    /// The first and last port relayed from.
    pub relay_ports: (u16, u16),
    /// The shared secret (`static-auth-secret`).
    pub secret: String,
    /// The self-signed certificate (PEM) of the TLS listener, when asked for.
    pub certificate: Option<PathBuf>,
    secret_file: PathBuf,
    child: Child,
    output: Tail,
    dir: tempfile::TempDir,
}

impl Coturn {
    /// Starts a relay for UDP and TCP.
    pub fn start() -> anyhow::Result<Coturn> {
        Coturn::start_with(CoturnOptions::default())
    }

    /// Starts a relay with `options`.
    pub fn start_with(options: CoturnOptions) -> anyhow::Result<Coturn> {
        if !Path::new(TURNSERVER).is_file() {
            bail!(
                "{TURNSERVER} is missing: the TURN tests need Debian's coturn; run scripts/setup"
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("readroom-coturn-")
            .tempdir()
            .context("creating the coturn directory")?;
        let secret = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let secret_file = dir.path().join("turn-secret");
        std::fs::write(&secret_file, format!("{secret}\n")).context("writing the secret")?;
        let port = free_udp_and_tcp_port()?;
        let tls_port = if options.tls {
            Some(free_udp_and_tcp_port()?)
        } else {
            None
        };
        let first = 61_000 + (rand_u16() % ((65_535 - 61_000) / RELAY_PORTS)) * RELAY_PORTS;
        let relay_ports = (first, first + RELAY_PORTS - 1);

        let mut conf = format!(
            "# readroom test relay (tests/src/coturn.rs)\n\
             listening-ip=127.0.0.1\n\
             relay-ip=127.0.0.1\n\
             listening-port={port}\n\
             min-port={}\n\
             max-port={}\n\
             use-auth-secret\n\
             static-auth-secret={secret}\n\
             realm={REALM}\n\
             fingerprint\n\
             no-cli\n\
             allow-loopback-peers\n\
             no-multicast-peers\n\
             no-software-attribute\n\
             log-file=stdout\n\
             simple-log\n\
             pidfile={}\n\
             userdb={}\n",
            relay_ports.0,
            relay_ports.1,
            dir.path().join("turnserver.pid").display(),
            dir.path().join("turndb").display(),
        );
        let mut certificate = None;
        match tls_port {
            Some(tls_port) => {
                let cert = dir.path().join("cert.pem");
                let key = dir.path().join("key.pem");
                self_signed(&cert, &key)?;
                conf.push_str(&format!(
                    "tls-listening-port={tls_port}\ncert={}\npkey={}\nno-dtls\nno-tlsv1\nno-tlsv1_1\n",
                    cert.display(),
                    key.display()
                ));
                certificate = Some(cert);
            }
            None => conf.push_str("no-tls\nno-dtls\n"),
        }
        let conf_path = dir.path().join("turnserver.conf");
        std::fs::write(&conf_path, conf).context("writing turnserver.conf")?;

        let mut child = Command::new(TURNSERVER)
            .arg("-c")
            .arg(&conf_path)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {TURNSERVER}"))?;
        let output = Tail::new(KEPT_LINES);
        if let Some(stdout) = child.stdout.take() {
            let output = output.clone();
            each_line(stdout, move |line| output.push(line));
        }
        if let Some(stderr) = child.stderr.take() {
            let output = output.clone();
            each_line(stderr, move |line| output.push(line));
        }
        let mut relay = Coturn {
            port,
            tls_port,
            relay_ports,
            secret,
            certificate,
            secret_file,
            child,
            output,
            dir,
        };
        relay.wait_until_listening()?;
        Ok(relay)
    }

    /// The file holding the shared secret (readroom's `stream.turn.shared_secret_file`).
    pub fn secret_file(&self) -> &Path {
        &self.secret_file
    }

    /// The relay's directory (configuration, certificate).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `turn:127.0.0.1:PORT?transport=udp`.
    pub fn udp_url(&self) -> String {
        format!("turn:127.0.0.1:{}?transport=udp", self.port)
    }

    /// `turn:127.0.0.1:PORT?transport=tcp`: the browser reaches the relay over TCP only.
    pub fn tcp_url(&self) -> String {
        format!("turn:127.0.0.1:{}?transport=tcp", self.port)
    }

    /// `turns:127.0.0.1:PORT?transport=tcp`, when TLS was asked for.
    pub fn tls_url(&self) -> Option<String> {
        self.tls_port
            .map(|port| format!("turns:127.0.0.1:{port}?transport=tcp"))
    }

    /// The relay's output so far (its last lines), for assertions and failing tests.
    pub fn recent_output(&self) -> String {
        self.output.joined()
    }

    fn wait_until_listening(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        loop {
            if let Some(status) = self.child.try_wait().context("checking on turnserver")? {
                bail!(
                    "turnserver exited with {status} before listening; its output:\n{}",
                    self.recent_output()
                );
            }
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "turnserver did not listen on {address} within {STARTUP_TIMEOUT:?}; its output:\n{}",
                    self.recent_output()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port free for both TCP and UDP, below the ephemeral range (as the test servers'
/// ports are), so no client socket of a concurrent test takes it before coturn binds it.
fn free_udp_and_tcp_port() -> anyhow::Result<u16> {
    let seed = rand_u16();
    for i in 0..2000u32 {
        let port = 20_000 + ((u32::from(seed) + i * 7919) % 12_000) as u16;
        let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, port));
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, port));
        if tcp.is_ok() && udp.is_ok() {
            return Ok(port);
        }
    }
    bail!("no loopback port free for both TCP and UDP between 20000 and 32000")
}

fn rand_u16() -> u16 {
    let bytes = uuid::Uuid::new_v4();
    let b = bytes.as_bytes();
    u16::from_le_bytes([b[0], b[1]])
}

/// A self-signed certificate for `127.0.0.1` (and `localhost`), valid for a day.
fn self_signed(cert: &Path, key: &Path) -> anyhow::Result<()> {
    let output = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ])
        .arg("-keyout")
        .arg(key)
        .arg("-out")
        .arg(cert)
        .output()
        .context("running openssl to make the relay's certificate")?;
    if !output.status.success() {
        bail!(
            "openssl req failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}
