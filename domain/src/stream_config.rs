//! Streaming settings (the `[stream]` section of the configuration), read by the server (the
//! ICE servers it hands to browsers) and by every worker (ports, timeouts, limits). Plain data:
//! the worker's port allocator lives in the worker crate.

use std::net::{IpAddr, Ipv4Addr};
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
            connect_timeout_secs: 8,
            max_sessions: 64,
            bitrate: 8_000_000,
            chunk_bytes: 16 * 1024,
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_ranges_and_limits_are_validated() {
        let mut config = StreamConfig {
            udp_ports: (40_000, 39_000),
            ..StreamConfig::default()
        };
        assert!(config.validate().unwrap_err().contains("udp_ports"));
        config.udp_ports = (0, 0);
        assert!(config.validate().is_ok());
        config.udp_ports = (40_000, 0);
        assert!(config.validate().unwrap_err().contains("udp_ports"));
        config.udp_ports = (40_000, 40_010);
        config.max_sessions = 0;
        assert!(config.validate().unwrap_err().contains("max_sessions"));
    }
}
