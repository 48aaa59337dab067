//! Builds the configured object store.

use std::sync::Arc;

use readroom_store::ObjectStore;
use readroom_store::local::LocalStore;
use readroom_store::s3::{S3Config, S3Store};

use crate::config::Config;

/// Opens the object store the configuration names (`local` or `s3`).
pub async fn open(config: &Config) -> anyhow::Result<Arc<dyn ObjectStore>> {
    match config.store.kind.as_str() {
        "local" => {
            let path = config.local_store_path();
            let store = LocalStore::open(&path)
                .map_err(|err| anyhow::anyhow!("local store {}: {err}", path.display()))?;
            Ok(Arc::new(store))
        }
        "s3" => {
            let s3 = &config.store.s3;
            let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
            let store = S3Store::connect(S3Config {
                endpoint: non_empty(&s3.endpoint),
                region: s3.region.clone(),
                bucket: s3.bucket.clone(),
                access_key_id: non_empty(&s3.access_key_id),
                secret_access_key: non_empty(&s3.secret_access_key),
                force_path_style: s3.force_path_style,
                part_size: s3.part_size_mib.max(5) * 1024 * 1024,
            })
            .await?;
            Ok(Arc::new(store))
        }
        other => anyhow::bail!("store.kind {other:?} is not `local` or `s3`"),
    }
}
