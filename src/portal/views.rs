//! The portal's pages, in the creator's name and colours.

use maud::{html, Markup};

use crate::customers::model::Usage;
use crate::portal::customer::PortalCustomer;
use crate::tenants::config::TenantConfig;
use crate::tiers::model::{Interval, TierView};
use crate::usage::series::Point;
use crate::web::chart;
use crate::web::layout::{csrf_field, money, page, quantity, Frame, SignedIn};

pub const NOTICES: [(&str, &str); 3] = [
    ("plan_changed", "Your plan was changed."),
    (
        "cancelled",
        "Your subscription ends at the end of the current period.",
    ),
    (
        "checkout_done",
        "Thank you: your payment is being confirmed.",
    ),
];

/// What the portal's home shows.
pub struct Home<'a> {
    pub creator_name: &'a str,
    pub usage: &'a Usage,
    /// Visible meters: `(key, name, unit, months)`.
    pub history: Vec<(String, String, String, Vec<Point>)>,
    pub invoices: Vec<serde_json::Value>,
    pub billing_on: bool,
    pub subscribed: bool,
}

fn frame<'a>(
    customer: Option<&'a PortalCustomer>,
    creator_name: &'a str,
    title: &'a str,
    notice: Option<&'a str>,
) -> Frame<'a> {
    Frame {
        title,
        product: creator_name,
        nav: &[],
        current: "",
        signed_in: customer.map(|customer| SignedIn {
            who: &customer.customer_id,
            sign_out: "/portal/sign-out",
            csrf: &customer.session.csrf,
        }),
        brand_css: customer.map(|_| "/portal/brand.css"),
        notice,
    }
}

/// The one-time link's page: one button posts the token.
pub fn enter(token: &str) -> Markup {
    page(
        &frame(None, "Customer portal", "Your account", None),
        html! {
            form.stack method="post" action="/portal/enter" {
                input type="hidden" name="token" value=(token);
                p { "This link opens your account once, in this browser." }
                p { button type="submit" { "Open my account" } }
            }
        },
    )
}

pub fn signed_out() -> Markup {
    page(
        &frame(None, "Customer portal", "Your link has expired", None),
        html! {
            p { "Portal links work once and for a short time. Ask for a new link where you got this one." }
        },
    )
}

pub fn home(
    customer: &PortalCustomer,
    config: &TenantConfig,
    home: &Home<'_>,
    notice: Option<&str>,
) -> Markup {
    let csrf = &customer.session.csrf;
    let usage = home.usage;
    let current = usage.tier.as_deref();
    let visible: Vec<&str> = home.history.iter().map(|(key, ..)| key.as_str()).collect();
    page(
        &frame(Some(customer), home.creator_name, "Your account", notice),
        html! {
            section.card {
                h2 { "Usage this period" }
                table {
                    thead { tr { th scope="col" { "Meter" } th scope="col" class="num" { "Used" } th scope="col" class="num" { "Included" } th scope="col" { span.visually-hidden { "Share used" } } th scope="col" { "Resets" } } }
                    tbody {
                        @for meter in usage.meters.iter().filter(|m| visible.contains(&m.meter.as_str())) {
                            tr {
                                th scope="row" { (meter_name(config, &meter.meter)) }
                                td.num { (quantity(meter.used)) }
                                td.num { @if let Some(limit) = meter.limit { (quantity(limit)) } @else { "unlimited" } }
                                td { @if let Some(limit) = meter.limit {
                                    @let share = if limit.micros() > 0 { (meter.used.micros() as f64 / limit.micros() as f64).clamp(0.0, 1.0) } else { 1.0 };
                                    progress value=(format!("{share:.3}")) max="1" aria-label=(format!("{} used of {}", quantity(meter.used), meter.meter)) {}
                                } }
                                td { (meter.period_end.as_deref().map_or("never", |end| &end[..10])) }
                            }
                        }
                    }
                }
            }
            @for (_, name, unit, months) in &home.history {
                section.card {
                    h2 { (name) " by month" }
                    (chart::columns(&format!("{name} by month"), &months.iter().map(|p| (p.start[..7].to_string(), p.value.to_string().parse().unwrap_or(0.0))).collect::<Vec<_>>(), unit))
                }
            }
            section.card {
                h2 { "Your plan" }
                @match current.and_then(|key| config.tier_id(key)).map(|id| TierView::from(&**config.tier(id))) {
                    Some(tier) => {
                        p { strong { (tier.name) } " — " (money(tier.price.amount, &tier.price.currency)) " per " (interval(&tier.price.interval)) }
                        ul { @for feature in &tier.features { li { (feature) } } }
                    },
                    None => p { "No plan yet." },
                }
            }
            section.card {
                h2 { "Change plan" }
                form.stack method="post" action="/portal/plan" {
                    (csrf_field(csrf))
                    fieldset {
                        legend { "Plans" }
                        @for tier in config.live_tiers().map(|t| TierView::from(&**t)) {
                            label {
                                input type="radio" name="tier" value=(tier.key) checked[current == Some(tier.key.as_str())] required;
                                " " strong { (tier.name) } " — " (money(tier.price.amount, &tier.price.currency)) " per " (interval(&tier.price.interval))
                                @let caps: Vec<_> = tier.caps.iter().filter(|(meter, _)| visible.contains(&meter.as_str())).collect();
                                @if !caps.is_empty() {
                                    span.muted { " (" @for (i, (meter, cap)) in caps.iter().enumerate() { @if i > 0 { ", " } (quantity(cap.limit)) " " (meter_name(config, meter)) } ")" }
                                }
                            }
                        }
                    }
                    p { button type="submit" { "Change plan" } }
                }
            }
            @if home.billing_on {
                section.card {
                    h2 { "Invoices" }
                    @if home.invoices.is_empty() { p.muted { "No invoices yet." } }
                    ul {
                        @for invoice in &home.invoices {
                            li {
                                (invoice["received_at"].as_str().map(|t| t[..10].to_string()).unwrap_or_default()) " — "
                                (invoice["type"].as_str().unwrap_or_default().replace(['.', '_'], " "))
                                @if let (Some(amount), Some(currency)) = (invoice["amount"].as_i64(), invoice["currency"].as_str()) { " — " (money(amount, currency)) }
                            }
                        }
                    }
                    form.inline method="post" action="/portal/payment-methods" {
                        (csrf_field(csrf))
                        button.secondary type="submit" { "Payment methods and receipts (Stripe)" }
                    }
                }
                @if home.subscribed {
                    section.card {
                        h2 { "Cancel" }
                        form.inline method="post" action="/portal/cancel" data-confirm="Cancel at the end of this period?" {
                            (csrf_field(csrf))
                            button.danger type="submit" { "Cancel my subscription" }
                        }
                    }
                }
            }
        },
    )
}

/// A meter's name for customers (its key when it has none left).
fn meter_name<'a>(config: &'a TenantConfig, key: &'a str) -> &'a str {
    config
        .meter_id(key)
        .map_or(key, |id| config.meter(id).name.as_str())
}

fn interval(interval: &Interval) -> &'static str {
    match interval {
        Interval::Month => "month",
        Interval::Year => "year",
    }
}
