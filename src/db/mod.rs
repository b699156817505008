//! The database: one connection type over SQLite and PostgreSQL, the pool, migrations.
//!
//! Queries are written once against [`DbConnection`]; the few statements that differ by
//! backend (`RETURNING`, upserts) go through [`on_backend!`] in the modules that need them.

pub mod schema;

use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// A connection to whichever database the URL named.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    /// PostgreSQL, for several nodes sharing one database.
    Pg(diesel::PgConnection),
    /// SQLite, the embedded default.
    Sqlite(diesel::SqliteConnection),
}

/// Runs the same expression on whichever concrete connection `$conn` holds, for the few
/// statements the multi-backend connection cannot express (e.g. `RETURNING`, upserts).
#[macro_export]
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::DbConnection::Pg($c) => $body,
            $crate::db::DbConnection::Sqlite($c) => $body,
        }
    };
}

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `postgres://` or `postgresql://`.
    Postgres,
    /// `sqlite://path`, `sqlite:path` or a bare file path.
    Sqlite,
}

impl Backend {
    /// The backend a database URL selects, or `None` for an unknown scheme.
    pub fn from_url(url: &str) -> Option<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else if url.starts_with("sqlite:") || !url.contains("://") {
            Some(Self::Sqlite)
        } else {
            None
        }
    }
}

/// The file path in a SQLite URL (`sqlite://data/rounds.db` → `data/rounds.db`).
pub fn sqlite_path(url: &str) -> &str {
    url.strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url)
}

/// A pool of database connections.
pub type Pool = r2d2::Pool<ConnectionManager>;
/// A connection checked out of the pool.
pub type PooledConnection = r2d2::PooledConnection<ConnectionManager>;

/// Opens connections for the pool, choosing the backend from the URL scheme (the derived
/// `establish` tries each backend in turn and hides the real error).
#[derive(Debug)]
pub struct ConnectionManager {
    url: String,
    backend: Backend,
}

/// An error opening or checking a connection.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// The URL names no known backend.
    #[error("database URL must start with sqlite:// or postgres://")]
    UnknownScheme,
    /// The database refused or could not be reached.
    #[error(transparent)]
    Connect(#[from] diesel::ConnectionError),
    /// A statement failed.
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
}

impl ConnectionManager {
    /// A manager for the given URL.
    pub fn new(url: &str) -> Result<Self, ConnectionError> {
        let backend = Backend::from_url(url).ok_or(ConnectionError::UnknownScheme)?;
        Ok(Self {
            url: url.to_owned(),
            backend,
        })
    }

    /// Opens one connection, tuned for its backend.
    pub fn open(&self) -> Result<DbConnection, ConnectionError> {
        match self.backend {
            Backend::Postgres => Ok(DbConnection::Pg(diesel::PgConnection::establish(
                &self.url,
            )?)),
            Backend::Sqlite => {
                let mut conn = diesel::SqliteConnection::establish(sqlite_path(&self.url))?;
                // busy_timeout first: WAL first made several connections opening at once
                // fail with "database is locked".
                conn.batch_execute(
                    "PRAGMA busy_timeout = 10000;
                     PRAGMA journal_mode = WAL;
                     PRAGMA foreign_keys = ON;
                     PRAGMA synchronous = NORMAL;",
                )?;
                Ok(DbConnection::Sqlite(conn))
            }
        }
    }
}

impl ManageConnection for ConnectionManager {
    type Connection = DbConnection;
    type Error = ConnectionError;

    fn connect(&self) -> Result<DbConnection, ConnectionError> {
        self.open()
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), ConnectionError> {
        conn.batch_execute("SELECT 1")?;
        Ok(())
    }

    fn has_broken(&self, _conn: &mut DbConnection) -> bool {
        false
    }
}

/// Builds the pool. For a SQLite file, creates its folder first.
pub fn build_pool(url: &str, size: u32) -> Result<Pool, String> {
    let manager = ConnectionManager::new(url).map_err(|e| e.to_string())?;
    if manager.backend == Backend::Sqlite
        && let Some(dir) = std::path::Path::new(sqlite_path(url)).parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create database folder {}: {e}", dir.display()))?;
    }
    // Open one connection first so a bad URL fails with the database's own message.
    manager
        .open()
        .map_err(|e| format!("cannot open the database: {e}"))?;
    r2d2::Pool::builder()
        .max_size(size)
        .min_idle(Some(1))
        .connection_timeout(Duration::from_secs(10))
        .build(manager)
        .map_err(|e| format!("cannot open the database: {e}"))
}

/// Applies pending migrations; returns the names of those applied.
pub fn run_migrations(conn: &mut DbConnection) -> Result<Vec<String>, String> {
    let applied = match conn {
        DbConnection::Pg(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS),
        DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS),
    }
    .map_err(|e| format!("migration failed: {e}"))?;
    Ok(applied.iter().map(ToString::to_string).collect())
}

/// Whether every embedded migration has been applied (for `/readyz`).
pub fn migrations_are_current(conn: &mut DbConnection) -> Result<bool, String> {
    let pending = match conn {
        DbConnection::Pg(c) => c.has_pending_migration(POSTGRES_MIGRATIONS),
        DbConnection::Sqlite(c) => c.has_pending_migration(SQLITE_MIGRATIONS),
    }
    .map_err(|e| e.to_string())?;
    Ok(!pending)
}

/// Held by this process's SQLite write transaction while it runs.
static SQLITE_WRITER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `f` in a write transaction. On SQLite it is `BEGIN IMMEDIATE`, so two writers
/// queue on the busy timeout instead of one failing when it upgrades a read lock. Called
/// inside another transaction, it is a savepoint in that one.
pub fn write_tx<T, E, F>(conn: &mut DbConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    type Manager = <DbConnection as Connection>::TransactionManager;
    // Inside a transaction already (one change made of others), this is a savepoint.
    let nested = Manager::transaction_manager_status_mut(conn)
        .transaction_depth()?
        .is_some();
    // SQLite has one writer at a time; this process's writers queue here, in turn, rather
    // than on the busy timeout, which sleeps up to 100 ms between tries. (Other processes,
    // such as the command line, still meet the busy timeout.)
    let _writer = match conn {
        DbConnection::Sqlite(_) if !nested => Some(
            SQLITE_WRITER
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        ),
        _ => None,
    };
    match conn {
        DbConnection::Sqlite(c) if !nested => {
            AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?
        }
        _ => Manager::begin_transaction(conn)?,
    }
    match f(conn) {
        Ok(value) => {
            Manager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(error) => {
            // The caller's error is the one worth reporting; a failed rollback leaves the
            // connection marked broken and r2d2 discards it.
            if let Err(rollback) = Manager::rollback_transaction(conn) {
                tracing::error!(error = %rollback, "rollback failed");
            }
            Err(error)
        }
    }
}

/// The named instance secret, made with `generate` and stored the first time it is asked
/// for. When two nodes start at once, the first insert wins and both read it back.
pub fn instance_secret(
    conn: &mut DbConnection,
    name: &str,
    generate: impl FnOnce() -> String,
) -> QueryResult<String> {
    use schema::instance_secrets as s;
    let existing: Option<String> = s::table
        .find(name)
        .select(s::value)
        .first(conn)
        .optional()?;
    if let Some(value) = existing {
        return Ok(value);
    }
    // In a savepoint of its own, so a lost race does not abort the caller's transaction
    // on PostgreSQL.
    let inserted = write_tx(conn, |c| {
        diesel::insert_into(s::table)
            .values((
                s::name.eq(name),
                s::value.eq(generate()),
                s::created_at.eq(crate::domain::now()),
            ))
            .execute(c)
    });
    match inserted {
        Err(e) if !is_unique_violation(&e) => return Err(e),
        _ => {}
    }
    s::table.find(name).select(s::value).first(conn)
}

/// Whether an error is a unique-constraint violation (matched by kind: SQLite has no
/// constraint names).
pub fn is_unique_violation(error: &diesel::result::Error) -> bool {
    matches!(
        error,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    fn names(dir: &str) -> BTreeSet<String> {
        std::fs::read_dir(format!("{}/migrations/{dir}", env!("CARGO_MANIFEST_DIR")))
            .expect("migrations folder")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn both_backends_have_the_same_migrations() {
        let sqlite = names("sqlite");
        assert!(!sqlite.is_empty());
        assert_eq!(sqlite, names("postgres"));
    }

    #[test]
    fn backend_is_chosen_by_scheme() {
        use super::Backend;
        assert_eq!(
            Backend::from_url("postgres://u@h/db"),
            Some(Backend::Postgres)
        );
        assert_eq!(
            Backend::from_url("postgresql://h/db"),
            Some(Backend::Postgres)
        );
        assert_eq!(
            Backend::from_url("sqlite://data/r.db"),
            Some(Backend::Sqlite)
        );
        assert_eq!(Backend::from_url("data/r.db"), Some(Backend::Sqlite));
        assert_eq!(Backend::from_url("mysql://h/db"), None);
        assert_eq!(super::sqlite_path("sqlite://data/r.db"), "data/r.db");
    }

    #[test]
    fn a_write_transaction_inside_another_is_a_savepoint() {
        use diesel::connection::SimpleConnection;
        use diesel::prelude::*;
        use diesel::sql_types::BigInt;

        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let mut conn = super::DbConnection::Sqlite(
            diesel::SqliteConnection::establish(":memory:").expect("in-memory database"),
        );
        conn.batch_execute("CREATE TABLE t (n INTEGER)")
            .expect("table");
        super::write_tx(&mut conn, |conn| {
            diesel::sql_query("INSERT INTO t VALUES (1)").execute(conn)?;
            let inner: Result<(), diesel::result::Error> = super::write_tx(conn, |conn| {
                diesel::sql_query("INSERT INTO t VALUES (2)").execute(conn)?;
                Err(diesel::result::Error::RollbackTransaction)
            });
            assert!(inner.is_err());
            super::write_tx(conn, |conn| {
                diesel::sql_query("INSERT INTO t VALUES (3)")
                    .execute(conn)
                    .map(|_| ())
            })
        })
        .expect("outer transaction commits");
        let count: Count = diesel::sql_query("SELECT COUNT(*) AS n FROM t")
            .get_result(&mut conn)
            .expect("count");
        assert_eq!(count.n, 2, "the failed inner part alone was undone");
    }
}
