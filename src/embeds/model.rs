//! Embeds and their versions: what a creator configures, checked strictly. A config is
//! one of three kinds, each a closed JSON object (unknown fields refused) whose tiers and
//! meters must exist; the OpenAPI document carries each kind's JSON Schema, chosen by
//! `kind` (`if`/`then`), so a generated client knows what the server takes.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::schema::{Object, ObjectBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

use crate::error::ApiError;
use crate::meters::model::{parse_slug, slug_schema};
use crate::schema::{integer, or_null, parse_url, text, url_schema, NO_CONTROL};
use crate::tenants::config::TenantConfig;
use crate::usage::period::rfc3339;

/// Longest text a widget shows (a title, a button label), in characters.
const MAX_TEXT_CHARS: usize = 200;
/// Most tiers one pricing table shows.
const MAX_TABLE_TIERS: usize = 6;
/// Most meters one usage meter shows.
const MAX_SHOWN_METERS: usize = 20;
const COLOR_PATTERN: &str = "^#([0-9A-Fa-f]{3}|[0-9A-Fa-f]{6})$";
/// Font names and generic families: letters, digits, spaces, commas, quotes and dashes
/// (nothing that could close the CSS declaration it goes into).
const FONT_PATTERN: &str = r#"^[A-Za-z0-9 ,'"-]{1,100}$"#;
/// A BCP 47 language tag, loosely: `en`, `de-DE`, `zh-Hant-TW`.
const LOCALE_PATTERN: &str = "^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$";
const MAX_RADIUS_PX: i64 = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EmbedKind {
    /// Tiers with prices, caps, features and a buy button.
    PricingTable,
    /// One customer's usage against its caps (needs a customer token).
    UsageMeter,
    /// Shown to a customer near or at a cap, with an upgrade button (needs a customer
    /// token).
    UpgradePrompt,
}

impl EmbedKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EmbedKind::PricingTable => "pricing_table",
            EmbedKind::UsageMeter => "usage_meter",
            EmbedKind::UpgradePrompt => "upgrade_prompt",
        }
    }

    pub fn parse(text: &str) -> Option<EmbedKind> {
        serde_json::from_value(Value::String(text.into())).ok()
    }

    /// Whether the widget shows one customer, and so needs a customer token.
    pub fn needs_customer(self) -> bool {
        !matches!(self, EmbedKind::PricingTable)
    }

    /// The JSON Schema of this kind's config, whole: the schemas it refers to put in place
    /// of their references (for a reader without the API document, such as a model asked
    /// for a config).
    pub fn config_schema(self) -> Value {
        let mut parts = Vec::new();
        let root = match self {
            EmbedKind::PricingTable => {
                PricingTableConfig::schemas(&mut parts);
                PricingTableConfig::schema()
            }
            EmbedKind::UsageMeter => {
                UsageMeterConfig::schemas(&mut parts);
                UsageMeterConfig::schema()
            }
            EmbedKind::UpgradePrompt => {
                UpgradePromptConfig::schemas(&mut parts);
                UpgradePromptConfig::schema()
            }
        };
        let named: std::collections::HashMap<String, Value> = parts
            .into_iter()
            .map(|(name, schema)| (name, serde_json::to_value(schema).unwrap_or_default()))
            .collect();
        inline_refs(serde_json::to_value(root).unwrap_or_default(), &named, 0)
    }
}

/// `value` with each `{"$ref": "#/components/schemas/<name>"}` replaced by that schema.
fn inline_refs(value: Value, named: &std::collections::HashMap<String, Value>, depth: u8) -> Value {
    match value {
        Value::Object(map) => {
            let target = map
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
                .and_then(|name| named.get(name));
            match target {
                Some(schema) if depth < 8 => inline_refs(schema.clone(), named, depth + 1),
                _ => Value::Object(
                    map.into_iter()
                        .map(|(k, v)| (k, inline_refs(v, named, depth)))
                        .collect(),
                ),
            }
        }
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|v| inline_refs(v, named, depth))
                .collect(),
        ),
        other => other,
    }
}

/// Colours, font and corner radius; the widget sets them as CSS custom properties.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Theme {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = color_schema)]
    pub primary_color: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = color_schema)]
    pub background_color: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = color_schema)]
    pub text_color: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = font_schema)]
    pub font_family: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::schema::optional_whole_number"
    )]
    #[schema(schema_with = radius_schema)]
    pub radius_px: Option<i64>,
}

/// A field that may be left out or sent as `null` (the same thing).
fn optional_slug_schema() -> Schema {
    or_null(slug_schema())
}

fn optional_meter_list_schema() -> Schema {
    or_null(meter_list_schema())
}

fn color_schema() -> Schema {
    or_null(color_schema_not_null())
}

fn color_schema_not_null() -> Object {
    text(4, 7, COLOR_PATTERN, "A CSS hex colour: `#rgb` or `#rrggbb`")
}

fn font_schema() -> Schema {
    or_null(font_schema_not_null())
}

fn font_schema_not_null() -> Object {
    text(
        1,
        100,
        FONT_PATTERN,
        "A CSS font-family list: letters, digits, spaces, commas, quotes and dashes",
    )
}

fn radius_schema() -> Schema {
    or_null(radius_schema_not_null())
}

fn radius_schema_not_null() -> Object {
    integer(0, MAX_RADIUS_PX, "Corner radius in CSS pixels, 0 to 32")
}

fn locale_schema() -> Schema {
    or_null(locale_schema_not_null())
}

fn locale_schema_not_null() -> Object {
    text(
        2,
        35,
        LOCALE_PATTERN,
        "A BCP 47 language tag for prices and numbers (`en-US`, `de-DE`); default: the browser's",
    )
}

fn widget_text_schema() -> Schema {
    or_null(widget_text_schema_not_null())
}

fn widget_text_schema_not_null() -> Object {
    text(
        0,
        MAX_TEXT_CHARS,
        NO_CONTROL,
        "At most 200 characters, no control characters; shown as plain text",
    )
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PricingTexts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = widget_text_schema)]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = widget_text_schema)]
    pub subtitle: Option<String>,
    /// The buy button's label; default "Subscribe".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = widget_text_schema)]
    pub cta: Option<String>,
    /// The highlighted tier's label; default "Most popular".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = widget_text_schema)]
    pub highlight_label: Option<String>,
}

/// `pricing_table`: tiers side by side, each with a buy button (Stripe Checkout).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PricingTableConfig {
    /// Tier keys in the order shown, 1 to 6, each once.
    #[schema(schema_with = tier_list_schema)]
    pub tiers: Vec<String>,
    /// One of `tiers`, marked as the one to pick.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = optional_slug_schema)]
    pub highlight: Option<String>,
    #[serde(default)]
    pub texts: PricingTexts,
    #[serde(default)]
    pub theme: Theme,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = locale_schema)]
    pub locale: Option<String>,
    /// Where Stripe Checkout sends the buyer after paying.
    #[schema(schema_with = url_schema)]
    pub success_url: String,
    /// Where Stripe Checkout sends a buyer who turns back.
    #[schema(schema_with = url_schema)]
    pub cancel_url: String,
}

fn tier_list_schema() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(slug_schema())
        .min_items(Some(1))
        .max_items(Some(MAX_TABLE_TIERS))
        .unique_items(true)
        .description(Some("Tier keys in the order shown, 1 to 6, each once"))
        .build()
}

fn meter_list_schema() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(slug_schema())
        .max_items(Some(MAX_SHOWN_METERS))
        .unique_items(true)
        .description(Some(
            "Meter keys in the order shown, each once; default: every meter the customer's \
             tier caps",
        ))
        .build()
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageTexts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = widget_text_schema)]
    pub title: Option<String>,
    /// Shown without a customer token; default "Sign in to see your usage."
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = widget_text_schema)]
    pub signed_out: Option<String>,
}

/// `usage_meter`: the customer's usage of each meter against its cap.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageMeterConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = optional_meter_list_schema)]
    pub meters: Option<Vec<String>>,
    #[serde(default)]
    pub texts: UsageTexts,
    #[serde(default)]
    pub theme: Theme,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = locale_schema)]
    pub locale: Option<String>,
}

/// When an upgrade prompt shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ShowAt {
    /// Once usage passes the cap's `warn_at`.
    #[default]
    Warn,
    /// Once the cap is reached.
    Block,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromptTexts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = widget_text_schema)]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = widget_text_schema)]
    pub body: Option<String>,
    /// The upgrade button's label; default "Upgrade".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = widget_text_schema)]
    pub cta: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = widget_text_schema)]
    pub signed_out: Option<String>,
}

/// `upgrade_prompt`: shown when the customer nears (or hits) a cap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpgradePromptConfig {
    /// The meter watched; default: any meter the customer's tier caps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = optional_slug_schema)]
    pub meter: Option<String>,
    #[serde(default)]
    pub show_at: ShowAt,
    /// The tier offered.
    #[schema(schema_with = slug_schema)]
    pub upgrade_to: String,
    #[serde(default)]
    pub texts: PromptTexts,
    #[serde(default)]
    pub theme: Theme,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = locale_schema)]
    pub locale: Option<String>,
    #[schema(schema_with = url_schema)]
    pub success_url: String,
    #[schema(schema_with = url_schema)]
    pub cancel_url: String,
}

/// A checked configuration of one kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmbedConfig {
    PricingTable(PricingTableConfig),
    UsageMeter(UsageMeterConfig),
    UpgradePrompt(UpgradePromptConfig),
}

fn invalid_config(message: impl Into<String>) -> ApiError {
    ApiError::invalid("invalid_config", message)
}

fn unknown_tier(key: &str) -> ApiError {
    ApiError::invalid(
        "unknown_tier",
        format!("config names tier `{key}`, which does not exist"),
    )
}

fn unknown_meter(key: &str) -> ApiError {
    ApiError::invalid(
        "unknown_meter",
        format!("config names meter `{key}`, which does not exist"),
    )
}

/// Reads `value` as `T`, naming the offending field (`config.texts.title: …`).
fn read<T: for<'de> Deserialize<'de>>(value: Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let at = if path == "." {
            "config".to_string()
        } else {
            format!("config.{path}")
        };
        invalid_config(format!("{at}: {}", err.inner()))
    })
}

fn check_text(field: &str, text: &Option<String>) -> Result<(), ApiError> {
    match text {
        Some(text)
            if text.chars().count() > MAX_TEXT_CHARS || text.chars().any(char::is_control) =>
        {
            Err(invalid_config(format!(
                "config.{field} must be at most {MAX_TEXT_CHARS} characters, without control characters"
            )))
        }
        _ => Ok(()),
    }
}

fn check_pattern(field: &str, value: &Option<String>, pattern: &str) -> Result<(), ApiError> {
    match value {
        Some(value) if !regex::Regex::new(pattern).is_ok_and(|re| re.is_match(value)) => Err(
            invalid_config(format!("config.{field} does not match {pattern}")),
        ),
        _ => Ok(()),
    }
}

fn check_look(theme: &Theme, locale: &Option<String>) -> Result<(), ApiError> {
    for (field, color) in [
        ("theme.primary_color", &theme.primary_color),
        ("theme.background_color", &theme.background_color),
        ("theme.text_color", &theme.text_color),
    ] {
        check_pattern(field, color, COLOR_PATTERN)?;
    }
    check_pattern("theme.font_family", &theme.font_family, FONT_PATTERN)?;
    if theme
        .radius_px
        .is_some_and(|r| !(0..=MAX_RADIUS_PX).contains(&r))
    {
        return Err(invalid_config(format!(
            "config.theme.radius_px must be 0–{MAX_RADIUS_PX}"
        )));
    }
    check_pattern("locale", locale, LOCALE_PATTERN)
}

fn check_urls(success_url: &str, cancel_url: &str) -> Result<(), ApiError> {
    parse_url("config.success_url", success_url)?;
    parse_url("config.cancel_url", cancel_url)
}

fn check_tier(config: &TenantConfig, key: &str) -> Result<(), ApiError> {
    parse_slug("tier", key)?;
    config
        .tier_id(key)
        .map(|_| ())
        .ok_or_else(|| unknown_tier(key))
}

fn check_meter(config: &TenantConfig, key: &str) -> Result<(), ApiError> {
    parse_slug("meter", key)?;
    config
        .meter_id(key)
        .map(|_| ())
        .ok_or_else(|| unknown_meter(key))
}

fn check_unique(field: &str, keys: &[String]) -> Result<(), ApiError> {
    let distinct: BTreeSet<&String> = keys.iter().collect();
    if distinct.len() == keys.len() {
        Ok(())
    } else {
        Err(invalid_config(format!("config.{field} names a key twice")))
    }
}

impl EmbedConfig {
    /// Checks `value` as a config of `kind` against the creator's tiers and meters.
    pub fn parse(kind: EmbedKind, value: Value, tenant: &TenantConfig) -> Result<Self, ApiError> {
        if !value.is_object() {
            return Err(invalid_config("config must be a JSON object"));
        }
        // serde would take an array for a struct (its fields in order): only objects here.
        for part in ["theme", "texts"] {
            if value
                .get(part)
                .is_some_and(|v| !v.is_object() && !v.is_null())
            {
                return Err(invalid_config(format!(
                    "config.{part} must be a JSON object"
                )));
            }
        }
        match kind {
            EmbedKind::PricingTable => {
                let config: PricingTableConfig = read(value)?;
                if config.tiers.is_empty() || config.tiers.len() > MAX_TABLE_TIERS {
                    return Err(invalid_config(format!(
                        "config.tiers must name 1–{MAX_TABLE_TIERS} tiers"
                    )));
                }
                check_unique("tiers", &config.tiers)?;
                for tier in &config.tiers {
                    check_tier(tenant, tier)?;
                }
                if let Some(highlight) = &config.highlight {
                    if !config.tiers.contains(highlight) {
                        return Err(invalid_config(
                            "config.highlight must be one of config.tiers",
                        ));
                    }
                }
                let texts = &config.texts;
                check_text("texts.title", &texts.title)?;
                check_text("texts.subtitle", &texts.subtitle)?;
                check_text("texts.cta", &texts.cta)?;
                check_text("texts.highlight_label", &texts.highlight_label)?;
                check_look(&config.theme, &config.locale)?;
                check_urls(&config.success_url, &config.cancel_url)?;
                Ok(EmbedConfig::PricingTable(config))
            }
            EmbedKind::UsageMeter => {
                let config: UsageMeterConfig = read(value)?;
                if let Some(meters) = &config.meters {
                    if meters.len() > MAX_SHOWN_METERS {
                        return Err(invalid_config(format!(
                            "config.meters may name at most {MAX_SHOWN_METERS} meters"
                        )));
                    }
                    check_unique("meters", meters)?;
                    for meter in meters {
                        check_meter(tenant, meter)?;
                    }
                }
                check_text("texts.title", &config.texts.title)?;
                check_text("texts.signed_out", &config.texts.signed_out)?;
                check_look(&config.theme, &config.locale)?;
                Ok(EmbedConfig::UsageMeter(config))
            }
            EmbedKind::UpgradePrompt => {
                let config: UpgradePromptConfig = read(value)?;
                if let Some(meter) = &config.meter {
                    check_meter(tenant, meter)?;
                }
                check_tier(tenant, &config.upgrade_to)?;
                let texts = &config.texts;
                check_text("texts.title", &texts.title)?;
                check_text("texts.body", &texts.body)?;
                check_text("texts.cta", &texts.cta)?;
                check_text("texts.signed_out", &texts.signed_out)?;
                check_look(&config.theme, &config.locale)?;
                check_urls(&config.success_url, &config.cancel_url)?;
                Ok(EmbedConfig::UpgradePrompt(config))
            }
        }
    }

    /// Reads a stored config back (checked when it was made).
    pub fn from_stored(kind: EmbedKind, text: &str) -> Result<Self, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let read = |value| -> Result<Self, serde_json::Error> {
            Ok(match kind {
                EmbedKind::PricingTable => {
                    EmbedConfig::PricingTable(serde_json::from_value(value)?)
                }
                EmbedKind::UsageMeter => EmbedConfig::UsageMeter(serde_json::from_value(value)?),
                EmbedKind::UpgradePrompt => {
                    EmbedConfig::UpgradePrompt(serde_json::from_value(value)?)
                }
            })
        };
        read(value).map_err(|e| e.to_string())
    }

    pub fn to_json(&self) -> Value {
        let value = match self {
            EmbedConfig::PricingTable(config) => serde_json::to_value(config),
            EmbedConfig::UsageMeter(config) => serde_json::to_value(config),
            EmbedConfig::UpgradePrompt(config) => serde_json::to_value(config),
        };
        value.expect("a config always serializes")
    }

    /// The tiers the widget shows or sells, in order.
    pub fn tiers(&self) -> &[String] {
        match self {
            EmbedConfig::PricingTable(config) => &config.tiers,
            EmbedConfig::UsageMeter(_) => &[],
            EmbedConfig::UpgradePrompt(config) => std::slice::from_ref(&config.upgrade_to),
        }
    }

    /// Where Checkout sends the buyer back: (success, cancel); none for a usage meter.
    pub fn checkout_urls(&self) -> Option<(&str, &str)> {
        match self {
            EmbedConfig::PricingTable(c) => Some((&c.success_url, &c.cancel_url)),
            EmbedConfig::UpgradePrompt(c) => Some((&c.success_url, &c.cancel_url)),
            EmbedConfig::UsageMeter(_) => None,
        }
    }
}

/// One immutable version of an embed.
#[derive(Debug)]
pub struct Version {
    pub number: i64,
    pub config: EmbedConfig,
    pub created_at: i64,
}

/// An embed with all its versions (in memory; small).
#[derive(Debug)]
pub struct Embed {
    pub key: Arc<str>,
    pub kind: EmbedKind,
    /// Versions by number, from 1.
    pub versions: Vec<Arc<Version>>,
    pub published: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Embed {
    pub fn version(&self, number: i64) -> Option<&Arc<Version>> {
        usize::try_from(number - 1)
            .ok()
            .and_then(|at| self.versions.get(at))
    }

    pub fn published_version(&self) -> &Arc<Version> {
        self.version(self.published)
            .expect("the published version exists")
    }
}

/// `POST /v1/embeds`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEmbed {
    pub key: String,
    pub kind: EmbedKind,
    pub config: Value,
}

/// The config schema of each kind, chosen by `kind`.
impl PartialSchema for NewEmbed {
    fn schema() -> RefOr<Schema> {
        let mut embed = ObjectBuilder::new()
            .property("key", slug_schema())
            .required("key")
            .property("kind", Ref::from_schema_name(EmbedKind::name()))
            .required("kind")
            .property(
                "config",
                ObjectBuilder::new()
                    .schema_type(Type::Object)
                    .description(Some(
                        "The first version's config: its schema follows `kind` \
                         (PricingTableConfig, UsageMeterConfig, UpgradePromptConfig)",
                    )),
            )
            .required("config")
            .additional_properties(Some(
                utoipa::openapi::schema::AdditionalProperties::<Schema>::FreeForm(false),
            ))
            .build();
        let by_kind: Vec<Value> = [
            ("pricing_table", PricingTableConfig::name()),
            ("usage_meter", UsageMeterConfig::name()),
            ("upgrade_prompt", UpgradePromptConfig::name()),
        ]
        .into_iter()
        .map(|(kind, schema)| {
            json!({
                "if": {"properties": {"kind": {"const": kind}}},
                "then": {"properties": {"config": {"$ref": format!("#/components/schemas/{schema}")}}},
            })
        })
        .collect();
        embed.extensions = Some(Extensions::from_iter([("allOf", Value::Array(by_kind))]));
        embed.into()
    }
}

impl ToSchema for NewEmbed {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((EmbedKind::name().into_owned(), EmbedKind::schema()));
        for (name, schema) in [
            (PricingTableConfig::name(), PricingTableConfig::schema()),
            (UsageMeterConfig::name(), UsageMeterConfig::schema()),
            (UpgradePromptConfig::name(), UpgradePromptConfig::schema()),
        ] {
            schemas.push((name.into_owned(), schema));
        }
        PricingTableConfig::schemas(schemas);
        UsageMeterConfig::schemas(schemas);
        UpgradePromptConfig::schemas(schemas);
    }
}

/// `POST /v1/embeds/{key}/versions`: a config of the embed's kind.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewVersion {
    #[schema(schema_with = any_config_schema)]
    pub config: Value,
}

fn any_config_schema() -> Schema {
    utoipa::openapi::schema::OneOfBuilder::new()
        .item(Ref::from_schema_name(PricingTableConfig::name()))
        .item(Ref::from_schema_name(UsageMeterConfig::name()))
        .item(Ref::from_schema_name(UpgradePromptConfig::name()))
        .description(Some("A config of the embed's kind"))
        .into()
}

/// `POST /v1/embeds/{key}/publish`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Publish {
    #[serde(deserialize_with = "crate::schema::whole_number")]
    #[schema(minimum = 1)]
    pub version: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VersionView {
    pub version: i64,
    #[schema(value_type = Object)]
    pub config: Value,
    pub published: bool,
    pub created_at: String,
    /// Buy-button clicks in widgets showing this version (committed and folded: within a
    /// second or so).
    pub clicks: i64,
    /// Checkouts started from widgets showing this version.
    pub checkouts_started: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EmbedView {
    pub key: String,
    pub kind: EmbedKind,
    pub published_version: i64,
    pub created_at: String,
    pub updated_at: String,
    /// Oldest first (`GET /v1/embeds/{key}` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub versions: Option<Vec<VersionView>>,
}

impl EmbedView {
    pub fn of(embed: &Embed, with_versions: bool) -> Self {
        EmbedView {
            key: embed.key.to_string(),
            kind: embed.kind,
            published_version: embed.published,
            created_at: rfc3339(embed.created_at),
            updated_at: rfc3339(embed.updated_at),
            versions: with_versions.then(|| {
                embed
                    .versions
                    .iter()
                    .map(|version| VersionView {
                        version: version.number,
                        config: version.config.to_json(),
                        published: version.number == embed.published,
                        created_at: rfc3339(version.created_at),
                        clicks: 0,
                        checkouts_started: 0,
                    })
                    .collect()
            }),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedVersion {
    pub embed: String,
    pub version: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Snippet {
    /// The two tags to paste where the widget should appear.
    pub html: String,
}
