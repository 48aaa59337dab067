//! Media ports: the UDP address the next session's socket binds.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};

use readroom_domain::stream_config::StreamConfig;

/// Where the next search for a free port starts (one cursor per process).
static NEXT_PORT: AtomicU32 = AtomicU32::new(0);

/// A free port of `config.udp_ports`, tried in turn from where the last search stopped, or an
/// ephemeral port when no range is configured.
pub fn next_udp_addr(config: &StreamConfig) -> SocketAddr {
    let (first, last) = config.udp_ports;
    if first == 0 {
        return SocketAddr::new(config.udp_ip, 0);
    }
    let span = u32::from(last - first) + 1;
    for _ in 0..span {
        let offset = NEXT_PORT.fetch_add(1, Ordering::Relaxed) % span;
        let port = first + offset as u16;
        let addr = SocketAddr::new(config.udp_ip, port);
        if UdpSocket::bind(addr).is_ok() {
            return addr;
        }
    }
    SocketAddr::new(config.udp_ip, first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_port_of_the_range_is_skipped() {
        let mut config = StreamConfig::default();
        assert_eq!(next_udp_addr(&config).port(), 0);
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let taken = socket.local_addr().unwrap().port();
        config.udp_ports = (taken, taken.saturating_add(1));
        for _ in 0..4 {
            assert_eq!(
                next_udp_addr(&config).port(),
                taken + 1,
                "skips the busy port"
            );
        }
    }
}
