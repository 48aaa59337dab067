//! Server keys: the streaming-ticket key (and, through [`load_or_create_seed`], the audit
//! checkpoint key) are 32 random bytes (an Ed25519 seed) stored as hex in a file
//! of mode 0600, created on first start. Server replicas share the file (a Kubernetes secret);
//! workers receive only its public half. The server secrets key ([`load_secrets_key`], the
//! key of [`super::at_rest`]) is stored the same way and never leaves the servers.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use rand::RngCore;
use readroom_domain::ticket::TicketSigner;

use super::at_rest::SecretsKey;
use crate::config::Config;

/// Loads the key at `path`, creating it (and its directory) if it does not exist.
/// Refuses a key file more users can read than [`readroom_domain::key_file`] allows, like
/// `readroom_worker::keys::load`.
pub fn load_or_create_ticket_key(path: &Path) -> anyhow::Result<TicketSigner> {
    let seed = load_or_create_seed(path, "ticket key")?;
    Ok(TicketSigner::from_seed(&seed))
}

/// The server secrets key ([`Config::secrets_key_path`]): loaded, or created (0600) if the
/// file does not exist yet. Refuses to start with PostgreSQL when `auth.secrets_key_file` is
/// not set.
pub fn load_secrets_key(config: &Config) -> anyhow::Result<SecretsKey> {
    let Some(path) = config.secrets_key_path() else {
        anyhow::bail!(
            "auth.secrets_key_file is not set: with PostgreSQL every server replica must be \
             given the same server secrets key file (64 hex digits, mode 0600, e.g. \
             `openssl rand -hex 32 > server-secrets.key`); see docs/deploy.md"
        );
    };
    let bytes = load_or_create_seed(&path, "server secrets key")?;
    Ok(SecretsKey::from_bytes(&bytes))
}

/// Loads a 32-byte Ed25519 seed stored as hex at `path` (`what` names it in errors), creating
/// it with mode 0600 if it does not exist; refuses a file that more users can read than
/// [`readroom_domain::key_file`] allows.
pub fn load_or_create_seed(path: &Path, what: &str) -> anyhow::Result<[u8; 32]> {
    if !path.exists() {
        create(path, what)?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let metadata =
            std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        if let Err(refusal) = readroom_domain::key_file::check_mode(metadata.mode(), metadata.uid())
        {
            anyhow::bail!("{what} {} {refusal}", path.display());
        }
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {what} {}", path.display()))?;
    hex::decode(text.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .with_context(|| format!("{what} {} is not 64 hex digits (32 bytes)", path.display()))
}

fn create(path: &Path, what: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        crate::private_fs::create_missing_dir(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {what} {}", path.display()))?;
    writeln!(file, "{}", hex::encode(seed))?;
    file.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_reloaded_with_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/ticket.key");
        let first = load_or_create_ticket_key(&path).unwrap();
        let again = load_or_create_ticket_key(&path).unwrap();
        assert_eq!(first.verifier().public_key(), again.verifier().public_key());
    }

    #[test]
    fn the_secrets_key_is_created_with_sqlite_and_required_with_postgres() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            data_dir: dir.path().join("data"),
            ..Config::default()
        };
        let path = dir.path().join("data/keys/server-secrets.key");
        let first = load_secrets_key(&config).unwrap();
        assert!(path.exists());
        let again = load_secrets_key(&config).unwrap();
        assert_eq!(first.fingerprint(), again.fingerprint());

        config.database_url = "postgres://postgres@127.0.0.1/readroom".into();
        let err = load_secrets_key(&config).unwrap_err().to_string();
        assert!(err.contains("auth.secrets_key_file is not set"), "{err}");
        config.auth.secrets_key_file = path;
        let configured = load_secrets_key(&config).unwrap();
        assert_eq!(configured.fingerprint(), first.fingerprint());
    }

    #[cfg(unix)]
    #[test]
    fn world_readable_keys_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ticket.key");
        load_or_create_ticket_key(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_or_create_ticket_key(&path).unwrap_err();
        assert!(err.to_string().contains("(mode 644;"), "{err}");
    }
}
