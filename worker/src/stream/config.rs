//! Streaming settings (the `[stream]` section of the configuration).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A STUN or TURN server handed to both the worker and the browser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IceServer {
    /// `stun:host:port`, `turn:host:port?transport=udp`…
    pub urls: Vec<String>,
    /// TURN username.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// How the worker streams.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamConfig {
    /// Address the media sockets bind to (`127.0.0.1` on one machine; the host's address
    /// behind a load balancer).
    pub udp_ip: IpAddr,
    /// First and last UDP port for media (one port per session); `0`/`0` means any port.
    pub udp_ports: (u16, u16),
    /// Public addresses announced instead of `udp_ip` (1:1 NAT, e.g. a cloud instance's
    /// public IP).
    pub public_ips: Vec<String>,
    /// STUN/TURN servers.
    pub ice_servers: Vec<IceServer>,
    /// Decoded images kept per session, in MiB.
    pub cache_mib: usize,
    /// Idle time after the last change before the lossless frame is sent, in ms.
    pub settle_ms: u64,
    /// A session with no message for this long is ended, in seconds.
    pub idle_timeout_secs: u64,
    /// A session whose peer does not connect within this time is ended, in seconds.
    pub connect_timeout_secs: u64,
    /// Most concurrent sessions on this worker.
    pub max_sessions: usize,
    /// Starting and highest video bitrate, bits per second (loss feedback lowers it).
    pub bitrate: u32,
    /// Size of the lossless frame's chunks on the data channel, bytes.
    pub chunk_bytes: usize,
    /// Where the next search for a free port starts (shared by clones).
    #[serde(skip)]
    next_port: Arc<AtomicU32>,
}

impl Default for StreamConfig {
    fn default() -> StreamConfig {
        StreamConfig {
            udp_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            udp_ports: (0, 0),
            public_ips: Vec::new(),
            ice_servers: Vec::new(),
            cache_mib: 256,
            settle_ms: 150,
            idle_timeout_secs: 30 * 60,
            connect_timeout_secs: 20,
            max_sessions: 64,
            bitrate: 8_000_000,
            chunk_bytes: 16 * 1024,
            next_port: Arc::default(),
        }
    }
}

impl StreamConfig {
    /// Checks the settings make sense.
    pub fn validate(&self) -> Result<(), String> {
        let (first, last) = self.udp_ports;
        if (first == 0) != (last == 0) || first > last {
            return Err(format!(
                "stream.udp_ports must be [first, last] with first <= last, or [0, 0] (got [{first}, {last}])"
            ));
        }
        if !(1024..=1024 * 1024).contains(&self.chunk_bytes) {
            return Err("stream.chunk_bytes must be between 1024 and 1048576".into());
        }
        if self.max_sessions == 0 {
            return Err("stream.max_sessions must be at least 1".into());
        }
        Ok(())
    }

    /// Idle time before the lossless settle.
    pub fn settle(&self) -> Duration {
        Duration::from_millis(self.settle_ms)
    }

    /// The address the next session's media socket binds: a free port of the range, tried in
    /// turn, or an ephemeral port.
    pub fn next_udp_addr(&self) -> SocketAddr {
        let (first, last) = self.udp_ports;
        if first == 0 {
            return SocketAddr::new(self.udp_ip, 0);
        }
        let span = u32::from(last - first) + 1;
        for _ in 0..span {
            let offset = self.next_port.fetch_add(1, Ordering::Relaxed) % span;
            let port = first + offset as u16;
            let addr = SocketAddr::new(self.udp_ip, port);
            if UdpSocket::bind(addr).is_ok() {
                return addr;
            }
        }
        SocketAddr::new(self.udp_ip, first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_ranges_are_validated_and_cycled() {
        let mut config = StreamConfig {
            udp_ports: (40_000, 39_000),
            ..StreamConfig::default()
        };
        assert!(config.validate().unwrap_err().contains("udp_ports"));
        config.udp_ports = (0, 0);
        assert_eq!(config.next_udp_addr().port(), 0);
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let taken = socket.local_addr().unwrap().port();
        config.udp_ports = (taken, taken.saturating_add(1));
        assert!(config.validate().is_ok());
        assert_eq!(
            config.next_udp_addr().port(),
            taken + 1,
            "skips the busy port"
        );
    }
}
