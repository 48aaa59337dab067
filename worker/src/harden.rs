//! Core-dump protection for a process that holds decrypted exam pixels.
//!
//! A core dump writes the whole address space to disk (or to a crash collector such as
//! `systemd-coredump` or `apport`), plaintext included, and a dumpable process can be read by
//! another process of the same user through `ptrace` or `/proc/<pid>/mem`. A process holding
//! plaintext calls [`harden_process`] once at start, before it decrypts anything.

/// Why the process could not be hardened.
#[derive(Debug, thiserror::Error)]
pub enum HardenError {
    /// `setrlimit(RLIMIT_CORE, 0)` failed.
    #[error("cannot set the core file size limit to 0: {0}")]
    CoreLimit(std::io::Error),
    /// `prctl(PR_SET_DUMPABLE, 0)` failed.
    #[error("cannot mark the process as not dumpable: {0}")]
    Dumpable(std::io::Error),
}

/// Forbids core dumps of this process and makes it non-dumpable, so its memory (decrypted
/// pixels, age identities) cannot end up in a core file or be read by another process of the
/// same user through `ptrace` or `/proc/<pid>/mem`.
///
/// Call it once at process start, before any plaintext exists (the server calls it before it
/// starts the embedded worker). On Linux it sets both the soft and the hard `RLIMIT_CORE` to 0
/// (a process cannot raise it again, and children inherit it) and calls
/// `prctl(PR_SET_DUMPABLE, 0)`; note that the kernel resets "dumpable" on `execve` of another
/// program, so a child program must call it itself. Elsewhere it does nothing and returns `Ok`.
/// Calling it again is harmless.
pub fn harden_process() -> Result<(), HardenError> {
    #[cfg(target_os = "linux")]
    {
        let no_core = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `setrlimit` reads the `rlimit` we pass by reference and has no other effect
        // on memory.
        if unsafe { libc::setrlimit(libc::RLIMIT_CORE, &no_core) } != 0 {
            return Err(HardenError::CoreLimit(std::io::Error::last_os_error()));
        }
        // SAFETY: `PR_SET_DUMPABLE` takes plain integer arguments and touches no memory of ours.
        if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0 as libc::c_ulong, 0, 0, 0) } != 0 {
            return Err(HardenError::Dumpable(std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// Set in the child process that actually calls [`harden_process`].
    const CHILD: &str = "READROOM_HARDEN_CHILD";

    fn dumpable() -> libc::c_int {
        // SAFETY: `PR_GET_DUMPABLE` only returns a value.
        unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) }
    }

    fn core_limit() -> (libc::rlim_t, libc::rlim_t) {
        let mut limit = libc::rlimit {
            rlim_cur: 1,
            rlim_max: 1,
        };
        // SAFETY: `getrlimit` writes into the `rlimit` we pass.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut limit) }, 0);
        (limit.rlim_cur, limit.rlim_max)
    }

    /// Runs in a child copy of the test binary, so the test process itself stays dumpable.
    #[test]
    fn a_hardened_process_is_not_dumpable_and_has_no_core_limit() {
        if std::env::var_os(CHILD).is_some() {
            harden_process().expect("hardening succeeds");
            assert_eq!(dumpable(), 0, "PR_GET_DUMPABLE after hardening");
            assert_eq!(core_limit(), (0, 0));
            harden_process().expect("a second call is harmless");
            return;
        }
        let name = "harden::tests::a_hardened_process_is_not_dumpable_and_has_no_core_limit";
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args([name, "--exact", "--test-threads=1"])
            .env(CHILD, "1")
            .output()
            .expect("the test binary runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("1 passed"),
            "child failed: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
