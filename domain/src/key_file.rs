//! Who may read a secret key file: the rule every key loader applies before reading one (the
//! worker identity, the watermark key, the ticket, audit, control and server secrets keys).
//!
//! It is PostgreSQL's rule for its server key: a file owned by the user that reads it must be
//! private to that user (`0600` or less); a file owned by root may also be readable by its group
//! (`0640` or less), because only root can have made it so. That is how Kubernetes mounts a
//! Secret for a non-root container (owner root, group the pod's `fsGroup`, `defaultMode: 0440`),
//! and how a host administrator shares a key with a service group (`root:readroom 0640`).
//! Others may never read, and the group may never write.

/// The mode bits a key file may have, given who owns it.
///
/// `mode` is the file's permission bits (`st_mode & 0o777`), `owner_uid` its owner. Returns the
/// refusal, naming the fix, when the file is readable by more than it should be.
pub fn check_mode(mode: u32, owner_uid: u32) -> Result<(), KeyFileRefusal> {
    let mode = mode & 0o777;
    let forbidden = if owner_uid == 0 { 0o037 } else { 0o077 };
    if mode & forbidden == 0 {
        Ok(())
    } else {
        Err(KeyFileRefusal {
            mode,
            owned_by_root: owner_uid == 0,
        })
    }
}

/// A key file that more users can read (or the group can write) than its owner allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyFileRefusal {
    /// The file's permission bits.
    pub mode: u32,
    /// Whether root owns it (then group read is allowed).
    pub owned_by_root: bool,
}

impl std::fmt::Display for KeyFileRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.owned_by_root {
            write!(
                f,
                "is readable by others or writable by its group (mode {:o}; a root-owned key may be 0640 at most: run chmod 640 on it)",
                self.mode
            )
        } else {
            write!(
                f,
                "is readable by group or others (mode {:o}; run chmod 600 on it, or make it root-owned and group-readable, 0640)",
                self.mode
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_owned_by_its_reader_must_be_private() {
        for mode in [0o600, 0o400, 0o700] {
            assert_eq!(check_mode(mode, 10_001), Ok(()), "{mode:o}");
        }
        for mode in [0o640, 0o440, 0o604, 0o644, 0o660, 0o620] {
            let refused = check_mode(mode, 10_001).unwrap_err();
            assert!(!refused.owned_by_root);
            assert!(
                refused.to_string().contains(&format!("mode {mode:o}")),
                "{refused}"
            );
        }
    }

    /// Kubernetes' Secret volume for a non-root pod: root:fsGroup 0440 (or 0640).
    #[test]
    fn a_root_owned_key_may_be_read_by_its_group_only() {
        for mode in [0o440, 0o640, 0o400, 0o600] {
            assert_eq!(check_mode(mode, 0), Ok(()), "{mode:o}");
        }
        // Others may never read; the group may never write.
        for mode in [0o444, 0o644, 0o604, 0o660, 0o460, 0o650] {
            let refused = check_mode(mode, 0).unwrap_err();
            assert!(refused.owned_by_root, "{mode:o}");
            assert!(refused.to_string().contains("0640 at most"), "{refused}");
        }
    }

    #[test]
    fn only_permission_bits_count() {
        // A regular file's type bits (0o100000) are not permissions.
        assert_eq!(check_mode(0o100_600, 1000), Ok(()));
        assert_eq!(check_mode(0o100_440, 0), Ok(()));
    }
}
