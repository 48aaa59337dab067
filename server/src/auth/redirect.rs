//! Where a sign-in may send the browser afterwards: only local paths (no open redirect).

/// Where to go when `return_to` is missing or refused.
pub const DEFAULT_RETURN: &str = "/";

/// `return_to` if it is a local absolute path, else `/`.
///
/// Refused: anything with a scheme or host (`https://evil`, `//evil`, `/\evil` which browsers
/// read as `//evil`), control characters, backslashes, over-long values, and paths into the API
/// (a sign-in should land on a page).
pub fn safe_return_to(return_to: Option<&str>) -> String {
    let Some(path) = return_to else {
        return DEFAULT_RETURN.to_owned();
    };
    let ok = path.starts_with('/')
        && !path.starts_with("//")
        && path.len() <= 512
        && !path.contains('\\')
        && !path.chars().any(|c| c.is_control() || c.is_whitespace())
        && !path.starts_with("/api/")
        && !path.contains("/../");
    if ok {
        path.to_owned()
    } else {
        DEFAULT_RETURN.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_pass() {
        for good in [
            "/",
            "/cases/0190a2b4",
            "/admin/users?tab=roles",
            "/account#totp",
        ] {
            assert_eq!(safe_return_to(Some(good)), good);
        }
        assert_eq!(safe_return_to(None), "/");
    }

    #[test]
    fn open_redirects_are_refused() {
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "evil.example",
            "javascript:alert(1)",
            "/%0d%0aLocation: x",
            "/ok\r\nSet-Cookie: x=y",
            "/\tevil",
            "/api/admin/users",
            "/a/../../etc",
            "",
        ] {
            assert_eq!(safe_return_to(Some(bad)), "/", "{bad:?}");
        }
    }
}
