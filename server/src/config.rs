//! Configuration: defaults, then a TOML file (`--config`), then `READROOM_*` environment variables.
//!
//! Every setting is documented in `docs/configuration.md`. Nested keys use `__` in the
//! environment: `READROOM_STORE__KIND=s3`, `READROOM_STORE__S3__BUCKET=readroom`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// A trusted proxy: one address or a network, written `10.0.0.2`, `10.42.0.0/16` or `fd00::/8`.
/// An IPv4 peer seen as an IPv4-mapped IPv6 address (a listener on `[::]`) matches as IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedProxy(ipnet::IpNet);

impl TrustedProxy {
    /// Whether `ip` is this proxy (or in this network).
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        self.0.contains(&ip.to_canonical())
    }
}

impl std::str::FromStr for TrustedProxy {
    type Err = String;

    fn from_str(text: &str) -> Result<TrustedProxy, String> {
        let text = text.trim();
        text.parse::<ipnet::IpNet>()
            .map(|net| net.trunc())
            .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
            .map(TrustedProxy)
            .map_err(|_| {
                format!(
                    "trusted_proxies: {text:?} is not an IP address or network (10.0.0.2, 10.42.0.0/16)"
                )
            })
    }
}

impl std::fmt::Display for TrustedProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            net if net.prefix_len() == net.max_prefix_len() => write!(f, "{}", net.addr()),
            net => write!(f, "{net}"),
        }
    }
}

impl Serialize for TrustedProxy {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TrustedProxy {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The whole configuration of a readroom process.
#[derive(Clone, Serialize, Deserialize)]
pub struct Config {
    /// Directory for embedded-mode state: SQLite file, local object store, keys.
    pub data_dir: PathBuf,
    /// Address the HTTP server listens on.
    pub listen: SocketAddr,
    /// Public base URL users reach the server at (printed by `demo`/`serve`); derived from
    /// `listen` when empty.
    pub public_url: String,
    /// Load balancers whose `X-Forwarded-For` is believed for the client address (audit,
    /// throttles): addresses (`10.0.0.2`) or networks (`10.42.0.0/16`, for an ingress
    /// controller whose pods come and go); from any other peer the header is ignored.
    #[serde(default)]
    pub trusted_proxies: Vec<TrustedProxy>,
    /// Database URL: `sqlite://…` (embedded) or `postgres://…` (distributed). Empty means the
    /// SQLite file `readroom.db` in `data_dir`.
    pub database_url: String,
    /// Where ciphertext is stored.
    pub store: StoreConfig,
    /// age recipients (public keys, `age1…`) new studies are encrypted to, unless the study sets
    /// its own. The server never holds identities.
    pub recipients: Vec<String>,
    /// The worker identity file (embedded mode and `readroom worker`). Empty means
    /// `keys/worker.age` in `data_dir`.
    pub worker_identity: PathBuf,
    /// The Ed25519 key (32-byte seed, hex) the server signs streaming tickets with; workers get
    /// its public half. Empty means `keys/ticket.key` in `data_dir` (created on first start).
    pub ticket_key: PathBuf,
    /// Log format: `pretty` or `json`.
    pub log_format: String,
    /// Ingest limits.
    pub ingest: IngestConfig,
    /// Sign-in, sessions and identity providers.
    pub auth: AuthConfig,
    /// Streaming settings, shared by the server (ICE servers for browsers) and every worker.
    #[serde(default)]
    pub stream: readroom_domain::stream_config::StreamConfig,
    /// The worker pool this server places sessions on (distributed mode); see `docs/workers.md`.
    #[serde(default)]
    pub workers: WorkersConfig,
    /// This process as a worker (`readroom worker`).
    #[serde(default)]
    pub worker: WorkerConfig,
    /// The audit log's signed checkpoints.
    #[serde(default)]
    pub audit: AuditConfig,
    /// Bearer token `GET /metrics` requires (at least 16 characters); empty: `/metrics` is not
    /// served (404).
    #[serde(default)]
    pub metrics_token: String,
    /// Most HTTP requests answered at once by this server; past it a request is refused at once
    /// with 503 and `Retry-After: 1` (load shedding; health, metrics and worker reports are
    /// never refused). 0: no limit.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// Most client connections this server holds at once; past it a new connection is answered
    /// 503 with `Retry-After: 1` and closed (`server/src/listen.rs`). 0: the open-file limit
    /// (raised to its hard limit at start) less a reserve of a tenth, at least 512, for the
    /// database, the store and the embedded worker.
    #[serde(default)]
    pub max_connections: usize,
}

/// [`Config::max_in_flight`]'s default: well above what a replica answers at its best (the
/// database pool serves a few dozen requests at once; the rest wait), well below what makes
/// every waiting request time out.
fn default_max_in_flight() -> usize {
    1024
}

/// The pool of worker processes a server uses (see `docs/workers.md`). With no trusted key the
/// server streams through its in-process worker (embedded mode) when it holds a worker identity.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkersConfig {
    /// Public keys (64 hex digits) of the workers this server accepts registrations and events
    /// from; each `readroom worker` prints its own at start (`readroom worker --print-key`).
    pub trusted_keys: Vec<String>,
    /// A worker whose last heartbeat is older than this is out of the pool, in seconds.
    pub stale_after_secs: u64,
    /// Most concurrent stream sessions per user (all workers together).
    pub max_streams_per_user: u32,
    /// How often open streams are checked against the access that admitted them, in ms.
    pub revalidate_ms: u64,
}

impl Default for WorkersConfig {
    fn default() -> Self {
        WorkersConfig {
            trusted_keys: Vec::new(),
            stale_after_secs: 3,
            max_streams_per_user: 3,
            revalidate_ms: 1000,
        }
    }
}

impl WorkersConfig {
    /// Whether a pool of worker processes is configured (distributed mode).
    pub fn is_pool(&self) -> bool {
        !self.trusted_keys.is_empty()
    }
}

/// Settings of a `readroom worker` process.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerConfig {
    /// This worker's id in the pool (default: the host name).
    pub id: String,
    /// Where the control API listens (servers must reach it; nothing else should).
    pub listen: SocketAddr,
    /// The URL servers reach the control API at; empty: `http://<listen>`.
    pub advertise_url: String,
    /// Server base URLs to register with: any replica, or the load balancer.
    pub servers: Vec<String>,
    /// The servers' public ticket key (64 hex digits, `readroom server-key` prints it).
    pub server_key: String,
    /// This worker's signing key (32-byte seed, hex); empty means `keys/worker-control.key`
    /// in `data_dir` (created on first start).
    pub control_key: PathBuf,
    /// Seconds between heartbeats.
    pub heartbeat_secs: u64,
    /// On SIGTERM, how long running sessions may go on before they are ended, in seconds.
    pub drain_secs: u64,
    /// Start even when the process cannot be hardened (core dumps off, not dumpable).
    pub allow_unhardened: bool,
    /// Where `GET /metrics` (Prometheus) listens, e.g. `0.0.0.0:9464`; unset: no metrics
    /// listener. It serves only counters and timings (no ids, no image data).
    pub metrics_listen: Option<SocketAddr>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            id: String::new(),
            listen: SocketAddr::from(([127, 0, 0, 1], 7443)),
            advertise_url: String::new(),
            servers: Vec::new(),
            server_key: String::new(),
            control_key: PathBuf::new(),
            heartbeat_secs: 1,
            drain_secs: 30,
            allow_unhardened: false,
            metrics_listen: None,
        }
    }
}

/// Audit log settings (see `docs/audit.md`).
#[derive(Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditConfig {
    /// The Ed25519 key (32-byte seed, hex) checkpoints are signed with. Empty means
    /// `keys/audit.key` in `data_dir` (created on first start).
    pub key: PathBuf,
    /// The public key (hex) `readroom audit verify` checks checkpoints with; empty means the
    /// public half of `key`. Set it on the machine that verifies so a replaced key is noticed.
    pub public_key: String,
    /// Seconds between checkpoints while events are being added (one is also written at
    /// shutdown). 0 turns periodic checkpoints off.
    pub checkpoint_secs: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            key: PathBuf::new(),
            public_key: String::new(),
            checkpoint_secs: 300,
        }
    }
}

/// Sign-in and session settings (see `docs/identity.md`).
#[derive(Clone, Serialize, Deserialize)]
pub struct AuthConfig {
    /// Allow local accounts (username + password, one-time links).
    pub local_accounts: bool,
    /// A session ends after this many minutes without a request.
    pub session_idle_minutes: u64,
    /// A session ends this many hours after sign-in, active or not.
    pub session_absolute_hours: u64,
    /// One-time sign-in links expire after this many hours.
    pub link_ttl_hours: u64,
    /// Failed sign-ins before an account is locked (then locked for 1 min, doubling, up to 1 h).
    pub lockout_threshold: u32,
    /// Sign-in attempts per minute from one client address (password, link, OIDC callback).
    pub login_attempts_per_minute: u32,
    /// Length of the windows refused sign-ins are counted in (seconds): per window and address
    /// the first ten are recorded one by one, the rest in one `auth.refusals_counted` event.
    pub refusal_window_secs: u64,
    /// OpenID Connect providers, in the order the sign-in page shows them.
    pub oidc: Vec<OidcProviderConfig>,
    /// The server secrets key (32 random bytes as 64 hex digits, mode 0600) that TOTP secrets
    /// and OIDC ID tokens are encrypted with in the database. Empty means
    /// `keys/server-secrets.key` in `data_dir` (created on first start) with SQLite; with
    /// PostgreSQL it must be set, to the same file on every replica.
    #[serde(default)]
    pub secrets_key_file: PathBuf,
}

/// One OpenID Connect identity provider.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct OidcProviderConfig {
    /// Short id used in URLs (`/api/auth/oidc/{id}/callback`): lowercase letters, digits, `-`.
    pub id: String,
    /// Button label on the sign-in page.
    pub name: String,
    /// Issuer URL; discovery reads `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    /// Client id registered at the provider.
    pub client_id: String,
    /// Client secret (prefer `client_secret_file`); empty for a public client.
    pub client_secret: String,
    /// File holding the client secret (first line).
    pub client_secret_file: PathBuf,
    /// Scopes requested besides `openid`.
    pub scopes: Vec<String>,
    /// Claim carrying group or role names (`groups`, `roles`); empty to take no roles from the IdP.
    pub role_claim: String,
    /// Claim value → readroom role: `grader`, `adjudicator`, `coordinator`, `auditor`, `admin`,
    /// optionally scoped to a study as `role:STUDY` (`coordinator:EYE-2026`).
    pub role_map: BTreeMap<String, String>,
    /// Claim used as the readroom username (prefixed with `{id}:`); default `preferred_username`.
    pub username_claim: String,
    /// If not empty, the ID token's `acr` must be one of these.
    pub required_acr: Vec<String>,
    /// If not empty, the ID token's `amr` must contain at least one of these (e.g. `mfa`, `otp`).
    pub required_amr: Vec<String>,
}

/// Object store settings.
#[derive(Clone, Serialize, Deserialize)]
pub struct StoreConfig {
    /// `local` (embedded default) or `s3`.
    pub kind: String,
    /// Root of the local store. Empty means `store/` in `data_dir`.
    pub local_path: PathBuf,
    /// S3 settings, used when `kind = "s3"`.
    pub s3: S3Settings,
}

/// S3 settings; credentials may also come from the standard AWS environment and profiles.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct S3Settings {
    /// Custom endpoint (MinIO, s3s, Ceph…); empty for AWS.
    pub endpoint: String,
    /// Region.
    pub region: String,
    /// Bucket.
    pub bucket: String,
    /// Access key id; empty to use the default credential chain.
    pub access_key_id: String,
    /// Secret access key; empty to use the default credential chain.
    pub secret_access_key: String,
    /// Path-style addressing (needed by most non-AWS servers).
    pub force_path_style: bool,
    /// Multipart part size in MiB (at least 5).
    pub part_size_mib: usize,
    /// A separate bucket for the signed audit checkpoints (same endpoint and credentials), so
    /// that it can have S3 Object Lock in compliance mode (infra/terraform creates one); empty:
    /// `bucket`, under `audit/checkpoints/`.
    #[serde(default)]
    pub checkpoint_bucket: String,
    /// A PEM file of certificate authorities to trust besides the system's, for an `https://`
    /// endpoint whose certificate a private CA signed; empty: the system's roots alone.
    #[serde(default)]
    pub ca_file: String,
}

/// Limits applied by the ingest gate.
#[derive(Clone, Serialize, Deserialize)]
pub struct IngestConfig {
    /// Accept DICOM dates and times (for exporters that shift dates).
    pub allow_shifted_dates: bool,
    /// Largest bundle accepted, in GiB.
    pub max_bundle_gib: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("readroom-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: String::new(),
            database_url: String::new(),
            store: StoreConfig {
                kind: "local".into(),
                local_path: PathBuf::new(),
                s3: S3Settings {
                    region: "us-east-1".into(),
                    force_path_style: true,
                    part_size_mib: 8,
                    ..S3Settings::default()
                },
            },
            recipients: Vec::new(),
            trusted_proxies: Vec::new(),
            worker_identity: PathBuf::new(),
            ticket_key: PathBuf::new(),
            log_format: "pretty".into(),
            ingest: IngestConfig {
                allow_shifted_dates: false,
                max_bundle_gib: 64,
            },
            auth: AuthConfig {
                local_accounts: true,
                session_idle_minutes: 30,
                session_absolute_hours: 12,
                link_ttl_hours: 24,
                lockout_threshold: 5,
                login_attempts_per_minute: 30,
                refusal_window_secs: 60,
                oidc: Vec::new(),
                secrets_key_file: PathBuf::new(),
            },
            stream: readroom_domain::stream_config::StreamConfig::default(),
            workers: WorkersConfig::default(),
            worker: WorkerConfig::default(),
            audit: AuditConfig::default(),
            metrics_token: String::new(),
            max_in_flight: default_max_in_flight(),
            max_connections: 0,
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("data_dir", &self.data_dir)
            .field("listen", &self.listen)
            .field("database_url", &redact_url(&self.database_url))
            .field("store_kind", &self.store.kind)
            .field("recipients", &self.recipients.len())
            .field(
                "oidc",
                &self
                    .auth
                    .oidc
                    .iter()
                    .map(|p| p.id.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// Removes the password from a URL such as `postgres://user:secret@host/db`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_owned(),
    }
}

impl Config {
    /// Loads the configuration: defaults, then `file` if given, then `READROOM_*` variables,
    /// then the command-line overrides.
    pub fn load(file: Option<&Path>, overrides: Overrides) -> anyhow::Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.exists() {
                anyhow::bail!("config file {} does not exist", file.display());
            }
            figment = figment.merge(Toml::file(file));
        }
        figment = figment.merge(Env::prefixed("READROOM_").split("__").ignore(&["config"]));
        let mut config: Config = figment
            .extract()
            .map_err(|err| anyhow::anyhow!("invalid configuration: {err}"))?;
        if let Some(dir) = overrides.data_dir {
            config.data_dir = dir;
        }
        if let Some(listen) = overrides.listen {
            config.listen = listen;
        }
        config
            .stream
            .validate()
            .map_err(|err| anyhow::anyhow!("invalid configuration: {err}"))?;
        for key in &config.workers.trusted_keys {
            readroom_domain::control_auth::parse_public_key(key).map_err(|err| {
                anyhow::anyhow!("invalid configuration: workers.trusted_keys: {err}")
            })?;
        }
        if !config.metrics_token.is_empty() && config.metrics_token.chars().count() < 16 {
            anyhow::bail!("invalid configuration: metrics_token must have at least 16 characters");
        }
        Ok(config)
    }

    /// The database URL, defaulting to the SQLite file in the data directory.
    pub fn database_url(&self) -> String {
        if self.database_url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("readroom.db").display())
        } else {
            self.database_url.clone()
        }
    }

    /// Root of the local object store.
    pub fn local_store_path(&self) -> PathBuf {
        if self.store.local_path.as_os_str().is_empty() {
            self.data_dir.join("store")
        } else {
            self.store.local_path.clone()
        }
    }

    /// The worker identity file.
    pub fn worker_identity_path(&self) -> PathBuf {
        if self.worker_identity.as_os_str().is_empty() {
            self.data_dir.join("keys").join("worker.age")
        } else {
            self.worker_identity.clone()
        }
    }

    /// The ticket signing key file.
    pub fn ticket_key_path(&self) -> PathBuf {
        if self.ticket_key.as_os_str().is_empty() {
            self.data_dir.join("keys").join("ticket.key")
        } else {
            self.ticket_key.clone()
        }
    }

    /// The server secrets key file: `auth.secrets_key_file`, else (SQLite only)
    /// `<data_dir>/keys/server-secrets.key`. `None` for PostgreSQL without a configured file:
    /// a key per replica would make each replica's sealed values unreadable to the others.
    pub fn secrets_key_path(&self) -> Option<PathBuf> {
        if !self.auth.secrets_key_file.as_os_str().is_empty() {
            return Some(self.auth.secrets_key_file.clone());
        }
        if self.database_url().starts_with("sqlite:") {
            return Some(self.data_dir.join("keys").join("server-secrets.key"));
        }
        None
    }

    /// A worker's control signing key file.
    pub fn worker_control_key_path(&self) -> PathBuf {
        if self.worker.control_key.as_os_str().is_empty() {
            self.data_dir.join("keys").join("worker-control.key")
        } else {
            self.worker.control_key.clone()
        }
    }

    /// The audit checkpoint signing key file.
    pub fn audit_key_path(&self) -> PathBuf {
        if self.audit.key.as_os_str().is_empty() {
            self.data_dir.join("keys").join("audit.key")
        } else {
            self.audit.key.clone()
        }
    }

    /// The URL users open.
    pub fn public_url(&self, bound: SocketAddr) -> String {
        if self.public_url.is_empty() {
            format!("http://{bound}")
        } else {
            self.public_url.trim_end_matches('/').to_owned()
        }
    }
}

/// Values given on the command line, which win over file and environment.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--listen`.
    pub listen: Option<SocketAddr>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_database_password() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/readroom"),
            "postgres://app:***@db:5432/readroom"
        );
        assert_eq!(
            redact_url("sqlite:///x/readroom.db"),
            "sqlite:///x/readroom.db"
        );
    }

    #[test]
    fn file_then_env_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("readroom.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\n[store]\nkind = \"s3\"\n",
        )
        .unwrap();
        let config = Config::load(
            Some(&file),
            Overrides {
                data_dir: Some(dir.path().into()),
                listen: None,
            },
        )
        .unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.store.kind, "s3");
        assert_eq!(config.data_dir, dir.path());
        assert!(config.database_url().starts_with("sqlite://"));
    }

    #[test]
    fn trusted_proxies_take_addresses_and_networks_and_name_a_bad_one() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("readroom.toml");
        let load = |proxies: &str| {
            std::fs::write(&file, format!("trusted_proxies = {proxies}\n")).unwrap();
            Config::load(Some(&file), Overrides::default())
        };
        let config = load(r#"["10.0.0.2", "10.42.0.0/16"]"#).unwrap();
        let shown: Vec<String> = config
            .trusted_proxies
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(shown, ["10.0.0.2", "10.42.0.0/16"]);
        assert!(config.trusted_proxies[1].contains("10.42.200.1".parse().unwrap()));
        let err = load(r#"["10.0.0.2", "ingress.local"]"#).unwrap_err();
        assert!(
            format!("{err:#}").contains("\"ingress.local\" is not an IP address or network"),
            "{err:#}"
        );
    }

    #[test]
    fn missing_config_file_is_an_error() {
        let err = Config::load(
            Some(Path::new("/nonexistent/readroom.toml")),
            Overrides::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("does not exist"));
    }
}
