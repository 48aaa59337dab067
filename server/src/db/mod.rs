//! Database access for the server: one narrow API, [`Db`], over SQLite (embedded mode) or
//! PostgreSQL (distributed mode).
//!
//! [`Db`] has one method per query the application needs; each takes typed arguments and returns
//! the domain types of [`model`]. Errors are the small [`DbError`], so callers match on meaning
//! (not found, conflict, unavailable) rather than on driver details.
//!
//! # Design decision: an enum of typed pools, with each query written once
//!
//! [`Db`] holds either a `SqlitePool` or a `PgPool`. Every method body is written once inside the
//! `with_pool!` macro, which expands it into one `match` arm per backend, so the same SQL text and
//! the same Rust code are type-checked against both drivers. The alternative, sqlx's `Any` driver,
//! also keeps one copy of each query, but it only carries integers, floats, text and bytes: uuids,
//! timestamps and JSON would have to be stored as text or numbers on both backends and converted by
//! hand in every row type, PostgreSQL would lose its native `uuid`, `timestamptz` and `jsonb`
//! columns, and type mismatches would surface at run time instead of compile time.
//! With typed pools each schema uses its backend's natural types (see the two migration folders)
//! and the domain types derive `sqlx::FromRow` directly:
//!
//! | Rust | PostgreSQL | SQLite (STRICT tables) |
//! |---|---|---|
//! | `Uuid` | `uuid` | 16-byte `BLOB` |
//! | `OffsetDateTime` (UTC, microseconds) | `timestamptz` | RFC 3339 `TEXT` |
//! | `bool` | `boolean` | `INTEGER` 0/1 |
//! | `serde_json::Value` | `jsonb` | `TEXT` (`json_valid`) |
//! | `u64`/`u32` (via `i64`) | `bigint` | `INTEGER` |
//! | enums, [`StudyCode`], [`Recipients`] | `text` + `CHECK` | `TEXT` + `CHECK` |
//!
//! Queries use `$1`-style placeholders, which both PostgreSQL and sqlx's SQLite driver accept, and
//! SQL both understand (`RETURNING`, `COALESCE`, `length`). The cost is that each method is compiled
//! twice; the gain is one query text, native types and compile-time checks on both backends.
//!
//! # Conventions
//! - Explicit column lists and bound parameters everywhere; no `SELECT *`, no string-built SQL.
//! - Multi-statement changes run in one transaction ([`Db::register_ingest`]).
//! - Methods are instrumented with `skip_all`, so arguments never reach spans or logs.
//! - Timestamps are taken in Rust, in UTC, truncated to microseconds (PostgreSQL's precision),
//!   so a value written and read back compares equal on both backends.
//! - Ids are UUIDv7 (time-ordered, which keeps primary-key indexes compact).
//! - Schema changes are new timestamped files in `migrations/{sqlite,postgres}/`; applied files
//!   are never edited. [`Db::migrate`] applies them; it is idempotent.

pub mod audit;
mod cases;
mod error;
pub mod grading;
mod identity;
mod live_views;
pub mod lossless_frames;
pub mod model;
pub mod secrets;
mod signin_counters;
pub mod stored;
pub mod streams;
mod studies;
mod users;
mod viewer_sessions;
pub mod workers;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use sqlx::Connection;
use sqlx::migrate::Migrator;
#[cfg(feature = "postgres")]
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use time::OffsetDateTime;
use uuid::Uuid;

pub use audit::{AuditFilter, AuditRow};
pub use error::{BoxError, DbError};
pub use grading::AdjudicationStatus;
pub use identity::LinkPurpose;
pub use model::{
    AssignedCase, Assignment, AssignmentKind, AssignmentRole, AssignmentStatus, Bundle, Case,
    CaseSummary, Credentials, ExternalIdentity, InvalidRecipients, InvalidStudyCode, NewBundle,
    NewCase, NewSession, NewUser, PendingOidcLogin, Recipients, Role, RoleGrant, Session,
    SessionWithUser, Study, StudyCode, UnknownName, User,
};

static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("../migrations/sqlite");
#[cfg(feature = "postgres")]
static POSTGRES_MIGRATOR: Migrator = sqlx::migrate!("../migrations/postgres");

/// How long a SQLite connection waits for another writer before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a caller waits for a pooled connection before [`DbError::Unavailable`].
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Which database a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// An SQLite file (embedded mode).
    Sqlite,
    /// A PostgreSQL server (distributed mode).
    Postgres,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

#[derive(Clone)]
enum Pool {
    Sqlite(SqlitePool),
    #[cfg(feature = "postgres")]
    Postgres(PgPool),
}

/// A connection pool to the readroom database. Cheap to clone (clones share the pool).
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    /// The connection URL with any password replaced by `***`; the only form of it kept.
    redacted_url: std::sync::Arc<str>,
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.backend())
            .field("url", &self.redacted_url)
            .finish_non_exhaustive()
    }
}

/// Runs `$body` with `$pool` bound to the backend's typed pool. The body is written once and
/// compiled once per backend; both arms must produce the same type.
macro_rules! with_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match &$db.pool {
            $crate::db::Pool::Sqlite($pool) => $body,
            #[cfg(feature = "postgres")]
            $crate::db::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// The current time in UTC, truncated to microseconds (PostgreSQL's precision).
fn now() -> OffsetDateTime {
    to_micros(OffsetDateTime::now_utc())
}

/// `time` in UTC, truncated to microseconds, so it reads back equal from both backends.
fn to_micros(time: OffsetDateTime) -> OffsetDateTime {
    let time = time.to_offset(time::UtcOffset::UTC);
    time.replace_microsecond(time.microsecond())
        .expect("a microsecond taken from a valid time is valid")
}

/// `Ok` if an `UPDATE`/`DELETE` changed a row, [`DbError::NotFound`] if it changed none.
fn found_one(rows_affected: u64) -> Result<(), DbError> {
    if rows_affected == 0 {
        Err(DbError::NotFound)
    } else {
        Ok(())
    }
}

/// A new time-ordered id.
fn new_id() -> Uuid {
    Uuid::now_v7()
}

/// Converts a size for a `bigint` column.
fn to_i64(value: u64, what: &str) -> Result<i64, DbError> {
    i64::try_from(value).map_err(|_| DbError::Other(format!("{what} {value} is too large").into()))
}

/// A pool of connections to the PostgreSQL server at `url`; the error is the cause, for
/// [`DbError::Unavailable`].
#[cfg(feature = "postgres")]
async fn connect_postgres(url: &str) -> Result<Pool, String> {
    let options = PgConnectOptions::from_str(url).map_err(|err| err.to_string())?;
    // One direct attempt first, so an unreachable server is reported at once instead of after
    // the pool's acquire timeout of retries.
    let probe = PgConnection::connect_with(&options)
        .await
        .map_err(|err| err.to_string())?;
    probe.close().await.ok();
    let pool = PgPoolOptions::new()
        .max_connections(10)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await
        .map_err(|err| err.to_string())?;
    Ok(Pool::Postgres(pool))
}

/// Without the `postgres` feature: a refusal that says so.
#[cfg(not(feature = "postgres"))]
async fn connect_postgres(_url: &str) -> Result<Pool, String> {
    Err(
        "this readroom was built without PostgreSQL support (the `postgres` feature of \
         readroom-server, part of `distributed`); build it with default features, or use \
         sqlite://…"
            .to_owned(),
    )
}

impl Db {
    /// Connects to `url`: `sqlite://path/readroom.db` (the file is created if missing, with WAL,
    /// foreign keys and a busy timeout) or `postgres://user:password@host:port/database`.
    ///
    /// Connects eagerly, so an unreachable database is reported here as [`DbError::Unavailable`].
    /// Does not run migrations; call [`Db::migrate`].
    #[tracing::instrument(skip_all)]
    pub async fn connect(url: &str) -> Result<Db, DbError> {
        let redacted_url = error::redact_url(url);
        let unavailable = |detail: String| DbError::Unavailable {
            detail: format!("{redacted_url}: {}", error::scrub(&detail, url)),
        };
        let pool = if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|err| unavailable(err.to_string()))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(SQLITE_BUSY_TIMEOUT);
            let path = options.get_filename();
            let in_memory =
                path.as_os_str().is_empty() || path.to_string_lossy().contains(":memory:");
            if !in_memory
                && let Some(parent) = path.parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent).map_err(|err| {
                    unavailable(format!("cannot create {}: {err}", parent.display()))
                })?;
            }
            if !in_memory {
                crate::private_fs::prepare_sqlite_file(path).map_err(|err| {
                    unavailable(format!("cannot make {} private: {err}", path.display()))
                })?;
            }
            // One direct attempt first: the pool would retry until its acquire timeout.
            let probe = SqliteConnection::connect_with(&options)
                .await
                .map_err(|err| unavailable(err.to_string()))?;
            probe.close().await.ok();
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options)
                .await
                .map_err(|err| unavailable(err.to_string()))?;
            Pool::Sqlite(pool)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            connect_postgres(url).await.map_err(unavailable)?
        } else {
            return Err(unavailable(
                "unsupported database URL; expected sqlite://… or postgres://…".to_owned(),
            ));
        };
        Ok(Db {
            pool,
            redacted_url: redacted_url.into(),
        })
    }

    /// Applies the migrations embedded from `migrations/sqlite` or `migrations/postgres`.
    /// Already-applied migrations are skipped, so running it again is harmless.
    #[tracing::instrument(skip_all)]
    pub async fn migrate(&self) -> Result<(), DbError> {
        match &self.pool {
            Pool::Sqlite(pool) => SQLITE_MIGRATOR.run(pool).await?,
            #[cfg(feature = "postgres")]
            Pool::Postgres(pool) => POSTGRES_MIGRATOR.run(pool).await?,
        }
        Ok(())
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            #[cfg(feature = "postgres")]
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// The connection URL with any password replaced by `***`, for logs and status pages.
    pub fn redacted_url(&self) -> &str {
        &self.redacted_url
    }

    /// Checks that the database answers a trivial query (for `/readyz`).
    #[tracing::instrument(skip_all)]
    pub async fn ping(&self) -> Result<(), DbError> {
        with_pool!(self, pool => {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// Open connections of the pool and how many of them are idle.
    pub fn pool_counts(&self) -> (u32, usize) {
        with_pool!(self, pool => (pool.size(), pool.num_idle()))
    }

    /// Closes every connection; later calls fail with [`DbError::Unavailable`].
    pub async fn close(&self) {
        with_pool!(self, pool => pool.close().await)
    }
}
