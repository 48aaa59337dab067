//! Time-based one-time passwords (RFC 6238): SHA-1, 6 digits, 30 s steps, ±1 step of skew.
//! Each accepted code's step is recorded by the caller so a code works once.

use totp_rs::{Algorithm, Builder, Secret, Totp};

const DIGITS: usize = 6;
const STEP: u64 = 30;

/// A new random secret (160 bits), base32.
pub fn new_secret() -> String {
    Secret::generate().to_base32()
}

fn totp(secret_b32: &str, account: &str) -> Option<Totp> {
    let secret = Secret::try_from_base32(secret_b32).ok()?;
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS as u8)
        .with_skew(1)
        .with_step_duration(STEP)
        .with_secret(secret)
        .with_account_name(account.replace(':', "/"))
        .with_issuer(Some("readroom"))
        .build()
        .ok()
}

/// The `otpauth://` URL authenticator apps import.
pub fn otpauth_url(secret_b32: &str, account: &str) -> Option<String> {
    totp(secret_b32, account).and_then(|t| t.to_url().ok())
}

/// The time step of a code valid at `now_unix` (within ±1 step), or `None`.
pub fn check(secret_b32: &str, code: &str, now_unix: u64) -> Option<i64> {
    let code = code.trim();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let totp = totp(secret_b32, "check")?;
    let current = now_unix / STEP;
    [current.saturating_sub(1), current, current + 1]
        .into_iter()
        .find(|step| totp.generate(step * STEP).to_string() == code)
        .and_then(|step| i64::try_from(step).ok())
}

/// The code for `unix` (tests and the test harness).
pub fn code_at(secret_b32: &str, unix: u64) -> Option<String> {
    totp(secret_b32, "code").map(|t| t.generate(unix).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_verify_within_one_step() {
        let secret = new_secret();
        let now = 1_800_000_000;
        let code = code_at(&secret, now).unwrap();
        assert_eq!(check(&secret, &code, now), Some((now / 30) as i64));
        assert!(check(&secret, &code, now + 30).is_some());
        assert!(check(&secret, &code, now + 95).is_none());
        assert!(check(&secret, "12345", now).is_none());
        assert!(check(&secret, "abcdef", now).is_none());
        assert!(check("not base32 !", "123456", now).is_none());
        assert!(
            otpauth_url(&secret, "kim")
                .unwrap()
                .starts_with("otpauth://totp/")
        );
    }

    #[test]
    fn rfc6238_test_vector() {
        // RFC 6238 appendix B, SHA-1 secret "12345678901234567890", T = 59 s → 94287082 (8
        // digits); its last 6 digits are the 6-digit code.
        let secret = Secret::from(b"12345678901234567890".to_vec()).to_base32();
        assert_eq!(code_at(&secret, 59).unwrap(), "287082");
    }
}
