//! The dashboard's forms, made into the JSON API's own requests (`NewMeter`, `NewTier`,
//! `TierPatch`) and read by the API's own parser, so a form is held to exactly the rules
//! the API holds a request to, with the same error codes. A form's numbers are checked
//! as quantities before they are written into the JSON; its texts are JSON-escaped.

use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::tenants::config::TenantConfig;
use crate::usage::quantity::Quantity;

/// A form's fields, in the order sent (`web::Form<Vec<(String, String)>>`).
pub type Fields = Vec<(String, String)>;

pub fn field<'a>(fields: &'a Fields, name: &str) -> &'a str {
    fields
        .iter()
        .find(|(key, _)| key == name)
        .map_or("", |(_, value)| value.trim())
}

/// A tier form as the API's body (read with `http::body::parse_json`): `key` (new tiers), `name`, `amount` (minor units),
/// `currency`, `interval`, `features` (comma-separated), `default` (a checkbox),
/// `trial_days`, and per live meter `limit.<meter>` (blank: no cap), `warn_at.<meter>`
/// (a fraction), `on_exceed.<meter>`.
pub fn tier_body(fields: &Fields, config: &TenantConfig, new: bool) -> Result<Vec<u8>, ApiError> {
    let number = |name: &str, text: &str| -> Result<Value, ApiError> {
        Quantity::parse_json_number(text).map_err(|_| {
            ApiError::invalid(
                "invalid_value",
                format!("{name} must be a number, not {text:?}"),
            )
        })?;
        serde_json::from_str(text)
            .map_err(|_| ApiError::invalid("invalid_value", format!("{name} must be a number")))
    };
    let mut body = Map::new();
    if new {
        body.insert("key".into(), json!(field(fields, "key")));
    }
    body.insert("name".into(), json!(field(fields, "name")));
    body.insert(
        "price".into(),
        json!({
            "amount": number("amount", or_zero(field(fields, "amount")))?,
            "currency": field(fields, "currency"),
            "interval": field(fields, "interval"),
        }),
    );
    let features: Vec<&str> = field(fields, "features")
        .split(',')
        .map(str::trim)
        .filter(|feature| !feature.is_empty())
        .collect();
    body.insert("features".into(), json!(features));
    body.insert("default".into(), json!(field(fields, "default") == "on"));
    body.insert(
        "trial_days".into(),
        number("trial_days", or_zero(field(fields, "trial_days")))?,
    );
    let mut caps = Map::new();
    for (_, meter) in config.live_meters() {
        let limit = field(fields, &format!("limit.{}", meter.key));
        if limit.is_empty() {
            continue;
        }
        let mut cap = Map::new();
        cap.insert("limit".into(), number("limit", limit)?);
        let warn_at = field(fields, &format!("warn_at.{}", meter.key));
        if !warn_at.is_empty() {
            cap.insert("warn_at".into(), number("warn_at", warn_at)?);
        }
        let on_exceed = field(fields, &format!("on_exceed.{}", meter.key));
        if !on_exceed.is_empty() {
            cap.insert("on_exceed".into(), json!(on_exceed));
        }
        caps.insert(meter.key.to_string(), Value::Object(cap));
    }
    body.insert("caps".into(), Value::Object(caps));
    Ok(serde_json::to_vec(&body).expect("JSON values serialize"))
}

/// A meter form (`key`, `name`, `unit`, `aggregation`, `reset`) as the API's body.
pub fn meter_body(fields: &Fields) -> Vec<u8> {
    let mut body = Map::new();
    for name in ["key", "aggregation", "reset"] {
        body.insert(name.into(), json!(field(fields, name)));
    }
    for name in ["name", "unit"] {
        let value = field(fields, name);
        if !value.is_empty() {
            body.insert(name.into(), json!(value));
        }
    }
    serde_json::to_vec(&body).expect("JSON values serialize")
}

fn or_zero(text: &str) -> &str {
    if text.is_empty() {
        "0"
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_number_field_cannot_inject_json() {
        let form = fields(&[
            ("name", "Pro\", \"default\": true, \"x\": \""),
            ("amount", "1, \"currency\": \"usd\""),
        ]);
        assert!(tier_body(&form, &TenantConfig::default(), false).is_err());
        let form = fields(&[
            ("name", "Pro\", \"x\": \""),
            ("amount", "900"),
            ("currency", "usd"),
            ("interval", "month"),
        ]);
        let body: Value =
            serde_json::from_slice(&tier_body(&form, &TenantConfig::default(), false).unwrap())
                .unwrap();
        assert_eq!(body["name"], "Pro\", \"x\": \"");
        assert_eq!(body["price"]["amount"], 900);
    }
}
