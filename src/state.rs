//! What every handler can reach: the shared state of the daemon, built by `startup` and
//! handed to the routes. It lives in a room of its own, below the routes and above the
//! services, so that the routes import it without importing the daemon's start-up.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::ai::model::Suggester;
use crate::analytics::projects::Projects;
use crate::billing::Billing;
use crate::embeds::catalog::EmbedRegistry;
use crate::error::ApiError;
use crate::keys::material::KeyHash;
use crate::sealing::Sealer;
use crate::sessions::service::Sessions;
use crate::store::Store;
use crate::tenants::actor::ActorSettings;
use crate::tenants::registry::Registry;
use crate::usage::service::UsageService;
use crate::users::service::Users;
use crate::web::session::BrowserSessions;

/// What every handler can reach.
pub struct AppState {
    pub registry: Arc<Registry>,
    pub usage: UsageService,
    pub store: Store,
    pub settings: ActorSettings,
    pub admin_token_hash: KeyHash,
    pub ready: Arc<AtomicBool>,
    /// When the daemon started (Unix seconds, its clock): rates "since start" divide by it.
    pub started_at: i64,
    pub metrics: PrometheusHandle,
    /// How request bodies are read (size, deadline, bytes in flight).
    pub body_limits: Arc<crate::http::body::BodyLimits>,
    /// `None` while billing is off (no Stripe key).
    pub billing: Option<Billing>,
    /// Every creator's embeds and experiments.
    pub embeds: Arc<EmbedRegistry>,
    pub sessions: Arc<Sessions>,
    /// Dashboard users: sign-in and the teams.
    pub users: Users,
    /// Signed-in browsers of the dashboard, the portal and the admin view.
    pub browsers: BrowserSessions,
    /// `server.public_url`, without a trailing slash; empty: from each request.
    pub public_url: String,
    /// Seals the secrets kept at rest.
    pub sealer: Sealer,
    pub integrations: Integrations,
}

/// What the handlers need of the integrations (the outbox delivers on its own).
pub struct Integrations {
    /// Whether notices go by email (a Resend key is set).
    pub email_enabled: bool,
    /// `webhooks.allow_private_targets`.
    pub allow_private_targets: bool,
    /// Where each creator's analytics go.
    pub analytics: Arc<Projects>,
    /// `posthog.host`: a creator's own project's host when it names none.
    pub posthog_host: String,
    /// `None` while AI suggestions are off.
    pub suggester: Option<Suggester>,
}

impl AppState {
    /// Where browsers reach the daemon: `server.public_url`, else the scheme and host the
    /// request came with.
    pub fn public_base(&self, req: &actix_web::HttpRequest) -> String {
        if !self.public_url.is_empty() {
            return self.public_url.clone();
        }
        let info = req.connection_info();
        format!("{}://{}", info.scheme(), info.host())
    }

    /// 503 until the tenants are loaded.
    pub fn ensure_ready(&self) -> Result<(), ApiError> {
        if self.ready.load(Ordering::Acquire) {
            Ok(())
        } else {
            Err(ApiError::unavailable(
                "not_ready",
                "the daemon is loading its counters; retry shortly",
            ))
        }
    }
}
