//! Password hashing (argon2id) and the sign-in lockout schedule.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

/// Shortest password accepted (NIST SP 800-63B asks for at least 8; we ask for a passphrase).
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted (bounds the hashing work an attacker can request).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Why a new password is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordRule {
    /// Too short.
    #[error("the password must have at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    /// Too long.
    #[error("the password must have at most {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    /// Same as the username.
    #[error("the password must not be the username")]
    IsUsername,
}

/// Checks a new password against the rules.
pub fn check_new_password(password: &str, username: &str) -> Result<(), PasswordRule> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordRule::TooLong);
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordRule::TooShort);
    }
    if password.eq_ignore_ascii_case(username) {
        return Err(PasswordRule::IsUsername);
    }
    Ok(())
}

/// Hashes a password with argon2id (OWASP parameters, a fresh salt), off the async threads.
pub async fn hash(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|err| anyhow::anyhow!("cannot hash password: {err}"))
    })
    .await?
}

/// Verifies a password against a stored PHC string, off the async threads. With no stored hash
/// (unknown user, no password set) it verifies against a fixed dummy hash and returns `false`,
/// so the answer takes as long as for a real account.
pub async fn verify(stored: Option<String>, password: String) -> bool {
    let result = tokio::task::spawn_blocking(move || {
        let (phc, real) = match &stored {
            Some(phc) => (phc.as_str(), true),
            None => (dummy_hash(), false),
        };
        let Ok(parsed) = PasswordHash::new(phc) else {
            return false;
        };
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        ok && real
    })
    .await;
    result.unwrap_or(false)
}

fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        Argon2::default()
            .hash_password(b"readroom timing equalizer")
            .map(|hash| hash.to_string())
            .unwrap_or_default()
    })
}

/// How long (seconds) the account stays locked after its `previous_lockouts + 1`-th lockout in
/// a row: 1 min, 2 min, 4 min … capped at 1 h.
pub fn lock_seconds(previous_lockouts: i64) -> i64 {
    let exponent = previous_lockouts.clamp(0, 6) as u32;
    (60 * 2i64.pow(exponent)).min(3600)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_wrong_passwords_do_not() {
        let phc = hash("correct horse battery".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify(Some(phc.clone()), "correct horse battery".into()).await);
        assert!(!verify(Some(phc), "Correct horse battery".into()).await);
        assert!(!verify(None, "anything".into()).await);
        assert!(!verify(Some("not a phc string".into()), "x".into()).await);
    }

    #[test]
    fn password_rules() {
        assert_eq!(
            check_new_password("short", "u"),
            Err(PasswordRule::TooShort)
        );
        assert_eq!(
            check_new_password("grader.kim.1234", "GRADER.KIM.1234"),
            Err(PasswordRule::IsUsername)
        );
        assert_eq!(
            check_new_password(&"x".repeat(2000), "u"),
            Err(PasswordRule::TooLong)
        );
        // Twelve Hangul syllables are twelve characters.
        assert!(check_new_password("안저사진판독용비밀번호다", "u").is_ok());
    }

    #[test]
    fn lockout_backs_off_exponentially_to_an_hour() {
        let schedule: Vec<i64> = (0..9).map(lock_seconds).collect();
        assert_eq!(schedule, [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
        assert_eq!(lock_seconds(-3), 60);
    }
}
