//! Turns aws-sdk-s3 errors into [`StoreError`]s that say what is wrong.
//!
//! The SDK's own `Display` is often just "service error" or "dispatch failure"; the useful part is
//! in the source chain, the S3 error code, or the raw HTTP status (HEAD responses have no body,
//! so no code).

use std::error::Error;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use crate::StoreError;

/// S3 error codes that mean "your credentials or permissions are wrong".
const ACCESS_DENIED_CODES: &[&str] = &[
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
    "AllAccessDisabled",
    "AccountProblem",
    "InvalidSecurity",
    "NotSignedUp",
];

/// What an operation was doing when it failed, for the error message.
pub(crate) struct Target<'a> {
    /// The S3 operation, e.g. `GetObject`.
    pub operation: &'static str,
    /// The endpoint as shown to users.
    pub endpoint: &'a str,
    /// The bucket.
    pub bucket: &'a str,
    /// The object key, if the operation is about one object.
    pub key: Option<&'a str>,
}

impl Target<'_> {
    fn location(&self) -> String {
        match self.key {
            Some(key) => format!("s3://{}/{key}", self.bucket),
            None => format!("s3://{}", self.bucket),
        }
    }
}

/// The S3 error code and HTTP status of a service error, if the server answered.
pub(crate) fn service_status<E: ProvideErrorMetadata>(
    error: &SdkError<E, HttpResponse>,
) -> Option<(u16, Option<&str>)> {
    match error {
        SdkError::ServiceError(service) => {
            Some((service.raw().status().as_u16(), service.err().code()))
        }
        _ => None,
    }
}

/// Maps an SDK error to a [`StoreError`].
pub(crate) fn classify<E>(error: SdkError<E, HttpResponse>, target: &Target<'_>) -> StoreError
where
    E: ProvideErrorMetadata + Error + 'static,
{
    let operation = target.operation;
    match &error {
        SdkError::DispatchFailure(failure) => {
            let detail = error_chain(&error);
            if failure.is_user() {
                return StoreError::Backend {
                    detail: format!("{operation} request could not be sent: {detail}"),
                };
            }
            let about_credentials =
                failure.is_other() && detail.to_ascii_lowercase().contains("credential");
            if about_credentials {
                return StoreError::AccessDenied {
                    detail: format!("no usable S3 credentials: {detail}"),
                };
            }
            StoreError::Unreachable {
                endpoint: target.endpoint.to_owned(),
                detail,
            }
        }
        SdkError::TimeoutError(_) => StoreError::Unreachable {
            endpoint: target.endpoint.to_owned(),
            detail: format!("{operation} timed out: {}", error_chain(&error)),
        },
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service.err().code();
            let message = service.err().message();
            classify_service_error(status, code, message, target)
        }
        SdkError::ResponseError(_) => StoreError::Backend {
            detail: format!(
                "unreadable response to {operation} on {}: {}",
                target.location(),
                error_chain(&error)
            ),
        },
        _ => StoreError::Backend {
            detail: format!(
                "{operation} on {} failed: {}",
                target.location(),
                error_chain(&error)
            ),
        },
    }
}

fn classify_service_error(
    status: u16,
    code: Option<&str>,
    message: Option<&str>,
    target: &Target<'_>,
) -> StoreError {
    let described = describe_code(status, code, message);
    let is_access_denied =
        matches!(status, 401 | 403) || code.is_some_and(|code| ACCESS_DENIED_CODES.contains(&code));
    if is_access_denied {
        return StoreError::AccessDenied {
            detail: format!("{} on {}: {described}", target.operation, target.location()),
        };
    }
    if code == Some("NoSuchBucket") || (status == 404 && target.key.is_none()) {
        return StoreError::BucketNotFound {
            bucket: target.bucket.to_owned(),
            endpoint: target.endpoint.to_owned(),
        };
    }
    if let Some(key) = target.key {
        let is_missing = status == 404 || matches!(code, Some("NoSuchKey" | "NotFound"));
        if is_missing {
            return StoreError::NotFound {
                key: key.to_owned(),
            };
        }
    }
    StoreError::Backend {
        detail: format!(
            "{} on {} failed: {described}",
            target.operation,
            target.location()
        ),
    }
}

/// `HTTP 500 InternalError: message`, leaving out the parts the server did not send.
fn describe_code(status: u16, code: Option<&str>, message: Option<&str>) -> String {
    let mut described = format!("HTTP {status}");
    if let Some(code) = code {
        described.push(' ');
        described.push_str(code);
    }
    if let Some(message) = message {
        described.push_str(": ");
        described.push_str(message);
    }
    described
}

/// The error and its sources joined by `: `, skipping repeats (the SDK often wraps an error in a
/// layer that displays the same text).
pub(crate) fn error_chain(error: &(dyn Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&(dyn Error + 'static)> = Some(error);
    while let Some(layer) = current {
        let text = layer.to_string();
        let is_repeat = parts.last().is_some_and(|last| last.contains(&text));
        if !text.is_empty() && !is_repeat {
            parts.push(text);
        }
        current = layer.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(key: Option<&'static str>) -> Target<'static> {
        Target {
            operation: "GetObject",
            endpoint: "http://127.0.0.1:1",
            bucket: "b",
            key,
        }
    }

    #[test]
    fn service_errors_map_by_code_and_status() {
        let denied = classify_service_error(
            403,
            Some("SignatureDoesNotMatch"),
            Some("bad signature"),
            &target(Some("k")),
        );
        assert!(
            matches!(&denied, StoreError::AccessDenied { detail } if detail.contains("SignatureDoesNotMatch"))
        );
        let head_denied = classify_service_error(403, None, None, &target(Some("k")));
        assert!(matches!(head_denied, StoreError::AccessDenied { .. }));
        let missing = classify_service_error(404, None, None, &target(Some("k")));
        assert!(matches!(missing, StoreError::NotFound { key } if key == "k"));
        let no_bucket = classify_service_error(404, Some("NoSuchBucket"), None, &target(Some("k")));
        assert!(matches!(no_bucket, StoreError::BucketNotFound { .. }));
        let server =
            classify_service_error(500, Some("InternalError"), Some("boom"), &target(None));
        assert!(
            matches!(&server, StoreError::Backend { detail } if detail.contains("HTTP 500 InternalError: boom"))
        );
    }
}
