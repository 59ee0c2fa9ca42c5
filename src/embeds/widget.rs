//! What a widget in a browser asks for: its embed's configuration (with the experiment's
//! variant for this visitor, and the customer's usage when it has a customer token), its
//! clicks, and a Stripe Checkout. Answered from memory; only a visitor's first sight of an
//! experiment, a click and a checkout write, through the group commit.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

use crate::audit::model::{Actor, Who};
use crate::billing::billing_off;
use crate::billing::checkout::{CheckoutView, Sale};
use crate::customers::model::{MeterUsage, Usage};
use crate::embeds::catalog::{CreatorEmbeds, PublicParts};
use crate::embeds::model::{Embed, EmbedConfig, EmbedKind, ShowAt, Version};
use crate::embeds::service::embed_not_found;
use crate::error::{ApiError, ErrorDetail};
use crate::experiments::live::{LiveExperiment, Seen};
use crate::experiments::model::{customer_identity, identity_field, visitor_identity};
use crate::experiments::service::{identities, tags};
use crate::meters::model::slug_schema;
use crate::outbox::model::{
    announcement, new_id, EMBED_CHECKOUT_STARTED, EMBED_CLICKED, EMBED_EXPOSED,
};
use crate::sessions::service::CustomerSession;
use crate::state::AppState;
use crate::store::{ActivityWrite, ExposureWrite, FlushJob};
use crate::tenants::config::TenantConfig;
use crate::tenants::registry::Creator;
use crate::tiers::model::{CapSpec, Price};
use crate::usage::decide::{decide, Decision};
use crate::usage::model::{id_schema, parse_id};
use crate::usage::quantity::Quantity;

const SECONDS_PER_DAY: i64 = 86_400;

/// A tier as a widget shows it.
#[derive(Debug, Serialize)]
pub struct PublicTier<'a> {
    pub key: &'a str,
    pub name: &'a str,
    pub price: &'a Price,
    pub caps: &'a std::collections::BTreeMap<String, CapSpec>,
    pub features: &'a [String],
}

#[derive(Debug, Serialize)]
pub struct PublicMeter<'a> {
    pub key: &'a str,
    pub name: &'a str,
    pub unit: &'a str,
}

/// Whether an upgrade prompt shows, and for which meter.
#[derive(Debug, Serialize, ToSchema)]
pub struct Prompt {
    pub show: bool,
    pub meter: Option<String>,
    pub used: Option<Quantity>,
    pub limit: Option<Quantity>,
}

/// The customer part of a widget's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct WidgetCustomer {
    pub customer_id: String,
    pub tier: Option<String>,
    pub usage: Vec<MeterUsage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<Prompt>,
}

/// `GET /v1/embed/{embed_key}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct WidgetView<'a> {
    pub embed: &'a str,
    pub kind: EmbedKind,
    pub version: i64,
    /// The running experiment this visitor takes part in.
    pub experiment: Option<&'a str>,
    pub variant: Option<&'a str>,
    /// The version's config.
    #[schema(value_type = Object)]
    pub config: &'a RawValue,
    /// The tiers shown (a pricing table's, an upgrade prompt's offer), in order:
    /// `{key, name, price, caps, features}`.
    #[schema(value_type = Vec<Object>)]
    pub tiers: &'a RawValue,
    /// The creator's meters `{key, name, unit}`, to name caps and usage.
    #[schema(value_type = Vec<Object>)]
    pub meters: &'a RawValue,
    /// With a customer token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer: Option<WidgetCustomer>,
}

/// Who is looking, and the version they see.
struct Shown {
    version: Arc<Version>,
    /// (experiment, variant index, the visitor's counted identity)
    experiment: Option<(Arc<LiveExperiment>, usize, Arc<str>)>,
}

/// A widget that shows one customer, asked without a customer token: 401, with the
/// published version's config beside the error, so that the widget can say "sign in" in
/// the creator's words and theme (`texts.signed_out`).
#[derive(Serialize)]
struct SignInRequired<'a> {
    error: ErrorDetail,
    config: &'a RawValue,
}

/// The widget's answer: its JSON, and whether it is the 401 of `SignInRequired`.
pub struct Answer {
    pub sign_in_required: bool,
    pub body: String,
}

impl Shown {
    fn published(embed: &Embed) -> Shown {
        Shown {
            version: embed.published_version().clone(),
            experiment: None,
        }
    }

    /// The variant's version for a visitor of the experiment (the published one should
    /// the variant's version be gone).
    fn variant(embed: &Embed, experiment: Arc<LiveExperiment>, seen: Seen) -> Shown {
        match embed.version(experiment.variants[seen.variant].version) {
            Some(version) => Shown {
                version: version.clone(),
                experiment: Some((experiment, seen.variant, seen.counted_as)),
            },
            None => Shown::published(embed),
        }
    }
}

/// The version `embed` shows on a view: the running experiment's variant, the visitor's
/// first exposure committed before the answer, else the published version.
async fn exposed(
    state: &AppState,
    catalog: &CreatorEmbeds,
    embed: &Embed,
    primary: Option<&Arc<str>>,
    also: Option<&Arc<str>>,
) -> Shown {
    let (Some(experiment), Some(primary)) = (catalog.running_experiment(&embed.key), primary)
    else {
        return Shown::published(embed);
    };
    let now = state.usage.now();
    let exposure = experiment.expose(primary, also, now);
    if !exposure.writes.is_empty() {
        let job = FlushJob {
            exposures: exposure.writes.clone(),
            announcements: exposure_analytics(state, &embed.key, &exposure.writes, now),
            ..FlushJob::default()
        };
        if let Err(err) = state.usage.commit(job).await {
            // The widget still shows; the visitor is counted at its next view.
            experiment.forget(&exposure.writes);
            tracing::warn!(error = %err.message, "an exposure could not be committed");
        }
    }
    let seen = experiment.seen(primary).unwrap_or(Seen {
        variant: exposure.variant,
        counted_as: primary.clone(),
    });
    Shown::variant(embed, experiment, seen)
}

/// The analytics event of each visitor's first sight of a variant (one per counted
/// visitor: an alias of a visitor already counted is not a second exposure), when the
/// creator's analytics go anywhere.
fn exposure_analytics(
    state: &AppState,
    embed: &str,
    writes: &[ExposureWrite],
    now: i64,
) -> Vec<crate::store::outbox::Announcement> {
    writes
        .iter()
        .filter(|w| w.counted_as == w.visitor && state.integrations.analytics.wants(&w.creator_id))
        .map(|w| {
            let mut data = serde_json::json!({
                "embed": embed,
                "experiment": &*w.experiment_key,
                "variant": &*w.variant,
            });
            let (field, id) = identity_field(&w.visitor);
            data[field] = id.into();
            let cause = format!("{EMBED_EXPOSED}:{}:{}", w.experiment_key, w.visitor);
            announcement(&w.creator_id, cause, EMBED_EXPOSED, data, now)
        })
        .collect()
}

/// What a widget's visitor was shown, for its clicks and checkouts (nothing is exposed
/// here): the embed, the version, and who the visitor is.
struct Seeing {
    embed: Arc<Embed>,
    shown: Shown,
    customer_id: Option<Arc<str>>,
    /// The visitor as the widget named it (`c:…` with a token, else `v:…`).
    identity: Arc<str>,
}

fn seeing(
    state: &AppState,
    creator: &Creator,
    embed_key: &str,
    visitor_id: &str,
    session: Option<CustomerSession>,
) -> Result<Seeing, ApiError> {
    parse_id("visitor_id", visitor_id.into())?;
    let catalog = state.embeds.of(&creator.tenant.id);
    let embed = catalog
        .embed(embed_key)
        .ok_or_else(|| embed_not_found(embed_key))?;
    let customer_id = session.map(|s| s.customer_id);
    let visitor = visitor_identity(visitor_id);
    let customer = customer_id.as_deref().map(customer_identity);
    let experiment = catalog.running_experiment(&embed.key);
    // The customer's assignment, else the browser's (the customer not yet aliased to it).
    let seen = experiment.as_ref().and_then(|experiment| {
        customer
            .as_ref()
            .and_then(|customer| experiment.seen(customer))
            .or_else(|| experiment.seen(&visitor))
    });
    let identity = customer.unwrap_or(visitor);
    let shown = match (experiment, seen) {
        (Some(experiment), Some(seen)) => Shown::variant(&embed, experiment, seen),
        _ => Shown::published(&embed),
    };
    Ok(Seeing {
        embed,
        shown,
        customer_id,
        identity,
    })
}

/// The widget's answer (see `WidgetView`).
pub async fn view(
    state: &AppState,
    creator: &Creator,
    embed_key: &str,
    visitor_id: Option<&str>,
    session: Option<CustomerSession>,
) -> Result<Answer, ApiError> {
    let catalog = state.embeds.of(&creator.tenant.id);
    let embed = catalog
        .embed(embed_key)
        .ok_or_else(|| embed_not_found(embed_key))?;
    let config = creator.tenant.config();
    if embed.kind.needs_customer() && session.is_none() {
        let version = embed.published_version();
        let public = catalog.rendered(&embed, version, &config, || {
            render_public(&config, &version.config)
        });
        let refusal = SignInRequired {
            error: ErrorDetail::new(
                "customer_token_required",
                "this widget shows one customer: give it a customer session token",
            ),
            config: &public.config,
        };
        return Ok(Answer {
            sign_in_required: true,
            body: serde_json::to_string(&refusal).expect("a refusal serializes"),
        });
    }
    let customer_id = session.as_ref().map(|s| s.customer_id.clone());
    let (primary, also) = identities(customer_id.as_deref(), visitor_id);
    let shown = exposed(state, &catalog, &embed, primary.as_ref(), also.as_ref()).await;
    let public = catalog.rendered(&embed, &shown.version, &config, || {
        render_public(&config, &shown.version.config)
    });
    let (experiment, variant) = match &shown.experiment {
        Some((experiment, variant, _)) => (
            Some(&*experiment.key),
            Some(experiment.variants[*variant].key.as_str()),
        ),
        None => (None, None),
    };
    let customer = customer_id.map(|id| {
        let usage = state.usage.usage_or_new(&creator.tenant, &id);
        let prompt = match &shown.version.config {
            EmbedConfig::UpgradePrompt(prompt) => Some(prompt_for(&config, prompt, &usage)),
            _ => None,
        };
        WidgetCustomer {
            customer_id: usage.customer_id,
            tier: usage.tier,
            usage: usage.meters,
            prompt,
        }
    });
    let view = WidgetView {
        embed: &embed.key,
        kind: embed.kind,
        version: shown.version.number,
        experiment,
        variant,
        config: &public.config,
        tiers: &public.tiers,
        meters: &public.meters,
        customer,
    };
    Ok(Answer {
        sign_in_required: false,
        body: serde_json::to_string(&view).expect("a widget view serializes"),
    })
}

/// One version's public parts, for the creator's current tiers and meters.
fn render_public(config: &TenantConfig, version: &EmbedConfig) -> PublicParts {
    let tiers: Vec<PublicTier> = version
        .tiers()
        .iter()
        .filter_map(|key| config.tier_id(key).map(|id| config.tier(id)))
        .map(|tier| PublicTier {
            key: &tier.key,
            name: &tier.definition.name,
            price: &tier.definition.price,
            caps: &tier.definition.caps,
            features: &tier.definition.features,
        })
        .collect();
    let meters: Vec<PublicMeter> = config
        .live_meters()
        .map(|(_, meter)| PublicMeter {
            key: &meter.key,
            name: &meter.name,
            unit: &meter.unit,
        })
        .collect();
    let raw = |json: String| RawValue::from_string(json).expect("serde_json writes JSON");
    PublicParts {
        config: raw(version.to_json().to_string()),
        tiers: raw(serde_json::to_string(&tiers).expect("tiers serialize")),
        meters: raw(serde_json::to_string(&meters).expect("meters serialize")),
    }
}

/// Whether the prompt shows: the watched meter (or the first capped one) past its cap's
/// warn fraction (`show_at: warn`) or at its limit (`block`), unless the customer is on
/// the offered tier already.
fn prompt_for(
    config: &TenantConfig,
    prompt: &crate::embeds::model::UpgradePromptConfig,
    usage: &Usage,
) -> Prompt {
    let on_offer = usage.tier.as_deref() == Some(prompt.upgrade_to.as_str());
    let tier = usage
        .tier
        .as_deref()
        .and_then(|key| config.tier_id(key))
        .map(|id| config.tier(id));
    let mut watched = usage
        .meters
        .iter()
        .filter(|m| prompt.meter.as_deref().is_none_or(|key| key == m.meter))
        .filter(|m| m.limit.is_some());
    let triggered = usage
        .meters
        .iter()
        .filter(|m| prompt.meter.as_deref().is_none_or(|key| key == m.meter))
        .find(|m| {
            let (Some(tier), Some(meter)) = (tier, config.meter_id(&m.meter)) else {
                return false;
            };
            let Some(cap) = tier.cap(meter) else {
                return false;
            };
            match prompt.show_at {
                ShowAt::Block => m.used >= cap.limit,
                ShowAt::Warn => {
                    let aggregation = config.meter(meter).aggregation;
                    decide(aggregation, Some(cap), m.used, Quantity::ZERO)
                        .is_ok_and(|outcome| outcome.decision != Decision::Allow)
                }
            }
        });
    let shown = triggered.or_else(|| watched.next());
    Prompt {
        show: triggered.is_some() && !on_offer,
        meter: shown.map(|m| m.meter.clone()),
        used: shown.map(|m| m.used),
        limit: shown.and_then(|m| m.limit),
    }
}

/// `POST /v1/embed/events`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WidgetEvent {
    #[schema(schema_with = slug_schema)]
    pub embed: String,
    #[schema(schema_with = id_schema)]
    pub visitor_id: String,
    #[serde(rename = "type")]
    pub kind: WidgetEventKind,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WidgetEventKind {
    Click,
    CheckoutStarted,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Recorded {
    pub recorded: bool,
}

/// Counts a click or a started checkout for the version (and variant) the visitor sees.
pub async fn record(
    state: &AppState,
    creator: &Creator,
    event: WidgetEvent,
    session: Option<CustomerSession>,
) -> Result<Recorded, ApiError> {
    let Seeing {
        embed,
        shown,
        identity,
        ..
    } = seeing(state, creator, &event.embed, &event.visitor_id, session)?;
    let (experiment_key, variant) = match &shown.experiment {
        Some((experiment, variant, _)) => (
            experiment.key.clone(),
            Arc::from(experiment.variants[*variant].key.as_str()),
        ),
        None => (Arc::<str>::from(""), Arc::<str>::from("")),
    };
    let now = state.usage.now();
    let (kind, event_type) = match event.kind {
        WidgetEventKind::Click => ("click", EMBED_CLICKED),
        WidgetEventKind::CheckoutStarted => ("checkout_started", EMBED_CHECKOUT_STARTED),
    };
    let mut announcements = Vec::new();
    if state.integrations.analytics.wants(&creator.tenant.id) {
        let mut data = serde_json::json!({
            "embed": &*embed.key,
            "version": shown.version.number,
            "experiment": (!experiment_key.is_empty()).then(|| experiment_key.to_string()),
            "variant": (!variant.is_empty()).then(|| variant.to_string()),
        });
        let (field, id) = identity_field(&identity);
        data[field] = id.into();
        let cause = format!("{event_type}:{}", new_id("click"));
        announcements.push(announcement(
            &creator.tenant.id,
            cause,
            event_type,
            data,
            now,
        ));
    }
    let job = FlushJob {
        announcements,
        activity: vec![ActivityWrite {
            creator_id: creator.tenant.id.clone(),
            embed_key: embed.key.clone(),
            version: shown.version.number,
            experiment_key,
            variant,
            kind: Arc::from(kind),
            day: now - now.rem_euclid(SECONDS_PER_DAY),
            count: 1,
        }],
        ..FlushJob::default()
    };
    state.usage.commit(job).await?;
    Ok(Recorded { recorded: true })
}

/// `POST /v1/embed/checkout`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WidgetCheckout {
    #[schema(schema_with = slug_schema)]
    pub embed: String,
    /// One of the tiers the widget offers.
    #[schema(schema_with = slug_schema)]
    pub tier: String,
    #[schema(schema_with = id_schema)]
    pub visitor_id: String,
}

/// A Stripe Checkout for the tier, for the token's customer (a subscribed one is moved by
/// a subscription update instead) or an anonymous buyer, tagged with what the visitor saw.
pub async fn checkout(
    state: &AppState,
    creator: &Creator,
    order: WidgetCheckout,
    session: Option<CustomerSession>,
) -> Result<CheckoutView, ApiError> {
    let billing = state.billing.as_ref().ok_or_else(billing_off)?;
    let Seeing {
        embed,
        shown,
        customer_id,
        identity,
    } = seeing(state, creator, &order.embed, &order.visitor_id, session)?;
    let (Some((success_url, cancel_url)), true) = (
        shown.version.config.checkout_urls(),
        shown.version.config.tiers().contains(&order.tier),
    ) else {
        return Err(ApiError::invalid(
            "tier_not_offered",
            format!(
                "embed `{}` does not offer tier `{}` to this visitor",
                embed.key, order.tier
            ),
        ));
    };
    // The visitor as the experiment counts it (`v:…` or `c:…`), else as the widget named it.
    let visitor = match &shown.experiment {
        Some((_, _, counted_as)) => counted_as.to_string(),
        None => identity.to_string(),
    };
    let mut sale_tags = vec![
        (tags::EMBED, embed.key.to_string()),
        (tags::VERSION, shown.version.number.to_string()),
        (tags::VISITOR, visitor),
    ];
    if let Some((experiment, variant, _)) = &shown.experiment {
        sale_tags.push((tags::EXPERIMENT, experiment.key.to_string()));
        sale_tags.push((tags::VARIANT, experiment.variants[*variant].key.clone()));
    }
    let sale = Sale {
        buyer: customer_id.as_deref(),
        tier: &order.tier,
        success_url,
        cancel_url,
        tags: sale_tags,
    };
    let who = Who::acting(Actor::Browser);
    billing.sell(creator, &who, &sale, None).await
}
