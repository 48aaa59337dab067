//! Files and directories only the server's own user may read: the data directory (`0700`) and
//! the SQLite database with its WAL and shared-memory files (`0600`). They hold password hashes,
//! TOTP secrets, sessions' ID tokens and the audit log.
//!
//! Existing ones with wider permissions (made by an earlier version) are tightened at start.
//! On non-Unix systems these are plain creates.

use std::io;
use std::path::Path;

/// Creates `dir` (and missing parents) readable by the owner only, and tightens an existing
/// `dir` that others could read or enter to `0700`. Call it only for directories readroom owns
/// (the data directory, its `keys/`), never for a shared parent.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let mode = std::fs::metadata(dir)?.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
            tracing::info!(dir = %dir.display(), "data directory permissions tightened to 0700");
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
    }
}

/// Creates `dir` and missing parents with `0700`, leaving an existing directory as it is (for
/// configured locations that may be shared, such as a key file's directory).
pub fn create_missing_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
    }
}

/// Makes the SQLite database at `path` private before SQLite opens it: a new file is created
/// empty with `0600` (SQLite gives its WAL and shared-memory files the database file's mode);
/// an existing database, WAL or shared-memory file that others can read is tightened to `0600`.
pub fn prepare_sqlite_file(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
            Err(err) => return Err(err),
        }
        let mut companions = vec![path.to_path_buf()];
        for suffix in ["-wal", "-shm", "-journal"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            companions.push(name.into());
        }
        for file in companions {
            let Ok(metadata) = std::fs::metadata(&file) else {
                continue;
            };
            if metadata.permissions().mode() & 0o077 != 0 {
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
                tracing::info!(file = %file.display(), "database file permissions tightened to 0600");
            }
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_and_existing_files_become_private() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        create_dir(&data.join("keys")).unwrap();
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join("keys")), 0o700);
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
        create_dir(&data).unwrap();
        assert_eq!(mode(&data), 0o700);

        let db = data.join("readroom.db");
        prepare_sqlite_file(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        let wal = data.join("readroom.db-wal");
        std::fs::write(&wal, b"").unwrap();
        for file in [&db, &wal] {
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        prepare_sqlite_file(&db).unwrap();
        assert_eq!((mode(&db), mode(&wal)), (0o600, 0o600));
    }
}
