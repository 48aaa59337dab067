//! The client's address behind a load balancer. `X-Forwarded-For` is believed only when the
//! TCP peer is one of the configured `trusted_proxies`; then the client is the right-most
//! address in the header that is not itself a trusted proxy (entries further left were written
//! by the client and prove nothing). The middleware rewrites the request's `ConnectInfo`, so
//! every reader of the client address (policy, audit, throttles) sees the same answer.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::Response;

use crate::config::TrustedProxy;

fn is_trusted(trusted: &[TrustedProxy], ip: IpAddr) -> bool {
    trusted.iter().any(|proxy| proxy.contains(ip))
}

/// The client address of a request from `peer` carrying `forwarded_for` headers (in order).
pub fn client_ip<'a>(
    peer: IpAddr,
    forwarded_for: impl Iterator<Item = &'a str>,
    trusted: &[TrustedProxy],
) -> IpAddr {
    if !is_trusted(trusted, peer) {
        return peer;
    }
    let hops: Vec<&str> = forwarded_for
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    for hop in hops.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) if is_trusted(trusted, ip) => continue,
            Ok(ip) => return ip,
            // A hop that is not an address (garbage, `unknown`): stop believing the header.
            Err(_) => return peer,
        }
    }
    peer
}

/// Rewrites `ConnectInfo` to the forwarded client address when the peer is a trusted proxy.
pub async fn apply(trusted: Arc<Vec<TrustedProxy>>, mut request: Request, next: Next) -> Response {
    if !trusted.is_empty()
        && let Some(ConnectInfo(peer)) = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .copied()
    {
        let headers = request.headers().get_all("x-forwarded-for");
        let values = headers.iter().filter_map(|v| v.to_str().ok());
        let client = client_ip(peer.ip(), values, &trusted);
        if client != peer.ip() {
            request
                .extensions_mut()
                .insert(ConnectInfo(SocketAddr::new(client, 0)));
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn proxy(text: &str) -> TrustedProxy {
        text.parse().unwrap()
    }

    #[test]
    fn the_header_is_believed_only_from_a_trusted_peer() {
        let trusted = [proxy("10.0.0.2")];
        let header = ["203.0.113.9"];
        assert_eq!(
            client_ip(ip("198.51.100.7"), header.into_iter(), &trusted),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_ip(ip("10.0.0.2"), header.into_iter(), &trusted),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_ip(ip("10.0.0.2"), std::iter::empty(), &trusted),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn a_spoofed_left_entry_is_ignored() {
        let trusted = [proxy("10.0.0.2"), proxy("10.0.0.3")];
        // The client sent "1.2.3.4" itself; the proxies appended what they saw.
        let header = ["1.2.3.4, 203.0.113.9", "10.0.0.3"];
        assert_eq!(
            client_ip(ip("10.0.0.2"), header.into_iter(), &trusted),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn garbage_falls_back_to_the_peer() {
        let trusted = [proxy("10.0.0.2")];
        assert_eq!(
            client_ip(ip("10.0.0.2"), ["unknown"].into_iter(), &trusted),
            ip("10.0.0.2")
        );
        assert_eq!(
            client_ip(ip("10.0.0.2"), ["10.0.0.2"].into_iter(), &trusted),
            ip("10.0.0.2")
        );
    }

    /// An ingress controller's pods come and go within a network: trusting the network
    /// believes any of them, and hops inside it are skipped like single proxies.
    #[test]
    fn a_network_of_proxies_is_trusted_as_a_whole() {
        let trusted = [proxy("10.42.0.0/16"), proxy("fd00::/8")];
        let header = ["203.0.113.9, 10.42.7.1"];
        assert_eq!(
            client_ip(ip("10.42.3.4"), header.into_iter(), &trusted),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_ip(ip("fd00::17"), header.into_iter(), &trusted),
            ip("203.0.113.9")
        );
        // Outside the network: the header is not believed.
        assert_eq!(
            client_ip(ip("10.43.0.1"), header.into_iter(), &trusted),
            ip("10.43.0.1")
        );
        // An IPv4 peer seen on an IPv6 listener (`::ffff:10.42.3.4`) is the same peer.
        assert_eq!(
            client_ip(ip("::ffff:10.42.3.4"), header.into_iter(), &trusted),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn proxies_are_written_as_addresses_or_networks() {
        assert_eq!(proxy("10.0.0.2").to_string(), "10.0.0.2");
        assert_eq!(proxy(" 10.42.9.9/16 ").to_string(), "10.42.0.0/16");
        assert_eq!(proxy("fd00::/8").to_string(), "fd00::/8");
        assert_eq!(
            "10.0.0.0/33".parse::<TrustedProxy>().unwrap_err(),
            "trusted_proxies: \"10.0.0.0/33\" is not an IP address or network (10.0.0.2, 10.42.0.0/16)"
        );
        assert!("lb.example".parse::<TrustedProxy>().is_err());
    }
}
