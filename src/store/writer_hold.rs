//! One writer per database, enforced. The counters live in the daemon's memory and the
//! commit log assumes one folder, so two daemons on one database would each admit up to
//! every cap. At start the daemon takes an exclusive hold on its database for its whole
//! life, before it migrates or writes anything; a second daemon is refused at once with
//! the holder's name.
//!
//! - PostgreSQL: a session advisory lock on a connection of its own, named (through
//!   `application_name`) after the host and process that hold it. The lock dies with the
//!   connection; a watcher pings it, and while it is lost the daemon stops admitting
//!   (`StoreHealth::hold_lost`) until it has the lock again.
//! - SQLite: an exclusive `flock` on `<database file>.lock`, whose text names the holder.
//!   The kernel drops it when the process dies, however it dies.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};
use tokio::sync::oneshot;

use crate::store::StoreHealth;

/// The advisory lock's key: "STRY". Advisory locks are per database, so one key serves
/// every database on a server.
const ADVISORY_KEY: i64 = 0x5354_5259;

#[derive(Debug, thiserror::Error)]
pub enum HoldError {
    #[error(
        "another staryer daemon already writes to this database ({0}); one daemon per \
         database: stop it first, or give this one another database"
    )]
    Taken(String),
    #[error("cannot take the writer hold on the database: {0}")]
    Unavailable(String),
}

/// Held for the daemon's life. `release` lets go and waits until the database knows it
/// (the next daemon may start at once); dropping it lets go too, without waiting.
pub struct WriterHold {
    kind: HoldKind,
}

enum HoldKind {
    /// The open lock file: closing it unlocks.
    Sqlite { _locked: File },
    /// The watcher owns the lock's connection; a message on `release` makes it unlock and
    /// close the connection, then end.
    Postgres {
        release: Option<oneshot::Sender<()>>,
        watcher: tokio::task::JoinHandle<()>,
    },
}

impl Drop for HoldKind {
    fn drop(&mut self) {
        if let HoldKind::Postgres { watcher, .. } = self {
            // Ending the watcher drops the connection, which ends the session and its lock.
            watcher.abort();
        }
    }
}

impl WriterHold {
    /// Takes the hold on the database at `url`, or says who has it. On PostgreSQL the
    /// returned hold watches its connection every `interval` and reports a lost lock to
    /// `health`.
    pub async fn acquire(
        url: &str,
        health: StoreHealth,
        interval: Duration,
    ) -> Result<WriterHold, HoldError> {
        let kind = if url.starts_with("sqlite:") {
            HoldKind::Sqlite {
                _locked: lock_sqlite(url)?,
            }
        } else {
            let options = PgConnectOptions::from_str(url)
                .map_err(|e| HoldError::Unavailable(e.to_string()))?
                .application_name(&holder_name());
            let connection = lock_postgres_patiently(&options).await?;
            let (release, released) = oneshot::channel();
            HoldKind::Postgres {
                release: Some(release),
                watcher: tokio::spawn(watch_postgres(
                    connection, options, health, interval, released,
                )),
            }
        };
        Ok(WriterHold { kind })
    }

    /// Lets go of the database, and returns once the database has been told.
    pub async fn release(mut self) {
        if let HoldKind::Postgres { release, watcher } = &mut self.kind {
            if let Some(release) = release.take() {
                let _ = release.send(());
                let _ = watcher.await;
            }
        }
    }
}

/// `staryer on <host>, pid <pid>`: what a refused daemon reads about the holder.
fn holder_name() -> String {
    let host = hostname();
    // PostgreSQL keeps 63 bytes of an application name.
    let mut name = format!("staryer pid {} on {host}", std::process::id());
    name.truncate(63);
    name
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::env::var("HOSTNAME"))
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown host".into())
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

// --- SQLite ------------------------------------------------------------------------------

/// The lock file beside the database file.
fn sqlite_lock_path(url: &str) -> Result<PathBuf, HoldError> {
    let options =
        SqliteConnectOptions::from_str(url).map_err(|e| HoldError::Unavailable(e.to_string()))?;
    let mut path = options.get_filename().as_os_str().to_owned();
    path.push(".lock");
    Ok(PathBuf::from(path))
}

fn lock_sqlite(url: &str) -> Result<File, HoldError> {
    let path = sqlite_lock_path(url)?;
    let unavailable =
        |e: std::io::Error| HoldError::Unavailable(format!("{}: {e}", path.display()));
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(unavailable)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(HoldError::Taken(format!(
                "{}, lock file {}",
                if holder.is_empty() {
                    "holder unknown"
                } else {
                    holder
                },
                path.display()
            )));
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(unavailable(e)),
    }
    file.set_len(0).map_err(unavailable)?;
    file.rewind().map_err(unavailable)?;
    write!(file, "{} since {}", holder_name(), now_rfc3339()).map_err(unavailable)?;
    file.flush().map_err(unavailable)?;
    Ok(file)
}

// --- PostgreSQL --------------------------------------------------------------------------

async fn lock_postgres(options: &PgConnectOptions) -> Result<PgConnection, HoldError> {
    let unavailable = |e: sqlx::Error| HoldError::Unavailable(e.to_string());
    // The daemon's first connection: its error is the real cause (a pool would only say
    // that it timed out).
    let mut connection = options
        .connect()
        .await
        .map_err(|e| HoldError::Unavailable(explain_connect_error(e, options)))?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(ADVISORY_KEY)
        .fetch_one(&mut connection)
        .await
        .map_err(unavailable)?;
    if locked {
        return Ok(connection);
    }
    // Who holds it: the session that has the lock, by its application name and start.
    let holder: Option<(Option<String>, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT a.application_name, host(a.client_addr), \
         to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') \
         FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.granted AND l.objid::bigint = $1 \
         AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .bind(ADVISORY_KEY)
    .fetch_optional(&mut connection)
    .await
    .unwrap_or(None);
    let _ = connection.close().await;
    Err(HoldError::Taken(match holder {
        Some((name, address, since)) => format!(
            "{} since {}, connected from {}",
            name.filter(|n| !n.is_empty())
                .unwrap_or_else(|| "holder unnamed".into()),
            since.unwrap_or_else(|| "an unknown time".into()),
            address.unwrap_or_else(|| "a local socket".into()),
        ),
        None => "holder unknown".into(),
    }))
}

/// How long a refused start keeps asking: a holder that was just killed keeps its lock
/// until the server notices its connection is gone, which a supervisor's immediate
/// restart can beat.
const TAKEN_PATIENCE: Duration = Duration::from_secs(3);

async fn lock_postgres_patiently(options: &PgConnectOptions) -> Result<PgConnection, HoldError> {
    let deadline = tokio::time::Instant::now() + TAKEN_PATIENCE;
    loop {
        match lock_postgres(options).await {
            Err(HoldError::Taken(_)) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            outcome => return outcome,
        }
    }
}

/// The connection error, with the way out when the database does not exist yet.
fn explain_connect_error(err: sqlx::Error, options: &PgConnectOptions) -> String {
    let missing_database = err
        .as_database_error()
        .and_then(|db| db.code())
        .is_some_and(|code| code == "3D000");
    match (missing_database, options.get_database()) {
        (true, Some(database)) => format!(
            "{err}; create it first, for example `createdb -h {} -p {} -U {} {database}`",
            options.get_host(),
            options.get_port(),
            options.get_username()
        ),
        _ => err.to_string(),
    }
}

/// Pings the lock's connection every `interval`. When it fails the lock is gone with it:
/// the daemon stops admitting, and this takes the lock again as soon as it can.
async fn watch_postgres(
    mut connection: PgConnection,
    options: PgConnectOptions,
    health: StoreHealth,
    interval: Duration,
    mut released: oneshot::Receiver<()>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Pings in a row that got no answer in time.
    let mut unanswered = 0;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = &mut released => {
                let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                    .bind(ADVISORY_KEY)
                    .execute(&mut connection)
                    .await;
                let _ = connection.close().await;
                return;
            }
        }
        let ping = tokio::time::timeout(interval.max(Duration::from_secs(1)), connection.ping());
        match ping.await {
            Ok(Ok(())) => {
                unanswered = 0;
                continue;
            }
            // A slow answer on a busy machine: the session, and the lock, are still ours.
            Err(_) if unanswered + 1 < UNANSWERED_PINGS => {
                unanswered += 1;
                continue;
            }
            _ => {}
        }
        health.hold_lost("the connection holding the database's writer lock was lost");
        // Let the session go first: while it lives, it holds the lock a new one would take.
        drop(connection);
        unanswered = 0;
        connection = loop {
            tokio::select! {
                _ = ticker.tick() => {}
                // Stopping while the hold is lost: there is nothing to let go.
                _ = &mut released => return,
            }
            match lock_postgres(&options).await {
                Ok(connection) => break connection,
                Err(err) => health.hold_lost(&err.to_string()),
            }
        };
        health.hold_regained();
    }
}

/// Pings in a row without an answer in time before the hold's connection is taken for
/// lost (a failed ping is lost at once).
const UNANSWERED_PINGS: u32 = 5;

#[cfg(test)]
mod tests {
    use super::sqlite_lock_path;

    #[test]
    fn the_sqlite_lock_file_sits_beside_the_database_file() {
        assert_eq!(
            sqlite_lock_path("sqlite:///var/lib/staryer/staryer.db?mode=rwc").unwrap(),
            std::path::PathBuf::from("/var/lib/staryer/staryer.db.lock")
        );
    }
}
