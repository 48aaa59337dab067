//! [`S3Config`]: where the bucket is and how to authenticate.

use std::fmt;

use crate::StoreError;

/// The smallest part S3 accepts in a multipart upload (except the last part).
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;

/// The default multipart part size.
pub const DEFAULT_PART_SIZE: usize = 8 * 1024 * 1024;

/// How to reach an S3 bucket.
///
/// `Debug` prints `<redacted>` instead of the secret key.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Config {
    /// Custom endpoint such as `http://127.0.0.1:9000` (MinIO, s3s); `None` for AWS.
    pub endpoint: Option<String>,
    /// Region name; S3-compatible servers usually accept any, e.g. `us-east-1`.
    pub region: String,
    /// Bucket name.
    pub bucket: String,
    /// Static access key id; with `secret_access_key`, overrides the default credential chain.
    pub access_key_id: Option<String>,
    /// Static secret access key (never printed).
    pub secret_access_key: Option<String>,
    /// Use `endpoint/bucket/key` URLs instead of `bucket.endpoint/key` (needed by most self-hosted servers).
    pub force_path_style: bool,
    /// Multipart part size in bytes: uploads buffer this much before sending a part.
    /// Default [`DEFAULT_PART_SIZE`] (8 MiB); at least [`MIN_PART_SIZE`] (5 MiB).
    pub part_size: usize,
    /// PEM certificates to trust besides the system's roots: for an `https://` endpoint whose
    /// certificate a private certificate authority signed (MinIO or Ceph behind a hospital's own
    /// PKI). Checked by [`S3Config::validate`]: at least one certificate, each usable as a root.
    pub ca_pem: Option<Vec<u8>>,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            endpoint: None,
            region: "us-east-1".to_owned(),
            bucket: String::new(),
            access_key_id: None,
            secret_access_key: None,
            force_path_style: false,
            part_size: DEFAULT_PART_SIZE,
            ca_pem: None,
        }
    }
}

impl fmt::Debug for S3Config {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .field("force_path_style", &self.force_path_style)
            .field("part_size", &self.part_size)
            .field(
                "ca_pem",
                &self
                    .ca_pem
                    .as_ref()
                    .map(|pem| format!("{} bytes", pem.len())),
            )
            .finish()
    }
}

/// Checks that `pem` holds at least one certificate and that each can be a trust anchor (the
/// SDK's TLS client panics on one that cannot, so nothing unchecked reaches it).
fn check_ca_pem(pem: &[u8]) -> Result<(), String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| format!("not PEM: {err}"))?;
    if certificates.is_empty() {
        return Err("no `-----BEGIN CERTIFICATE-----` block".to_owned());
    }
    let mut roots = rustls::RootCertStore::empty();
    for (n, certificate) in certificates.into_iter().enumerate() {
        roots
            .add(certificate)
            .map_err(|err| format!("certificate {} cannot be a root: {err}", n + 1))?;
    }
    Ok(())
}

impl S3Config {
    /// Checks the settings that can be checked without a network round trip.
    pub(crate) fn validate(&self) -> Result<(), StoreError> {
        let config_error = |detail: String| Err(StoreError::Config { detail });
        if self.bucket.is_empty() {
            return config_error("the S3 bucket name is empty".to_owned());
        }
        if let Some(problem) = bucket_name_problem(&self.bucket) {
            return config_error(format!(
                "the S3 bucket name {:?} is not valid: {problem}",
                self.bucket
            ));
        }
        if self.region.is_empty() {
            return config_error(
                "the S3 region is empty (S3-compatible servers usually accept `us-east-1`)"
                    .to_owned(),
            );
        }
        if self.part_size < MIN_PART_SIZE {
            return config_error(format!(
                "the S3 part size is {} bytes; S3 requires at least {MIN_PART_SIZE} (5 MiB)",
                self.part_size
            ));
        }
        match (&self.access_key_id, &self.secret_access_key) {
            (Some(_), None) => {
                return config_error(
                    "an S3 access key id is set without a secret access key".to_owned(),
                );
            }
            (None, Some(_)) => {
                return config_error(
                    "an S3 secret access key is set without an access key id".to_owned(),
                );
            }
            _ => {}
        }
        if let Some(pem) = &self.ca_pem
            && let Err(problem) = check_ca_pem(pem)
        {
            return config_error(format!("the S3 CA certificates: {problem}"));
        }
        if let Some(endpoint) = &self.endpoint {
            let has_scheme = endpoint.starts_with("http://") || endpoint.starts_with("https://");
            if !has_scheme {
                return config_error(format!(
                    "the S3 endpoint {endpoint:?} must start with http:// or https://"
                ));
            }
        }
        Ok(())
    }

    /// The endpoint as shown in messages: the configured URL without any user-info part, or the
    /// AWS regional endpoint.
    pub(crate) fn display_endpoint(&self) -> String {
        match &self.endpoint {
            Some(endpoint) => strip_user_info(endpoint),
            None => format!("https://s3.{}.amazonaws.com", self.region),
        }
    }
}

/// Why `bucket` breaks S3's bucket naming rules, if it does (servers answer such names with a
/// bare `400 InvalidBucketName`, or no body at all for HEAD).
fn bucket_name_problem(bucket: &str) -> Option<&'static str> {
    if !(3..=63).contains(&bucket.len()) {
        return Some("it must be 3 to 63 characters long");
    }
    let allowed = |character: char| {
        character.is_ascii_lowercase()
            || character.is_ascii_digit()
            || matches!(character, '.' | '-')
    };
    if !bucket.chars().all(allowed) {
        return Some("use only lowercase letters, digits, `.` and `-`");
    }
    let edge_ok = |character: Option<char>| {
        character.is_some_and(|character| character.is_ascii_alphanumeric())
    };
    if !edge_ok(bucket.chars().next()) || !edge_ok(bucket.chars().last()) {
        return Some("it must begin and end with a letter or digit");
    }
    None
}

/// Removes a `user:password@` part from a URL so it can be shown.
fn strip_user_info(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    format!("{scheme}://{host}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_the_secret() {
        let config = S3Config {
            bucket: "b".into(),
            access_key_id: Some("AKIDEXAMPLE".into()),
            secret_access_key: Some("wJalrXUtnFEMI-very-secret".into()),
            ..S3Config::default()
        };
        let printed = format!("{config:?}");
        assert!(!printed.contains("very-secret"), "{printed}");
        assert!(printed.contains("<redacted>"), "{printed}");
        assert!(printed.contains("AKIDEXAMPLE"), "{printed}");
    }

    #[test]
    fn validate_rejects_small_parts_and_half_credentials() {
        let base = S3Config {
            bucket: "readroom-bundles".into(),
            ..S3Config::default()
        };
        assert!(base.validate().is_ok());
        for bad_bucket in ["", "b", "Upper", "under_score", "-edge", &"x".repeat(64)] {
            let bad = S3Config {
                bucket: bad_bucket.to_owned(),
                ..base.clone()
            };
            assert!(
                matches!(bad.validate(), Err(StoreError::Config { .. })),
                "{bad_bucket:?}"
            );
        }
        let small = S3Config {
            part_size: MIN_PART_SIZE - 1,
            ..base.clone()
        };
        assert!(
            matches!(small.validate(), Err(StoreError::Config { detail }) if detail.contains("at least"))
        );
        let half = S3Config {
            access_key_id: Some("k".into()),
            ..base.clone()
        };
        assert!(matches!(half.validate(), Err(StoreError::Config { .. })));
        let no_scheme = S3Config {
            endpoint: Some("127.0.0.1:9000".into()),
            ..base
        };
        assert!(matches!(
            no_scheme.validate(),
            Err(StoreError::Config { .. })
        ));
    }

    #[test]
    fn display_endpoint_hides_user_info() {
        let config = S3Config {
            endpoint: Some("http://user:pass@host:9000/x".into()),
            ..S3Config::default()
        };
        assert_eq!(config.display_endpoint(), "http://host:9000/x");
    }
}
