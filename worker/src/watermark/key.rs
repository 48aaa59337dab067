//! The watermark key: a server secret shared by every worker and by whoever decodes marks.
//!
//! A file of at least 32 bytes (`stream.watermark_key_file`; the generated one is 64 hex digits
//! and a newline), read at worker start. Leading and trailing whitespace is ignored, every
//! other byte counts. Everything the mark is made of (chip signs, where the sync chips and
//! each payload bit sit, the check bits) is derived from it with SHA-256, so without the key
//! the mark can be neither located nor forged.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use sha2::{Digest, Sha256};

/// Shortest key file accepted, in bytes.
pub const MIN_KEY_BYTES: usize = 32;

/// Why a watermark key could not be loaded or created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The file could not be read or written.
    #[error("watermark key {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// More users can read the file than its owner allows ([`readroom_domain::key_file`]).
    #[error("watermark key {path} {refusal}")]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its mode, and whether root owns it.
        refusal: readroom_domain::key_file::KeyFileRefusal,
    },
    /// The file is too short to be a key.
    #[error("watermark key {path} holds {len} bytes; at least {MIN_KEY_BYTES} are needed")]
    TooShort {
        /// The file.
        path: PathBuf,
        /// Its length (whitespace trimmed).
        len: usize,
    },
}

/// A loaded watermark key: the secrets derived from it, ready for embedding and detection.
/// Its `Debug` shows only a fingerprint.
pub struct WatermarkKey {
    master: [u8; 32],
    fingerprint: String,
    pub(super) layout: super::Layout,
}

impl std::fmt::Debug for WatermarkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatermarkKey")
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

impl PartialEq for WatermarkKey {
    fn eq(&self, other: &WatermarkKey) -> bool {
        self.master == other.master
    }
}

impl Eq for WatermarkKey {}

impl WatermarkKey {
    /// A key from its secret bytes (at least [`MIN_KEY_BYTES`]; whitespace around them is
    /// ignored). `None` if too short.
    pub fn from_bytes(secret: &[u8]) -> Option<WatermarkKey> {
        let secret = secret.trim_ascii();
        if secret.len() < MIN_KEY_BYTES {
            return None;
        }
        let master: [u8; 32] = Sha256::new()
            .chain_update(b"readroom watermark key v1\0")
            .chain_update(secret)
            .finalize()
            .into();
        let id = Sha256::new()
            .chain_update(b"readroom watermark key id\0")
            .chain_update(master)
            .finalize();
        let layout = super::Layout::derive(&master);
        Some(WatermarkKey {
            master,
            fingerprint: hex::encode(&id[..4]),
            layout,
        })
    }

    /// A short public name of the key (8 hex digits), safe to log and print: it tells which key
    /// marked a frame without revealing it.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Reads the key file at `path` (refusing one that more users can read than
    /// [`readroom_domain::key_file`] allows).
    pub fn load(path: &Path) -> Result<WatermarkKey, KeyError> {
        let io = |source| KeyError::Io {
            path: path.to_owned(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let metadata = file.metadata().map_err(io)?;
            readroom_domain::key_file::check_mode(metadata.mode(), metadata.uid()).map_err(
                |refusal| KeyError::Permissions {
                    path: path.to_owned(),
                    refusal,
                },
            )?;
        }
        let mut secret = Vec::new();
        file.take(64 * 1024).read_to_end(&mut secret).map_err(io)?;
        let key = WatermarkKey::from_bytes(&secret).ok_or_else(|| KeyError::TooShort {
            path: path.to_owned(),
            len: secret.trim_ascii().len(),
        });
        secret.fill(0);
        key
    }

    /// Reads the key file at `path`, first writing a new random one (mode 0600, 32 random
    /// bytes as 64 hex digits) if there is none: for the embedded default and the demo, where
    /// the server and its worker share the data directory. Returns the key and whether it was
    /// created.
    pub fn load_or_create(path: &Path) -> Result<(WatermarkKey, bool), KeyError> {
        let io = |source| KeyError::Io {
            path: path.to_owned(),
            source,
        };
        let mut created = false;
        if !path.exists() {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(io)?;
            }
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            match options.open(path) {
                Ok(mut file) => {
                    let mut secret = random_bytes().map_err(io)?;
                    let mut text = hex::encode(secret);
                    text.push('\n');
                    file.write_all(text.as_bytes()).map_err(io)?;
                    file.sync_all().map_err(io)?;
                    secret.fill(0);
                    created = true;
                }
                // Another process created it first: use theirs.
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(err) => return Err(io(err)),
            }
        }
        Ok((WatermarkKey::load(path)?, created))
    }

    /// `PRF(label, counter)`: 32 bytes derived from the key.
    pub(super) fn prf(master: &[u8; 32], label: &[u8], counter: u32) -> [u8; 32] {
        Sha256::new()
            .chain_update(master)
            .chain_update(label)
            .chain_update(counter.to_le_bytes())
            .finalize()
            .into()
    }

    /// The keyed check bits of a payload.
    pub(super) fn tag(&self, payload: &[u8]) -> [u8; 32] {
        Sha256::new()
            .chain_update(self.master)
            .chain_update(b"tag\0")
            .chain_update(payload)
            .finalize()
            .into()
    }
}

fn random_bytes() -> std::io::Result<[u8; 32]> {
    let mut secret = [0u8; 32];
    #[cfg(unix)]
    std::fs::File::open("/dev/urandom")?.read_exact(&mut secret)?;
    #[cfg(not(unix))]
    for (chunk, _) in secret.chunks_mut(16).zip(0..) {
        chunk.copy_from_slice(&uuid::Uuid::new_v4().as_bytes()[..chunk.len()]);
    }
    Ok(secret)
}

/// The key a worker marks with, for `stream.watermark_key_file`: loaded once per path and
/// shared by every session (call it at worker start so a missing or unreadable key stops the
/// worker there). An empty path means no key is configured: the process then marks with a
/// random key of its own, logged once, and its marks can be decoded by nobody.
pub fn worker_key(path: &Path) -> Result<Arc<WatermarkKey>, KeyError> {
    static KEYS: OnceLock<Mutex<HashMap<PathBuf, Arc<WatermarkKey>>>> = OnceLock::new();
    let mut keys = KEYS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(key) = keys.get(path) {
        return Ok(Arc::clone(key));
    }
    let key = if path.as_os_str().is_empty() {
        let secret = random_bytes().map_err(|source| KeyError::Io {
            path: PathBuf::from("/dev/urandom"),
            source,
        })?;
        let key = WatermarkKey::from_bytes(&hex::encode(secret).into_bytes())
            .expect("64 hex digits are a key");
        tracing::warn!(
            fingerprint = key.fingerprint(),
            "no stream.watermark_key_file: frames are marked with a throw-away key that nobody can decode"
        );
        key
    } else {
        let key = WatermarkKey::load(path)?;
        tracing::info!(fingerprint = key.fingerprint(), path = %path.display(), "watermark key loaded");
        key
    };
    let key = Arc::new(key);
    keys.insert(path.to_owned(), Arc::clone(&key));
    Ok(key)
}
