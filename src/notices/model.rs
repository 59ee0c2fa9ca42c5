//! Notice kinds, their templates and how a template is filled in. A template is the
//! creator's own text with `{{placeholders}}`; the values put in come from the event and
//! are the customer's or Stripe's, never trusted: escaped in the HTML part, stripped of
//! control characters everywhere.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::openapi::schema::{AdditionalProperties, Object, ObjectBuilder, Schema, Type};
use utoipa::PartialSchema;

use crate::error::ApiError;
use crate::outbox::model::{
    ENDPOINT_DISABLED, GRACE_ENDED, PAYMENT_FAILED, USAGE_LIMIT_REACHED, USAGE_OVERAGE_STARTED,
    USAGE_WARNING,
};
use crate::schema::{or_null, printable, text, NO_CONTROL};

/// The kinds a creator can turn off or reword, each with its built-in subject and text.
pub const KINDS: &[(&str, &str, &str)] = &[
    (
        USAGE_WARNING,
        "{{customer}} has used {{used}} of {{limit}} {{meter}}",
        "{{customer}} has used {{used}} of the {{limit}} {{meter}} in the {{tier}} plan this period (until {{period_end}}).",
    ),
    (
        USAGE_LIMIT_REACHED,
        "{{customer}} reached the {{meter}} limit",
        "{{customer}} has reached the limit of {{limit}} {{meter}} in the {{tier}} plan; more is refused until {{period_end}}.",
    ),
    (
        USAGE_OVERAGE_STARTED,
        "{{customer}} is past the {{meter}} limit",
        "{{customer}} has used {{used}} {{meter}}, past the {{limit}} in the {{tier}} plan; what is past the limit is billed as overage.",
    ),
    (
        PAYMENT_FAILED,
        "A payment from {{customer}} failed",
        "A payment of {{amount}} from {{customer}} failed. The plan stays as it is until {{grace_ends_at}}; after that, unless the payment goes through, the customer moves to the free plan.",
    ),
    (
        GRACE_ENDED,
        "{{customer}} moved to the free plan",
        "The grace period after a failed payment from {{customer}} ended unpaid: the customer is on the free plan now.",
    ),
    (
        ENDPOINT_DISABLED,
        "Webhook endpoint disabled: {{url}}",
        "Deliveries to {{url}} have failed since {{failing_since}}, so the endpoint is disabled. Fix it, enable it again (PATCH /v1/webhook_endpoints/{id}) and retry what it missed.",
    ),
];

/// Every placeholder a template may use; one the event does not carry reads empty.
pub const PLACEHOLDERS: &[&str] = &[
    "creator",
    "customer",
    "meter",
    "used",
    "limit",
    "tier",
    "period_start",
    "period_end",
    "amount",
    "grace_ends_at",
    "url",
    "failing_since",
];

/// Whether the kind goes to the customer as well as to the creator's notice address.
pub fn tells_customer(kind: &str) -> bool {
    kind != ENDPOINT_DISABLED
}

/// A kind's template as the creator sets it: every field optional (the built-in one stands
/// in for what is left out).
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateUpdate {
    /// Off: this kind sends no email (webhooks and analytics still go).
    pub enabled: Option<bool>,
    #[schema(schema_with = subject_schema)]
    pub subject: Option<String>,
    #[schema(schema_with = text_part_schema)]
    pub text: Option<String>,
    #[schema(schema_with = html_part_schema)]
    pub html: Option<String>,
}

/// An email address as `parse_email` takes it.
const EMAIL_PATTERN: &str = r#"^[^\s\x00-\x1F\x7F-\x9F<>,;"@]+@[^\s\x00-\x1F\x7F-\x9F<>,;"@]*\.[^\s\x00-\x1F\x7F-\x9F<>,;"@]*$"#;

fn subject_schema() -> Schema {
    or_null(text(
        1,
        200,
        NO_CONTROL,
        "The subject, one line, 1 to 200 characters, with placeholders",
    ))
}

fn part_schema(description: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(20_000))
        .description(Some(description))
        .build()
}

fn text_part_schema() -> Schema {
    or_null(part_schema(
        "The plain-text part, up to 20,000 characters, with placeholders",
    ))
}

fn html_part_schema() -> Schema {
    or_null(part_schema(
        "The HTML part, up to 20,000 characters, with placeholders (their values escaped); \
         empty: the text part, escaped, in a `<p>`",
    ))
}

fn notice_email_schema() -> Schema {
    or_null(text(
        3,
        254,
        EMAIL_PATTERN,
        "Where the creator's copy of every notice goes",
    ))
}

/// An object with one optional property per kind, and no other.
fn kinds_schema() -> Object {
    let mut kinds = ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)))
        .description(Some(
            "Per kind; a kind left out keeps the built-in template",
        ));
    for (kind, _, _) in KINDS {
        kinds = kinds.property(*kind, TemplateUpdate::schema());
    }
    kinds.build()
}

/// A kind's template in force.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Template {
    pub enabled: bool,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// `PUT /v1/notices`: replaces the notice settings.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoticesUpdate {
    /// Where the creator's copy of every notice goes; null: none.
    #[schema(schema_with = notice_email_schema)]
    pub notice_email: Option<String>,
    #[serde(default)]
    #[schema(schema_with = kinds_schema)]
    pub kinds: BTreeMap<String, TemplateUpdate>,
}

/// The notice settings in force.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Notices {
    /// Whether notices by email are on for the platform (a Resend key is set).
    pub email_enabled: bool,
    pub notice_email: Option<String>,
    /// Every kind, with the template in force.
    pub kinds: BTreeMap<String, Template>,
    /// The placeholders a template may use, as `{{name}}`.
    pub placeholders: Vec<String>,
}

impl NoticesUpdate {
    /// Checks kinds, lengths, the address and every placeholder.
    pub fn validate(&self) -> Result<(), ApiError> {
        if let Some(email) = &self.notice_email {
            parse_email(email)?;
        }
        for (kind, template) in &self.kinds {
            if !KINDS.iter().any(|(k, _, _)| k == kind) {
                return Err(ApiError::invalid(
                    "unknown_kind",
                    format!(
                        "`{}` is no notice kind; the kinds are {}",
                        printable(kind),
                        KINDS
                            .iter()
                            .map(|(k, _, _)| *k)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            let field = |name: &str| format!("kinds.{kind}.{name}");
            if let Some(subject) = &template.subject {
                if subject.trim().is_empty()
                    || subject.chars().count() > 200
                    || subject.chars().any(char::is_control)
                {
                    return Err(invalid_template(
                        &field("subject"),
                        "1 to 200 characters, one line",
                    ));
                }
            }
            for (name, part) in [("text", &template.text), ("html", &template.html)] {
                if part.as_ref().is_some_and(|p| p.chars().count() > 20_000) {
                    return Err(invalid_template(&field(name), "at most 20,000 characters"));
                }
            }
            for (name, part) in [
                ("subject", &template.subject),
                ("text", &template.text),
                ("html", &template.html),
            ] {
                if let Some(unknown) = part.as_deref().and_then(unknown_placeholder) {
                    return Err(ApiError::invalid(
                        "unknown_placeholder",
                        format!(
                            "{} uses {{{{{}}}}}; the placeholders are {}",
                            field(name),
                            printable(&unknown),
                            PLACEHOLDERS.join(", ")
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn invalid_template(field: &str, rule: &str) -> ApiError {
    ApiError::invalid("invalid_template", format!("{field}: {rule}"))
}

/// An email address as far as a notice needs: one `@`, something each side, no spaces or
/// control characters, at most 254 characters.
pub fn parse_email(email: &str) -> Result<(), ApiError> {
    let ok = email.chars().count() <= 254
        && !email
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>,;\"".contains(c))
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.contains('@')
        });
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "invalid_email",
            "notice_email is not an email address",
        ))
    }
}

/// The templates in force: the stored updates over the built-in ones.
pub fn effective(stored: &BTreeMap<String, TemplateUpdate>) -> BTreeMap<String, Template> {
    KINDS
        .iter()
        .map(|(kind, subject, text)| {
            let update = stored.get(*kind).cloned().unwrap_or_default();
            let text = update.text.unwrap_or_else(|| text.to_string());
            let html = update
                .html
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| format!("<p>{}</p>", escape_html(&text)));
            let template = Template {
                enabled: update.enabled.unwrap_or(true),
                subject: update.subject.unwrap_or_else(|| subject.to_string()),
                text,
                html,
            };
            (kind.to_string(), template)
        })
        .collect()
}

/// The first `{{name}}` in `template` that is no placeholder.
fn unknown_placeholder(template: &str) -> Option<String> {
    placeholders_in(template)
        .map(|(_, name)| name)
        .find(|name| !PLACEHOLDERS.contains(&name.as_str()))
}

/// Each `{{name}}` in `template`: its byte range and trimmed name.
fn placeholders_in(template: &str) -> impl Iterator<Item = (std::ops::Range<usize>, String)> + '_ {
    let mut from = 0;
    std::iter::from_fn(move || {
        let open = from + template[from..].find("{{")?;
        let close = open + template[open..].find("}}")?;
        from = close + 2;
        Some((
            open..close + 2,
            template[open + 2..close].trim().to_string(),
        ))
    })
}

/// `template` with each placeholder replaced by its value from `values`, passed through
/// `escape` (HTML escaping for the HTML part).
pub fn render(
    template: &str,
    values: &BTreeMap<&str, String>,
    escape: fn(&str) -> String,
) -> String {
    let mut out = String::with_capacity(template.len());
    let mut last = 0;
    for (range, name) in placeholders_in(template) {
        out.push_str(&template[last..range.start]);
        if let Some(value) = values.get(name.as_str()) {
            out.push_str(&escape(value));
        }
        last = range.end;
    }
    out.push_str(&template[last..]);
    out
}

/// The values an event's data gives its placeholders (a number or string each; other
/// JSON is left out).
pub fn values_of(data: &Value, creator: &str) -> BTreeMap<&'static str, String> {
    let mut values = BTreeMap::new();
    values.insert("creator", printable(creator));
    let fields: &[(&'static str, &str)] = &[
        ("customer", "customer_id"),
        ("meter", "meter"),
        ("used", "used"),
        ("limit", "limit"),
        ("tier", "tier"),
        ("period_start", "period_start"),
        ("period_end", "period_end"),
        ("amount", "amount"),
        ("grace_ends_at", "grace_ends_at"),
        ("url", "url"),
        ("failing_since", "failing_since"),
    ];
    for (placeholder, field) in fields {
        let value = match &data[*field] {
            Value::String(text) => printable(text),
            Value::Number(number) => number.to_string(),
            _ => continue,
        };
        values.insert(*placeholder, value);
    }
    values
}

pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_in_the_html_part_only() {
        let data = serde_json::json!({"customer_id": "<b>eve</b>", "used": 8, "limit": 10});
        let values = values_of(&data, "acme");
        assert_eq!(
            render(
                "{{customer}} used {{ used }}/{{limit}} {{meter}}",
                &values,
                printable
            ),
            "<b>eve</b> used 8/10 "
        );
        assert_eq!(
            render("<p>{{customer}}</p>", &values, escape_html),
            "<p>&lt;b&gt;eve&lt;/b&gt;</p>"
        );
    }

    #[test]
    fn templates_are_checked_before_they_are_kept() {
        let update = |kind: &str, subject: &str| NoticesUpdate {
            notice_email: None,
            kinds: BTreeMap::from([(
                kind.to_string(),
                TemplateUpdate {
                    subject: Some(subject.into()),
                    ..TemplateUpdate::default()
                },
            )]),
        };
        assert!(update("usage.warning", "{{customer}} at {{used}}")
            .validate()
            .is_ok());
        let err = update("usage.warning", "{{customr}}")
            .validate()
            .unwrap_err();
        assert_eq!(err.code, "unknown_placeholder");
        assert_eq!(
            update("usage.nope", "x").validate().unwrap_err().code,
            "unknown_kind"
        );
        assert_eq!(
            update("usage.warning", "two\nlines")
                .validate()
                .unwrap_err()
                .code,
            "invalid_template"
        );
    }
}
