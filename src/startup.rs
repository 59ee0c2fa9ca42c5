//! Building and running the daemon: store, flusher, registry, HTTP server. `App::build`
//! binds its own listener (port 0 in tests) and starts loading the tenants in the
//! background; `/readyz` says ready once they are loaded. `App::run_until_stopped` serves
//! until a signal (or `stop`), then drains the group commit and closes the store.

use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{web, App as ActixApp, HttpServer};
use anyhow::Context;

use crate::ai::model::Suggester;
use crate::analytics::posthog::PosthogChannel;
use crate::analytics::projects::{Project, Projects};
use crate::analytics::summaries;
use crate::billing::reconcile::{self, Reconciler};
use crate::billing::reporter::{self, Reporter};
use crate::billing::Billing;
use crate::clock::{SharedClock, Stopping};
use crate::config::Config;
use crate::embeds::catalog::EmbedRegistry;
use crate::error::ApiError;
use crate::http::body::BodyLimits;
use crate::keys::material as keys;
use crate::notices::email::EmailChannel;
use crate::outbox::{self, Channel, Schedule};
use crate::sealing::{Sealer, SealingKeys};
use crate::sessions::service::Sessions;
use crate::state::{AppState, Integrations};
use crate::store::outbox::SecretColumn;
use crate::store::writer_hold::WriterHold;
use crate::store::{FlushHandle, Store, StoreError, StoreHealth};
use crate::telemetry;
use crate::tenants::actor::ActorSettings;
use crate::tenants::loader::{self, LoadError};
use crate::tenants::registry::Registry;
use crate::usage::service::UsageService;
use crate::users::service::Users;
use crate::web::session::BrowserSessions;
use crate::webhooks::channel::WebhookChannel;

/// How long a stopping daemon waits for its background loops' last round.
const BACKGROUND_GRACE: Duration = Duration::from_secs(10);

pub struct App {
    server: Server,
    port: u16,
    flusher: FlushHandle,
    store: Store,
    reporter: Option<actix::Addr<Reporter>>,
    reconciler: Option<actix::Addr<Reconciler>>,
    /// Let go when the daemon has stopped (after the store is closed).
    hold: WriterHold,
    /// Tells the background loops (outbox, summaries, watchers) to end, and their handles.
    stop_background: tokio::sync::watch::Sender<bool>,
    background: Vec<tokio::task::JoinHandle<()>>,
}

impl App {
    /// Binds the listener, takes the writer hold on the database, connects the store
    /// (running migrations) and starts loading. Nothing is written anywhere before the bind
    /// address and the hold are known good. Must run inside an actix system (the actors
    /// live there).
    pub async fn build(config: Config, clock: SharedClock) -> anyhow::Result<App> {
        // The recorder first, so that no metric set during start-up is lost.
        let metrics = telemetry::prometheus();
        let listener = TcpListener::bind(&config.server.bind)
            .with_context(|| format!("binding server.bind = {}", config.server.bind))?;
        let port = listener.local_addr()?.port();
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating data_dir {}", config.data_dir.display()))?;
        let database_url = config.database_url();
        let health = StoreHealth::up();
        let health_interval = Duration::from_millis(config.database.health_interval_ms);
        let hold = WriterHold::acquire(&database_url, health.clone(), health_interval).await?;
        let write_timeout = Duration::from_millis(config.database.write_timeout_ms);
        let store = Store::connect(
            &database_url,
            config.database.max_connections,
            write_timeout,
        )
        .await
        .context("connecting to the database")?;
        let admin_token_hash = keys::hash(&admin_token(&config)?);
        health.spawn_monitor(store.clone(), health_interval);
        let flusher = FlushHandle::spawn(
            store.clone(),
            health.clone(),
            config.ingest.queue_capacity,
            config.ingest.max_batch_writes,
            Duration::from_millis(config.ingest.fold_interval_ms.max(1)),
        );
        let settings = ActorSettings {
            store: store.clone(),
            flusher: flusher.clone(),
            clock: clock.clone(),
            key_retention_secs: config.ingest.idempotency_retention_hours as i64 * 3_600,
            maintenance_interval: Duration::from_secs(
                config.ingest.maintenance_interval_secs.max(1),
            ),
        };
        let billing = Billing::from_config(&config.stripe, store.clone(), clock.clone())?;
        let registry = Arc::new(Registry::default());
        let reporter = billing
            .clone()
            .map(|billing| Reporter::start(billing, registry.clone()));
        let reconciler = billing.clone().map(Reconciler::start);
        let billing_for_load = billing.clone();
        // The sealer first: the session signing keys are stored sealed.
        let sealer = Sealer::from_config(
            &SealingKeys {
                master_key: &config.security.master_key,
                previous_keys: &config.security.previous_master_keys,
                legacy_key: &config.secrets.sealing_key,
            },
            &config.data_dir,
        )?;
        let sessions = Arc::new(
            Sessions::load(store.clone(), clock.clone(), sealer.clone())
                .await
                .context("loading the customer session keys")?,
        );
        let embeds = Arc::new(EmbedRegistry::default());
        reseal_secrets(&store, &sealer)
            .await
            .context("sealing stored secrets under the current master key")?;
        let (stop_background, stopping) = tokio::sync::watch::channel(false);
        let (integrations, mut background) =
            start_integrations(&config, &store, &clock, &registry, &sealer, &stopping).await?;
        background.push(crate::experiments::watch::spawn(
            store.clone(),
            clock.clone(),
            embeds.clone(),
            Duration::from_millis(config.outbox.poll_interval_ms),
            stopping.clone(),
        ));
        background.push(crate::keys::service::spawn_use_writer(
            registry.clone(),
            store.clone(),
            Duration::from_secs(config.ingest.maintenance_interval_secs.max(1)),
            stopping.clone(),
        ));
        background.push(crate::privacy::retention::spawn(
            crate::privacy::retention::Retention::from_config(&config.retention),
            store.clone(),
            clock.clone(),
            Duration::from_secs(config.retention.interval_secs),
            stopping,
        ));
        let ready = Arc::new(AtomicBool::new(false));
        tracing::info!(
            version = %env!("CARGO_PKG_VERSION"),
            bind = %format!("{}:{port}", listener_host(&config.server.bind)),
            data_dir = %absolute(&config.data_dir).display(),
            store = %describe_database(&database_url),
            billing = %if billing.is_some() { "on" } else { "off" },
            stripe_webhooks = %if config.stripe.webhook_secret.is_empty() { "off" } else { "on" },
            email = %if integrations.email_enabled { "on" } else { "off" },
            ai = %if integrations.suggester.is_some() { "on" } else { "off" },
            "staryer started; loading counters"
        );
        let state = web::Data::new(AppState {
            registry: registry.clone(),
            usage: UsageService {
                flusher: flusher.clone(),
                health: health.clone(),
                clock: clock.clone(),
            },
            store: store.clone(),
            settings: settings.clone(),
            admin_token_hash,
            ready: ready.clone(),
            started_at: clock.now(),
            metrics,
            body_limits: Arc::new(BodyLimits::new(
                config.server.max_body_bytes,
                Duration::from_millis(config.server.body_timeout_ms),
                config.server.max_body_bytes_in_flight,
            )),
            billing,
            embeds: embeds.clone(),
            sessions,
            users: Users::new(
                store.clone(),
                clock.clone(),
                &config.dashboard,
                integrations.email_enabled,
            ),
            browsers: BrowserSessions::new(
                store.clone(),
                clock.clone(),
                &config.dashboard,
                &config.server.public_url,
            ),
            public_url: config.server.public_url.trim_end_matches('/').to_string(),
            sealer,
            integrations,
        });

        let mut server =
            HttpServer::new(move || {
                ActixApp::new()
                    .app_data(state.clone())
                    .app_data(web::QueryConfig::default().error_handler(|err, _| {
                        ApiError::bad_request("invalid_query", err.to_string()).into()
                    }))
                    .app_data(web::FormConfig::default().limit(64 * 1024).error_handler(
                        |err, _| ApiError::bad_request("invalid_form", err.to_string()).into(),
                    ))
                    .wrap(actix_web::middleware::from_fn(
                        crate::http::observe::observe,
                    ))
                    .configure(crate::http::routes)
                    .default_service(web::to(crate::http::unrouted::answer))
            })
            .listen(listener)?
            // Our own signal handling (`stop_on_signals`): actix's would stop forcibly on
            // SIGINT, cutting requests in flight.
            .disable_signals();
        if config.server.workers > 0 {
            server = server.workers(config.server.workers);
        }

        actix_rt::spawn(load_until_ready(
            settings,
            registry,
            embeds,
            billing_for_load,
            health,
            health_interval,
            ready,
        ));

        let server = server.run();
        actix_rt::spawn(stop_on_signals(server.handle()));
        Ok(App {
            server,
            port,
            flusher,
            store,
            reporter,
            reconciler,
            hold,
            stop_background,
            background,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server gracefully from elsewhere (tests).
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGINT/SIGTERM (or `handle().stop`), then commits what is queued and
    /// closes the store.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await?;
        if let Some(reporter) = &self.reporter {
            reporter.do_send(reporter::Stop);
        }
        if let Some(reconciler) = &self.reconciler {
            reconciler.do_send(reconcile::Stop);
        }
        // The background loops finish the round under way (a delivery in flight, say)
        // before the store closes; one that hangs is not waited for long.
        let _ = self.stop_background.send(true);
        let loops = futures::future::join_all(self.background);
        let _ = tokio::time::timeout(BACKGROUND_GRACE, loops).await;
        tracing::info!("stopping: draining the commit queue");
        self.flusher.drain().await;
        if let Err(err) = self.store.fold_all().await {
            tracing::warn!(error = %err, "the usage log stays unfolded; the next start folds it");
        }
        self.store.close().await;
        self.hold.release().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// SIGTERM or Ctrl-C: stop accepting, finish the requests in flight, then
/// `run_until_stopped` drains and closes. A second Ctrl-C stops at once (the commit queue
/// is still drained).
async fn stop_on_signals(server: ServerHandle) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut terminate), Ok(mut interrupt)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("cannot listen for signals; stop the daemon with SIGKILL");
        return;
    };
    let name = tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    };
    tracing::info!("{name} received: finishing the requests in flight, then stopping");
    let graceful = server.stop(true);
    tokio::select! {
        _ = graceful => {}
        _ = interrupt.recv() => {
            tracing::warn!("second SIGINT: stopping without waiting for requests in flight");
            server.stop(false).await;
        }
    }
}

/// Folds the log and reads every tenant back (their embeds and experiments too, and, with
/// billing on, who is not in good standing), then says ready. A store that refuses
/// (down, read-only) is marked down with its cause, which `/readyz` shows, and the fold is
/// tried again until it passes.
async fn load_until_ready(
    settings: ActorSettings,
    registry: Arc<Registry>,
    embeds: Arc<EmbedRegistry>,
    billing: Option<Billing>,
    health: StoreHealth,
    retry_interval: Duration,
    ready: Arc<AtomicBool>,
) {
    let started = std::time::Instant::now();
    while let Err(err) = settings.store.fold_all().await {
        health.mark_down(&err.to_string());
        tokio::time::sleep(retry_interval).await;
    }
    let loaded = match loader::load_all(&registry, &settings).await {
        // Embeds and experiments, with every exposure and conversion the fold put away.
        Ok(counters) => embeds.load(&settings.store).await.map(|()| counters),
        Err(err) => Err(err),
    };
    let loaded = match loaded {
        Ok(counters) => match &billing {
            // Usage answers show who is not in good standing from the first request.
            Some(billing) => billing
                .load_standings()
                .await
                .map(|()| counters)
                .map_err(LoadError::from),
            None => Ok(counters),
        },
        Err(err) => Err(err),
    };
    match loaded {
        Ok(counters) => {
            ready.store(true, Ordering::Release);
            tracing::info!(
                counters,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "counters loaded; ready"
            );
        }
        Err(err) => tracing::error!(error = %err, "loading tenants failed; not ready"),
    }
}

/// The data directory as an absolute path, for the log (relative paths are resolved
/// against the working directory, which an operator may not know).
fn absolute(path: &Path) -> std::path::PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The database in use, for the log: the SQLite file, or PostgreSQL's host, port,
/// database and user (never the password).
pub fn describe_database(url: &str) -> String {
    use std::str::FromStr;
    if url.starts_with("sqlite:") {
        return match sqlx::sqlite::SqliteConnectOptions::from_str(url) {
            Ok(options) => format!("SQLite {}", absolute(options.get_filename()).display()),
            Err(_) => "SQLite (unreadable URL)".into(),
        };
    }
    match sqlx::postgres::PgConnectOptions::from_str(url) {
        Ok(options) => format!(
            "PostgreSQL {}:{}/{} as {}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or("(default database)"),
            options.get_username()
        ),
        Err(_) => "PostgreSQL (unreadable URL)".into(),
    }
}

fn listener_host(bind: &str) -> &str {
    bind.rsplit_once(':').map_or(bind, |(host, _)| host)
}

/// The configured admin token, or the one kept in `data_dir/admin_token`, generated and
/// printed once on first start.
fn admin_token(config: &Config) -> anyhow::Result<String> {
    if !config.admin.token.is_empty() {
        return Ok(config.admin.token.clone());
    }
    let path = config.data_dir.join("admin_token");
    if path.exists() {
        return Ok(std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?
            .trim()
            .to_string());
    }
    let token = keys::generate_admin_token();
    write_private(&path, &token)?;
    // On stderr, so that stdout stays one log line (or JSON object) a line.
    eprintln!(
        "Generated the admin token (shown once; kept in {}):\n\n    {token}\n",
        path.display()
    );
    Ok(token)
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    Ok(())
}

/// Seals again, under the current master key, every stored secret sealed under another
/// (a previous master key, the first version's cipher): after one start, a rotated key can
/// leave `security.previous_master_keys`. A secret that opens under no key is left as it
/// is, and said so (its integration reports it too when it is used; a session signing key
/// that does not open stops the start before, in `Sessions::load`). Session signing keys
/// of earlier versions, stored in clear, are sealed.
async fn reseal_secrets(store: &Store, sealer: &Sealer) -> Result<(), StoreError> {
    let mut resealed = 0;
    for secret in store.sealed_secrets().await? {
        if sealer.is_current(&secret.sealed) {
            continue;
        }
        let owner = match secret.column {
            SecretColumn::WebhookSecret => {
                crate::webhooks::service::secret_owner(&secret.creator_id, &secret.row_id)
            }
            SecretColumn::PosthogKey => crate::analytics::projects::key_owner(&secret.creator_id),
            SecretColumn::SessionKey => crate::sessions::tokens::key_owner(&secret.row_id),
        };
        let opened = match secret.column {
            // In clear in rows of earlier versions: sealed now.
            SecretColumn::SessionKey => {
                crate::sessions::tokens::open_secret(sealer, &secret.row_id, &secret.sealed)
            }
            _ => sealer.open(&owner, &secret.sealed),
        };
        match opened {
            Ok(clear) => {
                store.reseal(&secret, &sealer.seal(&owner, &clear)).await?;
                resealed += 1;
            }
            Err(err) => {
                tracing::warn!(error = %err, ?secret.column, "a stored secret does not open")
            }
        }
    }
    if resealed > 0 {
        tracing::info!(
            resealed,
            "stored secrets sealed under the current master key"
        );
    }
    Ok(())
}

/// The outbox with a channel per integration that is on (each that is off says so once in
/// the log), the hourly usage summaries for analytics; answers what handlers need of them
/// and the loops' handles.
async fn start_integrations(
    config: &Config,
    store: &Store,
    clock: &SharedClock,
    registry: &Arc<Registry>,
    sealer: &Sealer,
    stopping: &Stopping,
) -> anyhow::Result<(Integrations, Vec<tokio::task::JoinHandle<()>>)> {
    let platform_project = (!config.posthog.api_key.is_empty()).then(|| Project {
        host: config.posthog.host.clone(),
        api_key: config.posthog.api_key.clone(),
    });
    let analytics = Arc::new(Projects::new(platform_project));
    analytics.load(
        store
            .posthog_settings()
            .await
            .context("loading the creators' PostHog projects")?,
        sealer,
    );
    let email = EmailChannel::from_config(&config.resend, store.clone(), registry.clone());
    let email_enabled = email.is_some();
    let mut channels: Vec<Arc<dyn Channel>> = vec![
        Arc::new(WebhookChannel::new(
            &config.webhooks,
            store.clone(),
            clock.clone(),
            sealer.clone(),
        )),
        Arc::new(PosthogChannel::new(
            &config.posthog,
            &config.webhooks,
            analytics.clone(),
            registry.clone(),
        )),
    ];
    if let Some(email) = email {
        channels.push(Arc::new(email));
    }
    let schedule = Schedule::from_config(&config.outbox);
    let summarizing = summaries::spawn(
        store.clone(),
        clock.clone(),
        analytics.clone(),
        schedule.poll_interval,
        stopping.clone(),
    );
    let mut background = outbox::spawn(
        store.clone(),
        clock.clone(),
        schedule,
        channels,
        stopping.clone(),
    );
    background.push(summarizing);
    let integrations = Integrations {
        email_enabled,
        allow_private_targets: config.webhooks.allow_private_targets,
        analytics,
        posthog_host: config.posthog.host.clone(),
        suggester: Suggester::from_config(&config.openai),
    };
    Ok((integrations, background))
}
