//! Builds the configured object store.

use std::sync::Arc;

use readroom_store::ObjectStore;
use readroom_store::local::LocalStore;

use crate::config::Config;

/// Opens the object store the configuration names (`local` or `s3`).
pub async fn open(config: &Config) -> anyhow::Result<Arc<dyn ObjectStore>> {
    open_bucket(config, &config.store.s3.bucket).await
}

/// The store of the signed audit checkpoints alone (the audit commands): see [`checkpoints`].
pub async fn open_checkpoints(config: &Config) -> anyhow::Result<Arc<dyn ObjectStore>> {
    match checkpoint_bucket(config) {
        Some(bucket) => open_bucket(config, bucket).await,
        None => open(config).await,
    }
}

/// `store.s3.checkpoint_bucket`, when the store is S3 and it is set.
fn checkpoint_bucket(config: &Config) -> Option<&str> {
    let bucket = config.store.s3.checkpoint_bucket.as_str();
    (config.store.kind == "s3" && !bucket.is_empty()).then_some(bucket)
}

/// Where the signed audit checkpoints go: `store.s3.checkpoint_bucket` when set (an Object
/// Lock bucket), else the same store as the bundles (`main`).
pub async fn checkpoints(
    config: &Config,
    main: &Arc<dyn ObjectStore>,
) -> anyhow::Result<Arc<dyn ObjectStore>> {
    match checkpoint_bucket(config) {
        Some(bucket) => open_bucket(config, bucket).await,
        None => Ok(Arc::clone(main)),
    }
}

async fn open_bucket(config: &Config, bucket: &str) -> anyhow::Result<Arc<dyn ObjectStore>> {
    match config.store.kind.as_str() {
        "local" => {
            let path = config.local_store_path();
            let store = LocalStore::open(&path)
                .map_err(|err| anyhow::anyhow!("local store {}: {err}", path.display()))?;
            Ok(Arc::new(store))
        }
        #[cfg(feature = "s3")]
        "s3" => {
            use readroom_store::s3::{S3Config, S3Store};
            let s3 = &config.store.s3;
            let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
            let ca_pem = match s3.ca_file.as_str() {
                "" => None,
                path => Some(
                    std::fs::read(path)
                        .map_err(|err| anyhow::anyhow!("store.s3.ca_file {path}: {err}"))?,
                ),
            };
            let store = S3Store::connect(S3Config {
                endpoint: non_empty(&s3.endpoint),
                region: s3.region.clone(),
                bucket: bucket.to_owned(),
                access_key_id: non_empty(&s3.access_key_id),
                secret_access_key: non_empty(&s3.secret_access_key),
                force_path_style: s3.force_path_style,
                part_size: s3.part_size_mib.max(5) * 1024 * 1024,
                ca_pem,
            })
            .await?;
            Ok(Arc::new(store))
        }
        #[cfg(not(feature = "s3"))]
        "s3" => {
            let _ = bucket;
            anyhow::bail!(
                "store.kind is `s3`, but this readroom was built without S3 support (the \
                 `s3` feature of readroom-server, part of `distributed`); build it with \
                 default features, or use store.kind = \"local\""
            )
        }
        other => anyhow::bail!("store.kind {other:?} is not `local` or `s3`"),
    }
}
