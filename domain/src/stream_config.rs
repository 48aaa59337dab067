//! Streaming settings (the `[stream]` section of the configuration), read by the server (the
//! ICE servers it hands to browsers) and by every worker (ports, timeouts, limits). Plain data:
//! the worker's port allocator lives in the worker crate.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
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

/// A TURN relay whose credentials the server mints per user with the REST API shared-secret
/// scheme (draft-uberti-behave-turn-rest; coturn's `use-auth-secret` + `static-auth-secret`):
/// username `<expiry unix time>:<user id>`, credential base64(HMAC-SHA1(secret, username)).
/// The relay checks both itself, so a credential stops working at its expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TurnConfig {
    /// `turn:host:3478?transport=udp`, `turns:host:443?transport=tcp`…; empty: no TURN relay.
    pub urls: Vec<String>,
    /// File holding the shared secret (its first line), the relay's `static-auth-secret`.
    /// Read by the server only (workers need not have it); never logged.
    pub shared_secret_file: PathBuf,
    /// How long minted credentials are valid, in seconds (60–86400; default 600).
    pub ttl_secs: u64,
}

impl Default for TurnConfig {
    fn default() -> TurnConfig {
        TurnConfig {
            urls: Vec::new(),
            shared_secret_file: PathBuf::new(),
            ttl_secs: DEFAULT_TURN_TTL_SECS,
        }
    }
}

impl TurnConfig {
    /// Whether a relay is configured.
    pub fn enabled(&self) -> bool {
        !self.urls.is_empty()
    }

    /// The credentials' lifetime.
    pub fn ttl(&self) -> Duration {
        Duration::from_secs(self.ttl_secs)
    }

    fn validate(&self) -> Result<(), String> {
        if !self.enabled() {
            return Ok(());
        }
        for url in &self.urls {
            let scheme = url.split(':').next().unwrap_or_default();
            if (scheme != "turn" && scheme != "turns") || url.len() <= scheme.len() + 1 {
                return Err(format!(
                    "stream.turn.urls must be turn: or turns: URLs (got {url:?})"
                ));
            }
        }
        if self.shared_secret_file.as_os_str().is_empty() {
            return Err("stream.turn.shared_secret_file is required with stream.turn.urls".into());
        }
        if !(60..=86_400).contains(&self.ttl_secs) {
            return Err(format!(
                "stream.turn.ttl_secs must be between 60 and 86400 (got {})",
                self.ttl_secs
            ));
        }
        Ok(())
    }
}

/// Default lifetime of minted TURN credentials, in seconds.
pub const DEFAULT_TURN_TTL_SECS: u64 = 600;

/// Which ICE candidates the browser may use (`RTCConfiguration.iceTransportPolicy`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IceTransportPolicy {
    /// Any candidate: direct paths first, the relay when nothing else works.
    #[default]
    All,
    /// Only relayed candidates: every byte goes through the TURN relay (a network that allows
    /// nothing but outbound TCP 443, or a site that wants media through one audited relay).
    Relay,
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
    /// STUN/TURN servers with static credentials, for the worker and the browser.
    pub ice_servers: Vec<IceServer>,
    /// A TURN relay with short-lived credentials minted per user (browser only).
    pub turn: TurnConfig,
    /// The browser's `iceTransportPolicy`: `all` (default) or `relay`.
    pub ice_transport_policy: IceTransportPolicy,
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
    /// How many full-resolution pixels lossless frames may show (a grading aid, not an export
    /// path).
    pub lossless_budget: LosslessBudgetConfig,
    /// File holding the invisible watermark's key (at least 32 bytes; the server secret every
    /// worker and `readroom watermark decode` share; docs/watermark.md). Read once at worker
    /// start. Empty: the server fills in `<data_dir>/keys/watermark.key` (created 0600 by the
    /// embedded default and the demo); a worker given none marks with a throw-away key.
    pub watermark_key_file: PathBuf,
}

/// The lossless budget of one viewer session, in megapixels of source image shown at full
/// resolution (the worker's `stream::budget`; docs/streaming.md explains the numbers).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LosslessBudgetConfig {
    /// Burst: lossless frames worth this many megapixels may go out back to back.
    pub burst_mpx: f64,
    /// Sustained rate, megapixels per second, at which the burst refills.
    pub mpx_per_s: f64,
    /// Most megapixels of one case shown losslessly in one viewer session.
    pub case_mpx: f64,
}

impl Default for LosslessBudgetConfig {
    fn default() -> LosslessBudgetConfig {
        LosslessBudgetConfig {
            burst_mpx: 6.0,
            mpx_per_s: 0.25,
            case_mpx: 48.0,
        }
    }
}

impl Default for StreamConfig {
    fn default() -> StreamConfig {
        StreamConfig {
            udp_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            udp_ports: (0, 0),
            public_ips: Vec::new(),
            ice_servers: Vec::new(),
            turn: TurnConfig::default(),
            ice_transport_policy: IceTransportPolicy::All,
            cache_mib: 256,
            settle_ms: 150,
            idle_timeout_secs: 30 * 60,
            connect_timeout_secs: 8,
            max_sessions: 64,
            bitrate: 8_000_000,
            chunk_bytes: 16 * 1024,
            lossless_budget: LosslessBudgetConfig::default(),
            watermark_key_file: PathBuf::new(),
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
        self.turn.validate()?;
        let budget = &self.lossless_budget;
        for (name, value) in [
            ("burst_mpx", budget.burst_mpx),
            ("mpx_per_s", budget.mpx_per_s),
            ("case_mpx", budget.case_mpx),
        ] {
            if !value.is_finite() || value < 0.0 {
                return Err(format!(
                    "stream.lossless_budget.{name} must be a number of megapixels >= 0 (got {value})"
                ));
            }
        }
        if self.ice_transport_policy == IceTransportPolicy::Relay
            && !self.turn.enabled()
            && !self
                .ice_servers
                .iter()
                .flat_map(|server| &server.urls)
                .any(|url| url.starts_with("turn:") || url.starts_with("turns:"))
        {
            return Err(
                "stream.ice_transport_policy = \"relay\" needs a TURN server (stream.turn or a turn: URL in stream.ice_servers)"
                    .into(),
            );
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

    #[test]
    fn turn_settings_are_validated() {
        let mut config = StreamConfig {
            ice_transport_policy: IceTransportPolicy::Relay,
            ..StreamConfig::default()
        };
        assert!(
            config
                .validate()
                .unwrap_err()
                .contains("needs a TURN server")
        );
        config.turn.urls = vec!["turns:relay.example:443?transport=tcp".into()];
        assert!(
            config
                .validate()
                .unwrap_err()
                .contains("shared_secret_file")
        );
        config.turn.shared_secret_file = "/run/secrets/turn".into();
        assert!(config.validate().is_ok());
        assert_eq!(
            config.turn.ttl(),
            Duration::from_secs(DEFAULT_TURN_TTL_SECS)
        );
        config.turn.ttl_secs = 30;
        assert!(config.validate().unwrap_err().contains("ttl_secs"));
        config.turn.ttl_secs = 300;
        config.turn.urls.push("stun:relay.example:3478".into());
        assert!(config.validate().unwrap_err().contains("turn: or turns:"));
        config.turn.urls.pop();
        config.ice_transport_policy = IceTransportPolicy::All;
        assert!(config.validate().is_ok());
        let parsed: StreamConfig = serde_json::from_value(serde_json::json!({
            "ice_transport_policy": "relay",
            "turn": { "urls": ["turn:127.0.0.1:3478"], "shared_secret_file": "/s", "ttl_secs": 120 }
        }))
        .unwrap();
        assert_eq!(parsed.ice_transport_policy, IceTransportPolicy::Relay);
        assert_eq!(parsed.turn.ttl(), Duration::from_secs(120));
    }
}
