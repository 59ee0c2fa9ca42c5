//! Typed configuration: the built-in `config/default.toml`, then the file named by
//! `STARYER_CONFIG`, then `STARYER__<SECTION>__<KEY>` environment variables, later ones
//! winning. Everything is validated here, at boot, so the rest of the daemon reads plain
//! fields. See `config/default.toml` for each field's meaning and default.

use std::path::PathBuf;

use serde::Deserialize;

/// The defaults, compiled in so the binary runs from any working directory.
const DEFAULTS: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// Directory for the SQLite database and the generated admin token.
    pub data_dir: PathBuf,
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub admin: AdminConfig,
    pub ingest: IngestConfig,
    pub stripe: StripeConfig,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerConfig {
    /// Listen address; port 0 picks a free port (tests).
    pub bind: String,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
    /// Largest request body, in bytes (413 beyond).
    pub max_body_bytes: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseConfig {
    /// Empty: SQLite `staryer.db` in `data_dir`; otherwise a `sqlite://` or `postgres://` URL.
    pub url: String,
    /// Pool size.
    pub max_connections: u32,
    /// A write slower than this fails and marks the store down.
    pub write_timeout_ms: u64,
    /// Ping period while the store is down.
    pub health_interval_ms: u64,
}

#[derive(Clone, Deserialize)]
pub struct AdminConfig {
    /// Platform owner's token; empty means generated and kept in `data_dir/admin_token`.
    pub token: String,
}

impl std::fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminConfig")
            .field("token", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct IngestConfig {
    /// Most bucket writes one group commit carries.
    pub max_batch_writes: usize,
    /// Requests that may wait for a group commit before ingest answers 503.
    pub queue_capacity: usize,
    /// Period of folding the commit log into the hourly buckets, milliseconds.
    pub fold_interval_ms: u64,
    /// Idempotency keys are remembered this long.
    pub idempotency_retention_hours: u64,
    /// Period of key pruning and counter eviction.
    pub maintenance_interval_secs: u64,
}

#[derive(Clone, Deserialize)]
pub struct StripeConfig {
    /// Platform secret key; empty means billing is off.
    pub secret_key: String,
    /// Webhook signing secret.
    pub webhook_secret: String,
    /// Stripe API base URL.
    pub api_base: String,
    /// v2 meter event stream base URL.
    pub meter_events_base: String,
    /// Period of the usage reporter.
    pub report_interval_ms: u64,
    /// The platform's application fee on subscriptions, percent.
    pub platform_fee_percent: f64,
    /// Ceiling of v1 meter event requests per second.
    pub meter_events_per_second: u32,
    /// `v1`, `v2` or `auto`.
    pub meter_event_transport: MeterEventTransport,
    /// Per-request timeout.
    pub request_timeout_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MeterEventTransport {
    V1,
    V2,
    Auto,
}

impl std::fmt::Debug for StripeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeConfig")
            .field("secret_key", &redacted(&self.secret_key))
            .field("webhook_secret", &redacted(&self.webhook_secret))
            .field("api_base", &self.api_base)
            .field("meter_events_base", &self.meter_events_base)
            .field("report_interval_ms", &self.report_interval_ms)
            .field("platform_fee_percent", &self.platform_fee_percent)
            .field("meter_events_per_second", &self.meter_events_per_second)
            .field("meter_event_transport", &self.meter_event_transport)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .finish()
    }
}

fn redacted(secret: &str) -> &'static str {
    if secret.is_empty() {
        "<unset>"
    } else {
        "<redacted>"
    }
}

impl Config {
    /// Defaults < `STARYER_CONFIG` file < `STARYER__*` environment.
    pub fn load() -> Result<Self, config::ConfigError> {
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        if let Ok(path) = std::env::var("STARYER_CONFIG") {
            builder = builder.add_source(config::File::with_name(&path));
        }
        let config: Config = builder
            .add_source(
                config::Environment::with_prefix("STARYER")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true),
            )
            .build()?
            .try_deserialize()?;
        config.validated()
    }

    /// The defaults alone, with the data directory moved (tests, benches, the demo).
    pub fn defaults_in(data_dir: impl Into<PathBuf>) -> Self {
        let mut config: Config = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml))
            .build()
            .and_then(|c| c.try_deserialize())
            .expect("the built-in defaults parse");
        config.data_dir = data_dir.into();
        config
    }

    fn validated(self) -> Result<Self, config::ConfigError> {
        let fail = |msg: &str| Err(config::ConfigError::Message(msg.to_string()));
        if self.database.max_connections == 0 {
            return fail("database.max_connections must be at least 1");
        }
        if self.ingest.queue_capacity == 0 || self.ingest.max_batch_writes == 0 {
            return fail("ingest.queue_capacity and ingest.max_batch_writes must be at least 1");
        }
        let fee = self.stripe.platform_fee_percent;
        if !(0.0..=100.0).contains(&fee) {
            return fail("stripe.platform_fee_percent must be between 0 and 100");
        }
        if self.stripe.meter_events_per_second == 0 || self.stripe.report_interval_ms == 0 {
            return fail(
                "stripe.meter_events_per_second and stripe.report_interval_ms must be at least 1",
            );
        }
        let url = &self.database.url;
        if !(url.is_empty()
            || url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return fail("database.url must be empty, sqlite:… or postgres://…");
        }
        Ok(self)
    }

    /// The database URL in force: the configured one, or the SQLite file in `data_dir`.
    pub fn database_url(&self) -> String {
        if self.database.url.is_empty() {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("staryer.db").display()
            )
        } else {
            self.database.url.clone()
        }
    }
}
