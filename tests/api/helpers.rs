//! Test harness: the real daemon on port 0 with a fresh database (a temp SQLite file, or a
//! new PostgreSQL database per test when `STARYER_TEST_DATABASE_URL` is set), a manual
//! clock, and a client with helpers named after what a creator does.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use sqlx::Connection;
use staryer::clock::ManualClock;
use staryer::config::Config;
use staryer::startup::App;

pub const ADMIN_TOKEN: &str = "adm_test_token";
/// 2026-03-15T12:00:00Z: mid-month, mid-day.
pub const START: i64 = 1_773_576_000;

/// Runs a test body on SQLite, and on PostgreSQL when `STARYER_TEST_DATABASE_URL` is set.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[actix_web::test]
            async fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite).await
            }

            #[actix_web::test]
            async fn postgres() {
                match $crate::helpers::Backend::postgres() {
                    Some(backend) => super::$name(backend).await,
                    None => eprintln!("STARYER_TEST_DATABASE_URL is not set: PostgreSQL not tested"),
                }
            }
        }
    )*};
}

#[derive(Clone, Debug)]
pub enum Backend {
    Sqlite,
    /// A server URL; each test gets its own database on it.
    Postgres(String),
}

impl Backend {
    pub fn postgres() -> Option<Backend> {
        std::env::var("STARYER_TEST_DATABASE_URL")
            .ok()
            .filter(|url| !url.is_empty())
            .map(Backend::Postgres)
    }

    /// A fresh database URL for one test ("" for SQLite in the data dir).
    pub async fn fresh_database(&self) -> String {
        match self {
            Backend::Sqlite => String::new(),
            Backend::Postgres(server) => {
                let name = format!("staryer_test_{}", random_suffix().to_ascii_lowercase());
                let mut admin = sqlx::PgConnection::connect(server)
                    .await
                    .expect("PostgreSQL at STARYER_TEST_DATABASE_URL");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut admin)
                    .await
                    .expect("create test database");
                let base = server.rsplit_once('/').map_or(server.as_str(), |(b, _)| b);
                format!("{base}/{name}")
            }
        }
    }
}

fn random_suffix() -> String {
    use rand::distr::{Alphanumeric, SampleString};
    Alphanumeric.sample_string(&mut rand::rng(), 16)
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub clock: ManualClock,
    pub config: Config,
    pub database_url: String,
    handle: ServerHandle,
    /// The daemon's serving task: it ends once the daemon has drained, folded and closed.
    running: actix_rt::task::JoinHandle<std::io::Result<()>>,
    _data_dir: Arc<tempfile::TempDir>,
}

/// A creator as the tests use it.
pub struct TestCreator {
    pub secret_key: String,
    pub publishable_key: String,
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let data_dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    let mut config = Config::defaults_in(data_dir.path());
    config.server.bind = "127.0.0.1:0".into();
    config.server.workers = 2;
    config.admin.token = ADMIN_TOKEN.into();
    config.database.url = backend.fresh_database().await;
    config.database.write_timeout_ms = 1_000;
    config.database.health_interval_ms = 100;
    tweak(&mut config);
    let clock = ManualClock::starting_at(START);
    start(config, clock, data_dir).await
}

async fn start(config: Config, clock: ManualClock, data_dir: Arc<tempfile::TempDir>) -> TestApp {
    let test_app = launch(config, clock, data_dir).await;
    test_app.wait_until_ready().await;
    test_app
}

async fn launch(config: Config, clock: ManualClock, data_dir: Arc<tempfile::TempDir>) -> TestApp {
    let app = App::build(config.clone(), Arc::new(clock.clone()))
        .await
        .unwrap_or_else(|err| panic!("the daemon builds: {err:#}"));
    let address = format!("http://127.0.0.1:{}", app.port());
    let handle = app.handle();
    let running = actix_rt::spawn(app.run_until_stopped());
    TestApp {
        address,
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()
            .unwrap(),
        clock,
        database_url: config.database_url(),
        config,
        handle,
        running,
        _data_dir: data_dir,
    }
}

impl TestApp {
    /// Stops gracefully, waits until the daemon has stopped (drained, folded, closed and
    /// let go of its database), and starts a new one on the same database and clock.
    pub async fn restart(self) -> TestApp {
        self.restart_with(|_| {}).await
    }

    /// `restart`, with settings changed for the new daemon.
    pub async fn restart_with(self, tweak: impl FnOnce(&mut Config)) -> TestApp {
        let (mut config, clock, data_dir) = self.stop().await;
        tweak(&mut config);
        start(config, clock, data_dir).await
    }

    /// `restart_with`, answering as soon as the new daemon listens, ready or not.
    pub async fn restart_unready_with(self, tweak: impl FnOnce(&mut Config)) -> TestApp {
        let (mut config, clock, data_dir) = self.stop().await;
        tweak(&mut config);
        launch(config, clock, data_dir).await
    }

    /// Stops gracefully and waits until the daemon has stopped (drained, folded, closed
    /// and let go of its database); answers what the next daemon needs.
    async fn stop(self) -> (Config, ManualClock, Arc<tempfile::TempDir>) {
        self.handle.stop(true).await;
        self.running
            .await
            .expect("the daemon's task ends")
            .expect("the daemon stops cleanly");
        (self.config, self.clock, self._data_dir)
    }

    pub async fn wait_until_ready(&self) {
        for _ in 0..200 {
            if let Ok(r) = self.client.get(self.url("/readyz")).send().await {
                if r.status() == StatusCode::OK {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the daemon never became ready");
    }

    /// Runs one SQL statement on the daemon's database over a connection of its own (what
    /// someone with access to the database could do behind the daemon's back).
    pub async fn sql(&self, statement: &str) -> Result<u64, String> {
        let outcome = if self.database_url.starts_with("sqlite:") {
            let mut conn = sqlx::SqliteConnection::connect(&self.database_url)
                .await
                .map_err(|e| e.to_string())?;
            sqlx::query(statement)
                .execute(&mut conn)
                .await
                .map(|r| r.rows_affected())
        } else {
            let mut conn = sqlx::PgConnection::connect(&self.database_url)
                .await
                .map_err(|e| e.to_string())?;
            sqlx::query(statement)
                .execute(&mut conn)
                .await
                .map(|r| r.rows_affected())
        };
        outcome.map_err(|e| e.to_string())
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Option<&Value>,
    ) -> Response {
        let mut request = self.client.request(method, self.url(path)).bearer_auth(key);
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.expect("request sent")
    }

    pub async fn post(
        &self,
        path: &str,
        key: &str,
        body: impl std::borrow::Borrow<Value>,
    ) -> Response {
        self.send(reqwest::Method::POST, path, key, Some(body.borrow()))
            .await
    }

    pub async fn post_raw(
        &self,
        path: &str,
        key: &str,
        body: impl Into<reqwest::Body>,
    ) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(key)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn get(&self, path: &str, key: &str) -> Response {
        self.send(reqwest::Method::GET, path, key, None).await
    }

    pub async fn create_creator(&self, slug: &str) -> TestCreator {
        let body = ok_json(
            self.post("/v1/admin/creators", ADMIN_TOKEN, &json!({"slug": slug}))
                .await,
            201,
        )
        .await;
        TestCreator {
            secret_key: body["secret_key"].as_str().unwrap().into(),
            publishable_key: body["publishable_key"].as_str().unwrap().into(),
        }
    }

    pub async fn create_meter(
        &self,
        creator: &TestCreator,
        key: &str,
        aggregation: &str,
        reset: &str,
    ) {
        ok_json(
            self.post(
                "/v1/meters",
                &creator.secret_key,
                &json!({"key": key, "aggregation": aggregation, "reset": reset}),
            )
            .await,
            201,
        )
        .await;
    }

    /// A tier capping `meter` at `limit` (warn at 0.8), with `on_exceed`.
    pub async fn create_tier(&self, creator: &TestCreator, key: &str, caps: Value, default: bool) {
        ok_json(
            self.post(
                "/v1/tiers",
                &creator.secret_key,
                &json!({
                    "key": key, "name": key, "default": default,
                    "price": {"amount": 1000, "currency": "usd", "interval": "month"},
                    "caps": caps, "features": ["reports"],
                }),
            )
            .await,
            201,
        )
        .await;
    }

    pub async fn assign(&self, creator: &TestCreator, customer: &str, tier: &str) {
        ok_json(
            self.send(
                reqwest::Method::PUT,
                &format!("/v1/customers/{customer}"),
                &creator.secret_key,
                Some(&json!({"tier": tier})),
            )
            .await,
            200,
        )
        .await;
    }

    /// Posts one event and answers its result (asserting 200).
    pub async fn event(&self, creator: &TestCreator, event: Value) -> Value {
        ok_json(
            self.post("/v1/events", &creator.secret_key, &event).await,
            200,
        )
        .await
    }

    /// Posts `value` on `meter` for customer `c1`; answers the decision and `used`.
    pub async fn decided(&self, creator: &TestCreator, meter: &str, value: i64) -> (String, i64) {
        let r = self
            .event(
                creator,
                json!({"customer_id": "c1", "meter": meter, "value": value}),
            )
            .await;
        (
            r["decision"].as_str().unwrap().to_string(),
            r["used"].as_i64().unwrap(),
        )
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        let response = self.client.get(self.url("/metrics")).send().await;
        response
            .expect("request sent")
            .text()
            .await
            .expect("a text body")
    }

    pub async fn usage(&self, creator: &TestCreator, customer: &str) -> Value {
        ok_json(
            self.get(
                &format!("/v1/customers/{customer}/usage"),
                &creator.secret_key,
            )
            .await,
            200,
        )
        .await
    }

    /// The `used` figure of one meter in the customer's usage.
    pub async fn used(&self, creator: &TestCreator, customer: &str, meter: &str) -> Value {
        let usage = self.usage(creator, customer).await;
        usage["meters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["meter"] == meter)
            .unwrap_or_else(|| panic!("meter {meter} in {usage}"))["used"]
            .clone()
    }

    /// A creator with meter `calls` (sum, month) and a default tier capping it at `limit`.
    pub async fn creator_with_cap(&self, slug: &str, limit: u64, on_exceed: &str) -> TestCreator {
        let creator = self.create_creator(slug).await;
        self.create_meter(&creator, "calls", "sum", "month").await;
        self.create_tier(
            &creator,
            "basic",
            json!({"calls": {"limit": limit, "on_exceed": on_exceed}}),
            true,
        )
        .await;
        creator
    }
}

/// Asserts the status and answers the JSON body.
pub async fn ok_json(response: Response, status: u16) -> Value {
    let actual = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(actual, status, "unexpected status; body: {body}");
    body
}

/// Asserts an error answer: status, stable code, and the SPEC's shape.
pub async fn assert_error(response: Response, status: u16, code: &str) -> Value {
    let body = ok_json(response, status).await;
    assert_eq!(body["error"]["code"], code, "body: {body}");
    assert!(body["error"]["message"].is_string(), "body: {body}");
    body
}

/// The real binary with `args`, run to its end: (exit code, stdout, stderr).
pub fn run_binary(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_staryer"))
        .args(args)
        .envs(env.iter().copied())
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("the staryer binary runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The real binary, on its own port and data directory.
pub struct Daemon {
    child: Child,
    pub base: String,
}

impl Daemon {
    /// Starts it and waits until ready; `env` adds settings (`STARYER__…`).
    pub async fn start(
        data_dir: &std::path::Path,
        database_url: &str,
        port: u16,
        env: &[(&str, String)],
    ) -> Daemon {
        let mut command = Command::new(env!("CARGO_BIN_EXE_staryer"));
        command
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        Daemon::start_with(&mut command, data_dir, database_url, port, env).await
    }

    /// `start`, logging everything down to debug into `log` (to read what it wrote).
    pub async fn start_logging_to(
        log: &std::path::Path,
        data_dir: &std::path::Path,
        database_url: &str,
        port: u16,
    ) -> Daemon {
        let mut command = Command::new(env!("CARGO_BIN_EXE_staryer"));
        let file = std::fs::File::create(log).expect("a log file");
        let also = file.try_clone().expect("a log file");
        command.env("RUST_LOG", "debug").stderr(file);
        Daemon::start_with(command.stdout(also), data_dir, database_url, port, &[]).await
    }

    async fn start_with(
        command: &mut Command,
        data_dir: &std::path::Path,
        database_url: &str,
        port: u16,
        env: &[(&str, String)],
    ) -> Daemon {
        let child = command
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("STARYER__DATA_DIR", data_dir)
            .env("STARYER__SERVER__BIND", format!("127.0.0.1:{port}"))
            .env("STARYER__ADMIN__TOKEN", ADMIN_TOKEN)
            .env("STARYER__DATABASE__URL", database_url)
            .spawn()
            .expect("the staryer binary starts");
        let daemon = Daemon {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        for _ in 0..400 {
            if let Ok(r) = client.get(format!("{}/readyz", daemon.base)).send().await {
                if r.status() == 200 {
                    return daemon;
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the daemon never became ready");
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn sigkill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Makes the store refuse writes, and gives them back.
pub enum Outage {
    /// Another connection holds SQLite's write lock.
    SqliteLock(sqlx::SqliteConnection),
    /// The test database refuses connections and its sessions are ended.
    PostgresClosed {
        admin: sqlx::PgConnection,
        database: String,
    },
}

impl Outage {
    pub async fn begin(database_url: &str, backend: &Backend) -> Outage {
        match backend {
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(database_url).await.unwrap();
                sqlx::query("BEGIN EXCLUSIVE")
                    .execute(&mut conn)
                    .await
                    .unwrap();
                Outage::SqliteLock(conn)
            }
            Backend::Postgres(server) => {
                let database = database_url.rsplit_once('/').unwrap().1.to_string();
                let mut admin = sqlx::PgConnection::connect(server).await.unwrap();
                sqlx::query(&format!(
                    "ALTER DATABASE {database} ALLOW_CONNECTIONS false"
                ))
                .execute(&mut admin)
                .await
                .unwrap();
                sqlx::query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                )
                .bind(&database)
                .execute(&mut admin)
                .await
                .unwrap();
                Outage::PostgresClosed { admin, database }
            }
        }
    }

    pub async fn end(self) {
        match self {
            Outage::SqliteLock(mut conn) => {
                sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
            }
            Outage::PostgresClosed {
                mut admin,
                database,
            } => {
                sqlx::query(&format!("ALTER DATABASE {database} ALLOW_CONNECTIONS true"))
                    .execute(&mut admin)
                    .await
                    .unwrap();
            }
        }
    }
}

/// Asks `probe` every 20 ms until it answers `Some`, for up to 15 s.
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..750 {
        if let Some(found) = probe().await {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{what}: not within 15 s");
}

/// The outbox polled every 20 ms, and private targets (the local fakes) allowed.
pub fn quick_outbox(config: &mut Config) {
    config.outbox.poll_interval_ms = 20;
    config.webhooks.allow_private_targets = true;
}

impl TestApp {
    /// The creator's outbox messages, newest first (`query` such as `?status=parked`).
    pub async fn outbox(&self, creator: &TestCreator, query: &str) -> Vec<Value> {
        let page = ok_json(
            self.get(&format!("/v1/outbox{query}"), &creator.secret_key)
                .await,
            200,
        )
        .await;
        page["messages"].as_array().unwrap().clone()
    }
}

/// Every row of every table of the database that holds `needle` anywhere in its text
/// (binary columns read as UTF-8), as `table: row`: proof that something is gone.
pub async fn rows_naming(database_url: &str, needle: &str) -> Vec<String> {
    use sqlx::Row;
    let mut found = Vec::new();
    if database_url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(database_url).await.unwrap();
        let tables: Vec<(String,)> = sqlx::query_as(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        for (table,) in tables {
            let columns: Vec<String> = sqlx::query(&format!("PRAGMA table_info(\"{table}\")"))
                .fetch_all(&mut conn)
                .await
                .unwrap()
                .iter()
                .map(|row| row.get::<String, _>("name"))
                .collect();
            let text = columns
                .iter()
                .map(|c| format!("COALESCE(CAST(\"{c}\" AS TEXT), '')"))
                .collect::<Vec<_>>()
                .join(" || '|' || ");
            let sql = format!("SELECT CAST({text} AS BLOB) FROM \"{table}\"");
            let rows: Vec<(Vec<u8>,)> = sqlx::query_as(&sql).fetch_all(&mut conn).await.unwrap();
            found.extend(
                rows.iter()
                    .map(|(row,)| String::from_utf8_lossy(row))
                    .filter(|row| row.contains(needle))
                    .map(|row| format!("{table}: {row}")),
            );
        }
    } else {
        let mut conn = sqlx::PgConnection::connect(database_url).await.unwrap();
        let columns: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT table_name::text, column_name::text, data_type::text \
             FROM information_schema.columns WHERE table_schema = current_schema() \
             ORDER BY table_name, ordinal_position",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        let mut by_table: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for (table, column, kind) in columns {
            let text = if kind == "bytea" {
                format!("COALESCE(encode(\"{column}\", 'escape'), '')")
            } else {
                format!("COALESCE(\"{column}\"::text, '')")
            };
            by_table.entry(table).or_default().push(text);
        }
        for (table, texts) in by_table {
            let sql = format!("SELECT {} FROM \"{table}\"", texts.join(" || '|' || "));
            let rows: Vec<(String,)> = sqlx::query_as(&sql).fetch_all(&mut conn).await.unwrap();
            found.extend(
                rows.into_iter()
                    .filter(|(row,)| row.contains(needle))
                    .map(|(row,)| format!("{table}: {row}")),
            );
        }
    }
    found
}

impl TestApp {
    /// Stops gracefully, then builds a daemon with settings changed on the same database
    /// and clock, which must fail: answers why (the chain of causes).
    pub async fn restart_failing_with(self, tweak: impl FnOnce(&mut Config)) -> String {
        let (mut config, clock, _data_dir) = self.stop().await;
        tweak(&mut config);
        match App::build(config, Arc::new(clock)).await {
            Ok(_) => panic!("the daemon builds, but should not"),
            Err(err) => format!("{err:#}"),
        }
    }
}
