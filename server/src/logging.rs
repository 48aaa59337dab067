//! Log output: human-readable or JSON lines on stderr, filtered by `RUST_LOG` (default `info`).
//!
//! Logs carry ids, counts and sizes; never image bytes, file contents or identities beyond the
//! user id.

use tracing_subscriber::EnvFilter;

/// The filter without `RUST_LOG`: `info`, less three webrtc-rs warnings that every stream
/// session logged although nothing is wrong (ICE checks waiting for the browser's first check,
/// the browser's own SCTP INIT, the DTLS client's unused server name); see docs/streaming.md,
/// "webrtc-rs log noise". Those targets still log errors; `RUST_LOG` replaces the whole filter.
const DEFAULT_FILTER: &str =
    "info,rtc_ice::agent=error,rtc_sctp::endpoint=error,rtc_dtls::config=error";

/// Installs the global subscriber once; later calls do nothing.
pub fn init(format: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    // Colours only for a person at a terminal: a file, a pipe or a log collector gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.compact().try_init()
    };
}
