//! Typed configuration: the built-in `config/default.toml`, then the file named by
//! `STARYER_CONFIG`, then `STARYER__<SECTION>__<KEY>` environment variables, later ones
//! winning. Everything is validated here, at boot and before anything is written, so the
//! rest of the daemon reads plain fields.
//!
//! Strict: a key in the file or a `STARYER__…` variable that names no setting stops the
//! start with the nearest valid name (a typo must not silently leave billing off). The
//! settings are `config/default.toml`'s keys, which cannot drift from these structs: every
//! struct refuses unknown fields and has no serde defaults, so the built-in file must carry
//! exactly the fields (a unit test parses it), and `docs/configuration.md` is generated
//! from its comments (a unit test compares them).

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The defaults, compiled in so the binary runs from any working directory.
const DEFAULTS: &str = include_str!("../config/default.toml");

/// Settings whose values never leave the process (logs, `staryer config`).
const SECRET_SETTINGS: &[&str] = &[
    "admin.token",
    "stripe.secret_key",
    "stripe.webhook_secret",
    "stripe.thin_webhook_secret",
    "secrets.sealing_key",
    "security.master_key",
    "security.previous_master_keys",
    "resend.api_key",
    "posthog.api_key",
    "openai.api_key",
];

/// The prefix of the environment variables that set settings.
const ENV_PREFIX: &str = "STARYER__";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown setting `{name}` in {source_name}{hint}")]
    UnknownSetting {
        name: String,
        source_name: String,
        hint: String,
    },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Read(#[from] config::ConfigError),
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Directory for the SQLite database and the generated admin token.
    pub data_dir: PathBuf,
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub admin: AdminConfig,
    pub ingest: IngestConfig,
    pub stripe: StripeConfig,
    pub secrets: SecretsConfig,
    pub security: SecurityConfig,
    pub outbox: OutboxConfig,
    pub retention: RetentionConfig,
    pub dashboard: DashboardConfig,
    pub resend: ResendConfig,
    pub webhooks: WebhooksConfig,
    pub posthog: PosthogConfig,
    pub openai: OpenAiConfig,
    pub log: LogConfig,
}

#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsConfig {
    /// 32 bytes, base64; empty: generated and kept in `data_dir/sealing_key`.
    pub sealing_key: String,
}

#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityConfig {
    /// 32 bytes, base64; empty: `secrets.sealing_key`.
    pub master_key: String,
    /// Earlier master keys, base64, comma-separated.
    pub previous_master_keys: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxConfig {
    /// Period of looking for work, milliseconds.
    pub poll_interval_ms: u64,
    /// First retry delay, seconds; doubles each try.
    pub retry_base_secs: u64,
    /// Longest retry delay, seconds.
    pub retry_max_secs: u64,
    /// A message failing this long is parked, hours.
    pub give_up_after_hours: u64,
    /// Messages of one integration in flight at once.
    pub concurrency: usize,
    /// Days delivered and parked messages (and their events) are kept.
    pub retention_days: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Days hours of usage are kept (meters that never reset keep theirs).
    pub usage_days: u64,
    /// Days Stripe's billing events are kept.
    pub billing_event_days: u64,
    /// Days sessions and dashboard links are kept after they expire.
    pub session_days: u64,
    /// Days audit records are kept; 0: for good.
    pub audit_days: u64,
    /// Rows one delete removes.
    pub batch_rows: u64,
    /// How often retention runs, seconds.
    pub interval_secs: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DashboardConfig {
    /// Minutes a browser session lives without a request.
    pub idle_minutes: u64,
    /// Hours a browser session lives at most.
    pub absolute_hours: u64,
    /// `auto`, `always` or `never`.
    pub secure_cookies: SecureCookies,
    /// IP addresses of proxies whose forwarded headers are believed, comma-separated.
    pub trusted_proxies: String,
    pub sign_ins_per_account_per_minute: u32,
    pub sign_ins_per_address_per_minute: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SecureCookies {
    Auto,
    Always,
    Never,
}

impl DashboardConfig {
    /// `trusted_proxies`, parsed.
    pub fn trusted_proxies(&self) -> Result<Vec<std::net::IpAddr>, String> {
        self.trusted_proxies
            .split(',')
            .map(str::trim)
            .filter(|text| !text.is_empty())
            .map(|text| {
                text.parse()
                    .map_err(|_| format!("{text:?} is not an IP address"))
            })
            .collect()
    }
}

#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ResendConfig {
    /// Empty: notices by email are off.
    pub api_key: String,
    pub base_url: String,
    /// Sender of every notice.
    pub from: String,
    /// Emails per second at most.
    pub requests_per_second: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Allow endpoints on loopback and private networks.
    pub allow_private_targets: bool,
    /// Per-delivery timeout, milliseconds.
    pub request_timeout_ms: u64,
    /// Failing this long without a success disables an endpoint, hours.
    pub disable_after_hours: u64,
    /// Deliveries per second at most, all endpoints together.
    pub requests_per_second: u32,
}

#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PosthogConfig {
    /// The platform's project key; empty: only creators' own keys.
    pub api_key: String,
    pub host: String,
    /// Most events a batch request carries.
    pub batch_size: usize,
    /// Longest wait for a batch to fill, milliseconds.
    pub batch_linger_ms: u64,
    /// Batch requests per second at most.
    pub requests_per_second: u32,
}

#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OpenAiConfig {
    /// Empty: AI suggestions are off.
    pub api_key: String,
    pub base_url: String,
    pub model: String,
    /// Per-suggestion timeout, milliseconds.
    pub timeout_ms: u64,
    /// Suggestions per creator per hour.
    pub suggestions_per_hour: u32,
}

/// `Debug` for the sections that hold a secret: every field but the secret ones.
macro_rules! debug_without_secrets {
    ($section:ty { $($field:ident),* } secret { $($secret:ident),* }) => {
        impl std::fmt::Debug for $section {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($section))
                    $(.field(stringify!($secret), &redacted(&self.$secret)))*
                    $(.field(stringify!($field), &self.$field))*
                    .finish()
            }
        }
    };
}

debug_without_secrets!(SecretsConfig {} secret { sealing_key });
debug_without_secrets!(SecurityConfig {} secret { master_key, previous_master_keys });
debug_without_secrets!(ResendConfig { base_url, from, requests_per_second } secret { api_key });
debug_without_secrets!(PosthogConfig { host, batch_size, batch_linger_ms, requests_per_second } secret { api_key });
debug_without_secrets!(OpenAiConfig { base_url, model, timeout_ms, suggestions_per_hour } secret { api_key });

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `text` (colours only on a terminal) or `json` (one object a line).
    pub format: LogFormat,
    /// Which lines to write, in `RUST_LOG`'s syntax; `RUST_LOG` wins when set.
    pub filter: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Listen address; port 0 picks a free port (tests).
    pub bind: String,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
    /// Largest request body, in bytes (413 beyond).
    pub max_body_bytes: usize,
    /// A request body must arrive within this many milliseconds of its headers (408).
    pub body_timeout_ms: u64,
    /// Bytes all request bodies being read may hold together (503 `busy` beyond).
    pub max_body_bytes_in_flight: usize,
    /// The daemon's address as browsers reach it (snippets, portal links); empty: the
    /// scheme and host of the request that asks.
    pub public_url: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
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

#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
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

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    /// Most bucket writes one group commit carries.
    pub max_batch_writes: usize,
    /// Requests that may wait for a group commit before ingest answers 503.
    pub queue_capacity: usize,
    /// Period of folding the commit log into the hourly buckets, milliseconds.
    pub fold_interval_ms: u64,
    /// Idempotency keys are remembered this long.
    pub idempotency_retention_hours: u64,
    /// Period of key pruning, counter eviction and writing API keys' last use.
    pub maintenance_interval_secs: u64,
}

#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StripeConfig {
    /// Platform secret key; empty means billing is off.
    pub secret_key: String,
    /// Webhook signing secret.
    pub webhook_secret: String,
    /// Signing secret of the thin-event destination; empty: only `webhook_secret`.
    pub thin_webhook_secret: String,
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
    /// Period of reconciliation with Stripe's meter event summaries (whole hours).
    pub reconcile_interval_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
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
            .field("thin_webhook_secret", &redacted(&self.thin_webhook_secret))
            .field("api_base", &self.api_base)
            .field("meter_events_base", &self.meter_events_base)
            .field("report_interval_ms", &self.report_interval_ms)
            .field("platform_fee_percent", &self.platform_fee_percent)
            .field("meter_events_per_second", &self.meter_events_per_second)
            .field("meter_event_transport", &self.meter_event_transport)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .field("reconcile_interval_secs", &self.reconcile_interval_secs)
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
    /// Defaults < `STARYER_CONFIG` file < `STARYER__*` environment, strictly: unknown
    /// keys and variables are refused, every value is validated.
    pub fn load() -> Result<Self, ConfigError> {
        let known = known_settings();
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        if let Ok(path) = std::env::var("STARYER_CONFIG") {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| ConfigError::Invalid(format!("STARYER_CONFIG={path}: {e}")))?;
            builder = with_file(builder, &text, &format!("STARYER_CONFIG={path}"), &known)?;
        }
        for (variable, _) in std::env::vars() {
            if let Some(rest) = variable.strip_prefix(ENV_PREFIX) {
                let name = rest.to_ascii_lowercase().replace("__", ".");
                refuse_unknown(&known, &name, &format!("variable {variable}"), env_name)?;
            }
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

    /// The defaults overlaid with a configuration file's text, checked as at boot (no
    /// environment): what `STARYER_CONFIG` names goes through the same steps.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        let builder = with_file(builder, text, "the configuration", &known_settings())?;
        let config: Config = builder.build()?.try_deserialize()?;
        config.validated()
    }

    /// The defaults alone, with the data directory moved (tests, benches, the demo).
    pub fn defaults_in(data_dir: impl Into<PathBuf>) -> Self {
        let mut config: Config = toml::from_str(DEFAULTS).expect("the built-in defaults parse");
        config.data_dir = data_dir.into();
        config
    }

    fn validated(self) -> Result<Self, ConfigError> {
        let fail = |msg: String| Err(ConfigError::Invalid(msg));
        let at_least_one = [
            ("server.max_body_bytes", self.server.max_body_bytes as u64),
            ("server.body_timeout_ms", self.server.body_timeout_ms),
            (
                "server.max_body_bytes_in_flight",
                self.server.max_body_bytes_in_flight as u64,
            ),
            (
                "database.max_connections",
                self.database.max_connections as u64,
            ),
            ("database.write_timeout_ms", self.database.write_timeout_ms),
            (
                "database.health_interval_ms",
                self.database.health_interval_ms,
            ),
            ("ingest.queue_capacity", self.ingest.queue_capacity as u64),
            (
                "ingest.max_batch_writes",
                self.ingest.max_batch_writes as u64,
            ),
            ("ingest.fold_interval_ms", self.ingest.fold_interval_ms),
            (
                "ingest.idempotency_retention_hours",
                self.ingest.idempotency_retention_hours,
            ),
            (
                "ingest.maintenance_interval_secs",
                self.ingest.maintenance_interval_secs,
            ),
            ("stripe.report_interval_ms", self.stripe.report_interval_ms),
            (
                "stripe.meter_events_per_second",
                self.stripe.meter_events_per_second as u64,
            ),
            ("stripe.request_timeout_ms", self.stripe.request_timeout_ms),
            (
                "stripe.reconcile_interval_secs",
                self.stripe.reconcile_interval_secs,
            ),
            ("outbox.poll_interval_ms", self.outbox.poll_interval_ms),
            ("outbox.retry_base_secs", self.outbox.retry_base_secs),
            ("outbox.retry_max_secs", self.outbox.retry_max_secs),
            (
                "outbox.give_up_after_hours",
                self.outbox.give_up_after_hours,
            ),
            ("outbox.concurrency", self.outbox.concurrency as u64),
            ("outbox.retention_days", self.outbox.retention_days),
            (
                "retention.billing_event_days",
                self.retention.billing_event_days,
            ),
            ("retention.session_days", self.retention.session_days),
            ("retention.batch_rows", self.retention.batch_rows),
            ("retention.interval_secs", self.retention.interval_secs),
            (
                "webhooks.request_timeout_ms",
                self.webhooks.request_timeout_ms,
            ),
            (
                "webhooks.disable_after_hours",
                self.webhooks.disable_after_hours,
            ),
            ("posthog.batch_size", self.posthog.batch_size as u64),
            (
                "resend.requests_per_second",
                u64::from(self.resend.requests_per_second),
            ),
            (
                "webhooks.requests_per_second",
                u64::from(self.webhooks.requests_per_second),
            ),
            (
                "posthog.requests_per_second",
                u64::from(self.posthog.requests_per_second),
            ),
            ("openai.timeout_ms", self.openai.timeout_ms),
            (
                "openai.suggestions_per_hour",
                u64::from(self.openai.suggestions_per_hour),
            ),
        ];
        for (name, value) in at_least_one {
            if value == 0 {
                return fail(format!("{name} must be at least 1"));
            }
        }
        for (name, days) in [
            ("outbox.retention_days", self.outbox.retention_days),
            ("retention.usage_days", self.retention.usage_days),
        ] {
            if days < 70 {
                return fail(format!("{name} must be at least 70"));
            }
        }
        for (name, value) in [
            ("dashboard.idle_minutes", self.dashboard.idle_minutes),
            ("dashboard.absolute_hours", self.dashboard.absolute_hours),
            (
                "dashboard.sign_ins_per_account_per_minute",
                self.dashboard.sign_ins_per_account_per_minute.into(),
            ),
            (
                "dashboard.sign_ins_per_address_per_minute",
                self.dashboard.sign_ins_per_address_per_minute.into(),
            ),
        ] {
            if value == 0 {
                return fail(format!("{name} must be at least 1"));
            }
        }
        if let Err(err) = self.dashboard.trusted_proxies() {
            return fail(format!("dashboard.trusted_proxies: {err}"));
        }
        // Stripe retries a webhook for up to three days; its event must still be known then.
        if self.retention.billing_event_days < 7 {
            return fail("retention.billing_event_days must be at least 7".into());
        }
        // Five values a row in one statement stay within both databases' limits.
        if self.retention.batch_rows > 5_000 {
            return fail("retention.batch_rows must be at most 5000".into());
        }
        if let Err(err) = parse_bind(&self.server.bind) {
            return fail(format!("server.bind = {:?}: {err}", self.server.bind));
        }
        let fee = self.stripe.platform_fee_percent;
        if !(0.0..=100.0).contains(&fee) {
            return fail("stripe.platform_fee_percent must be between 0 and 100".into());
        }
        for (name, url) in [
            ("stripe.api_base", &self.stripe.api_base),
            ("stripe.meter_events_base", &self.stripe.meter_events_base),
            ("resend.base_url", &self.resend.base_url),
            ("posthog.host", &self.posthog.host),
            ("openai.base_url", &self.openai.base_url),
        ] {
            match reqwest::Url::parse(url) {
                Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {}
                _ => return fail(format!("{name} = {url:?} must be an http(s) URL")),
            }
        }
        let url = &self.database.url;
        if !(url.is_empty()
            || url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return fail("database.url must be empty, sqlite:… or postgres://…".into());
        }
        if let Err(err) = tracing_subscriber::EnvFilter::try_new(&self.log.filter) {
            return fail(format!("log.filter = {:?}: {err}", self.log.filter));
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

    /// Where a client on this machine reaches the daemon: `server.bind`, with an
    /// any-address host (`0.0.0.0`, `[::]`) replaced by loopback.
    pub fn local_base_url(&self) -> String {
        let bind = &self.server.bind;
        let (host, port) = bind.rsplit_once(':').unwrap_or((bind, "8080"));
        let host = match host {
            "0.0.0.0" | "" => "127.0.0.1",
            "[::]" => "[::1]",
            other => other,
        };
        format!("http://{host}:{port}")
    }

    /// The effective configuration as TOML, secrets (and a database password) redacted:
    /// what `staryer config` prints.
    pub fn redacted_toml(&self) -> String {
        let mut table = toml::Table::try_from(self).expect("the configuration serializes");
        for name in SECRET_SETTINGS {
            let (section, key) = name.split_once('.').expect("section.key");
            if let Some(toml::Value::Table(section)) = table.get_mut(section) {
                if let Some(value) = section.get_mut(key) {
                    let shown = redacted(value.as_str().unwrap_or_default());
                    *value = toml::Value::String(shown.into());
                }
            }
        }
        if let Some(toml::Value::Table(database)) = table.get_mut("database") {
            if let Some(toml::Value::String(url)) = database.get_mut("url") {
                *url = without_password(url);
            }
        }
        toml::to_string(&table).expect("a table prints")
    }
}

/// `host:port`, where the host is an address or a name that resolves.
fn parse_bind(bind: &str) -> Result<(), String> {
    use std::net::ToSocketAddrs;
    let (_, port) = bind
        .rsplit_once(':')
        .ok_or("expected host:port, such as 127.0.0.1:8080")?;
    port.parse::<u16>()
        .map_err(|_| format!("the port {port:?} is not a number from 0 to 65535"))?;
    let mut addresses = bind.to_socket_addrs().map_err(|e| e.to_string())?;
    addresses
        .next()
        .map(|_| ())
        .ok_or_else(|| "the host resolves to no address".to_string())
}

/// A URL with its password (if any) replaced.
fn without_password(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("REDACTED"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

/// Every setting's dotted name (`server.bind`), read from the built-in defaults.
pub fn known_settings() -> BTreeSet<String> {
    let table: toml::Table = toml::from_str(DEFAULTS).expect("the built-in defaults parse");
    setting_names(&table).collect()
}

/// Adds a configuration file's text, each of its settings known (else refused).
fn with_file(
    builder: config::ConfigBuilder<config::builder::DefaultState>,
    text: &str,
    source_name: &str,
    known: &BTreeSet<String>,
) -> Result<config::ConfigBuilder<config::builder::DefaultState>, ConfigError> {
    let table: toml::Table =
        toml::from_str(text).map_err(|e| ConfigError::Invalid(format!("{source_name}: {e}")))?;
    for name in setting_names(&table) {
        refuse_unknown(known, &name, source_name, str::to_string)?;
    }
    Ok(builder.add_source(config::File::from_str(text, config::FileFormat::Toml)))
}

/// The dotted names of a TOML table's leaves (`[server] bind` is `server.bind`).
fn setting_names(table: &toml::Table) -> impl Iterator<Item = String> + '_ {
    table.iter().flat_map(|(key, value)| match value {
        toml::Value::Table(inner) => setting_names(inner)
            .map(|name| format!("{key}.{name}"))
            .collect::<Vec<_>>(),
        _ => vec![key.clone()],
    })
}

/// `server.bind` as its variable, `STARYER__SERVER__BIND`.
pub fn env_name(setting: &str) -> String {
    format!(
        "{ENV_PREFIX}{}",
        setting.to_ascii_uppercase().replace('.', "__")
    )
}

/// Refuses a name that is no setting, naming the closest one (as `spell` writes it).
fn refuse_unknown(
    known: &BTreeSet<String>,
    name: &str,
    source_name: &str,
    spell: impl Fn(&str) -> String,
) -> Result<(), ConfigError> {
    if known.contains(name) {
        return Ok(());
    }
    let nearest = known
        .iter()
        .map(|candidate| (strsim::damerau_levenshtein(name, candidate), candidate))
        .min();
    let hint = match nearest {
        Some((distance, candidate)) if distance <= 3 || candidate.ends_with(name) => {
            format!("; did you mean `{}`?", spell(candidate))
        }
        _ => format!(
            "; the settings are listed in docs/configuration.md ({} of them)",
            known.len()
        ),
    };
    Err(ConfigError::UnknownSetting {
        name: spell(name),
        source_name: source_name.to_string(),
        hint,
    })
}

/// `docs/configuration.md`: every setting with its variable, default and meaning, made from
/// `config/default.toml` (each key's comment lines above it), so the reference cannot
/// drift from the settings.
pub fn reference_markdown() -> String {
    let mut out = String::from(
        "# Configuration reference\n\n\
         <!-- Generated from config/default.toml by `staryer config --reference`; a unit test \
         keeps the two equal. Edit config/default.toml, then regenerate. -->\n\n\
         Later sources win: the built-in defaults (`config/default.toml`, compiled in), then \
         the TOML file named by `STARYER_CONFIG`, then environment variables \
         `STARYER__<SECTION>__<KEY>` (double underscores). A key in the file or a \
         `STARYER__…` variable that names no setting stops the start, naming the closest \
         setting. `staryer config` prints the configuration in force, secrets redacted. \
         Logs also follow `RUST_LOG` (it wins over `log.filter`).\n\n\
         | setting | environment variable | default | meaning |\n|---|---|---|---|\n",
    );
    let mut section = String::new();
    let mut comment: Vec<&str> = Vec::new();
    for line in DEFAULTS.lines().map(str::trim) {
        if let Some(text) = line.strip_prefix('#') {
            comment.push(text.trim());
        } else if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = format!("{name}.");
            comment.clear();
        } else if let Some((key, value)) = line.split_once('=') {
            let setting = format!("{section}{}", key.trim());
            let value = value.trim();
            let default = if value == "\"\"" {
                "(empty)".to_string()
            } else {
                format!("`{value}`")
            };
            out.push_str(&format!(
                "| `{setting}` | `{}` | {default} | {} |\n",
                env_name(&setting),
                comment.join(" ").replace('|', "\\|")
            ));
            comment.clear();
        } else {
            // A blank line ends the file's header comment.
            comment.clear();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_defaults_carry_exactly_the_typed_settings() {
        // Every struct refuses unknown fields and has no serde defaults: a field missing
        // from the file, or a key the structs lack, fails here.
        let config = Config::defaults_in("./data").validated().unwrap();
        assert_eq!(config.server.bind, "127.0.0.1:8080");
        assert_eq!(known_settings().len(), 69, "{:?}", known_settings());
    }

    #[test]
    fn the_reference_in_docs_is_generated_from_the_defaults() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configuration.md");
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == reference_markdown(),
            "docs/configuration.md is stale: run `cargo run -- config --reference > docs/configuration.md`"
        );
        for setting in known_settings() {
            assert!(committed.contains(&format!("`{setting}`")), "{setting}");
        }
    }

    #[test]
    fn an_unknown_setting_names_the_closest_one() {
        let known = known_settings();
        let err = refuse_unknown(&known, "server.bindd", "x.toml", str::to_string).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown setting `server.bindd` in x.toml; did you mean `server.bind`?"
        );
        let err = refuse_unknown(
            &known,
            "server_bind",
            "variable STARYER__SERVER_BIND",
            env_name,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown setting `STARYER__SERVER_BIND` in variable STARYER__SERVER_BIND; \
             did you mean `STARYER__SERVER__BIND`?"
        );
        let err =
            refuse_unknown(&known, "stripe.secret_keyy", "x.toml", str::to_string).unwrap_err();
        assert!(err
            .to_string()
            .ends_with("did you mean `stripe.secret_key`?"));
    }

    #[test]
    fn values_are_validated_before_anything_starts() {
        let mut config = Config::defaults_in("./data");
        config.server.bind = "127.0.0.1:80800".into();
        assert!(config
            .validated()
            .unwrap_err()
            .to_string()
            .contains("server.bind"));
        let mut config = Config::defaults_in("./data");
        config.stripe.api_base = "api.stripe.com".into();
        assert!(config
            .validated()
            .unwrap_err()
            .to_string()
            .contains("stripe.api_base"));
    }

    #[test]
    fn the_printed_configuration_hides_secrets() {
        let mut config = Config::defaults_in("./data");
        config.stripe.secret_key = "sk_live_secret".into();
        config.database.url = "postgres://u:hunter2@db:5432/staryer".into();
        let printed = config.redacted_toml();
        assert!(!printed.contains("sk_live_secret") && !printed.contains("hunter2"));
        assert!(printed.contains("secret_key = \"<redacted>\""), "{printed}");
    }
}
