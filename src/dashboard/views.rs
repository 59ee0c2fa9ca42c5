//! The dashboard's pages. Each takes what its handler gathered and the member (for the
//! frame and the CSRF token); forms post to the dashboard's own paths, and pages show
//! change forms to those who may change (the server refuses the rest anyway).

use maud::{html, Markup};

use crate::customers::listing::CustomerPage;
use crate::customers::model::Usage;
use crate::dashboard::member::Member;
use crate::dashboard::overview::Overview;
use crate::embeds::model::Embed;
use crate::tenants::config::TenantConfig;
use crate::tiers::model::Tier;
use crate::usage::series::Point;
use crate::users::model::UserView;
use crate::web::chart;
use crate::web::layout::{action_button, csrf_field, money, page, quantity, Frame};
use crate::web::table::{table, Row};

/// The notices a change leaves, by the code its redirect carries.
pub const NOTICES: [(&str, &str); 16] = [
    ("meter_created", "The meter was created."),
    ("meter_deleted", "The meter was deleted."),
    ("tier_created", "The tier was created."),
    ("tier_saved", "The tier was saved."),
    ("tier_deleted", "The tier was deleted."),
    ("tier_changed", "The customer's tier was changed."),
    ("customer_erased", "The customer was erased."),
    ("published", "The version was published."),
    ("experiment_started", "The experiment was started."),
    ("experiment_stopped", "The experiment was stopped."),
    ("report_retried", "The report will be sent again."),
    ("key_revoked", "The key was revoked."),
    ("role_changed", "The role was changed."),
    ("user_removed", "The user was removed."),
    ("settings_saved", "The settings were saved."),
    ("password_set", "Your password is set; you are signed in."),
];

/// Sign-in, forgotten password and link pages: a frame with no navigation.
pub fn signed_out_page(title: &str, body: Markup) -> Markup {
    page(
        &Frame {
            title,
            product: "Staryer dashboard",
            nav: &[],
            current: "",
            signed_in: None,
            brand_css: None,
            notice: None,
        },
        body,
    )
}

pub fn sign_in(error: Option<&str>, email: &str) -> Markup {
    signed_out_page(
        "Sign in",
        html! {
            @if let Some(error) = error { p.error role="alert" { (error) } }
            form.stack.sign-in method="post" action="/dashboard/sign-in" {
                label for="email" { "Email" }
                input #email type="email" name="email" value=(email) autocomplete="username" required;
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="current-password" required;
                p { button type="submit" { "Sign in" } }
            }
            p { a href="/dashboard/forgot" { "Forgot your password?" } }
        },
    )
}

/// "Forgot your password": a form when email is on (`sent` after it was posted), else
/// the way through an owner.
pub fn forgot(email_on: bool, sent: bool) -> Markup {
    signed_out_page(
        "Forgot your password",
        html! {
            @if sent {
                p.notice role="status" { "If the address belongs to a dashboard user, a link to set a new password is on its way. It works once, for an hour." }
            }
            @if email_on {
                form.stack.sign-in method="post" action="/dashboard/forgot" {
                    label for="email" { "Email" }
                    input #email type="email" name="email" autocomplete="username" required;
                    p { button type="submit" { "Email me a link" } }
                }
            } @else {
                p { "Ask an owner of your team: the Team page makes a link that sets a new password (it works once, for an hour). Setting it ends every session you had." }
            }
            p { a href="/dashboard/sign-in" { "Back to sign-in" } }
        },
    )
}

pub fn set_password(token_path: &str, error: Option<&str>) -> Markup {
    signed_out_page(
        "Set your password",
        html! {
            @if let Some(error) = error { p.error role="alert" { (error) } }
            form.stack.sign-in method="post" action=(token_path) {
                label for="password" { "New password (at least 10 characters)" }
                input #password type="password" name="password" autocomplete="new-password" minlength="10" required;
                p { button type="submit" { "Set password and sign in" } }
            }
        },
    )
}

pub fn overview(member: &Member, figures: &Overview, notice: Option<&str>) -> Markup {
    let [allow, warn, block] = figures.decisions;
    page(
        &member.frame("Overview", "/dashboard", notice),
        html! {
            div.grid {
                section.card { h2 { "Customers" } p.figure { (figures.customers) } }
                section.card {
                    h2 { "Revenue, 30 days" }
                    @if figures.revenue.is_empty() { p.figure { "—" } }
                    @for row in &figures.revenue {
                        p.figure { (money(row.amount, &row.currency)) }
                        p.muted { (row.payments) " paid invoices" }
                    }
                }
                section.card {
                    h2 { "Notices sent, 30 days" }
                    @if figures.messages.is_empty() { p.figure { "0" } }
                    ul {
                        @for (integration, status, count) in &figures.messages {
                            li { (integration) " · " (status) ": " (count) }
                        }
                    }
                }
            }
            section.card {
                h2 { "Decisions since the daemon started" }
                (chart::shares("Decisions", &[("allow", allow, "allow"), ("warn", warn, "warn"), ("block", block, "block")]))
            }
            @for meter in &figures.meters {
                section.card {
                    h2 { (meter.name) " (" (meter.key) "), last 30 days" }
                    (chart::columns(&format!("{} per day", meter.name), &day_points(&meter.days), &meter.unit))
                    h3 { "Top customers this period" }
                    @if meter.top.is_empty() { p.muted { "No usage yet." } }
                    ol {
                        @for (customer, used) in &meter.top {
                            li {
                                a href=(customer_path(customer)) { (customer) }
                                " — " (quantity(*used)) " " (meter.unit)
                            }
                        }
                    }
                }
            }
        },
    )
}

/// `(label, value)` of each day, for a chart.
pub fn day_points(points: &[Point]) -> Vec<(String, f64)> {
    points
        .iter()
        .map(|point| {
            (
                point.start[..10].to_string(),
                point.value.to_string().parse().unwrap_or(0.0),
            )
        })
        .collect()
}

pub fn customer_path(customer_id: &str) -> String {
    format!("/dashboard/customers/{}", encode(customer_id))
}

/// A path segment, percent-encoded.
pub fn encode(segment: &str) -> String {
    let mut encoded = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

pub fn meters(member: &Member, config: &TenantConfig, notice: Option<&str>) -> Markup {
    let csrf = &member.session.csrf;
    let can_change = member.role.can_change();
    let rows: Vec<Row> = config
        .live_meters()
        .map(|(_, meter)| {
            let row = Row::of(&crate::meters::model::MeterView::from(&**meter));
            if can_change {
                row.with(action_button(
                    &format!("/dashboard/meters/{}/delete", meter.key),
                    csrf,
                    "Delete",
                    Some("Delete this meter and its usage?"),
                ))
            } else {
                row
            }
        })
        .collect();
    page(
        &member.frame("Meters", "/dashboard/meters", notice),
        html! {
            (table("Meters", &[("key", "Key"), ("name", "Name"), ("unit", "Unit"), ("aggregation", "Aggregation"), ("reset", "Reset"), ("created_at", "Created")], &rows))
            @if can_change {
                section.card {
                    h2 { "New meter" }
                    form.stack method="post" action="/dashboard/meters" {
                        (csrf_field(csrf))
                        label for="meter-key" { "Key" }
                        input #meter-key type="text" name="key" required pattern="[A-Za-z0-9][A-Za-z0-9_.\\-]*";
                        label for="meter-name" { "Name" }
                        input #meter-name type="text" name="name";
                        label for="meter-unit" { "Unit" }
                        input #meter-unit type="text" name="unit";
                        label for="meter-aggregation" { "Aggregation" }
                        select #meter-aggregation name="aggregation" {
                            option value="sum" { "sum" } option value="count" { "count" } option value="max" { "max" }
                        }
                        label for="meter-reset" { "Reset" }
                        select #meter-reset name="reset" {
                            option value="billing_cycle" { "billing cycle" } option value="month" { "month" }
                            option value="day" { "day" } option value="never" { "never" }
                        }
                        p { button type="submit" { "Create meter" } }
                    }
                }
            }
        },
    )
}

pub fn tiers(member: &Member, config: &TenantConfig, notice: Option<&str>) -> Markup {
    let rows: Vec<Row> = config
        .live_tiers()
        .map(|tier| {
            Row::of(&crate::tiers::model::TierView::from(&**tier)).with(html! {
                a href=(format!("/dashboard/tiers/{}", tier.key)) { "Edit" }
            })
        })
        .collect();
    page(
        &member.frame("Tiers", "/dashboard/tiers", notice),
        html! {
            (table("Tiers", &[("key", "Key"), ("name", "Name"), ("price.amount", "Price (minor units)"), ("price.currency", "Currency"), ("price.interval", "Every"), ("features", "Features"), ("default", "Default")], &rows))
            @if member.role.can_change() {
                section.card {
                    h2 { "New tier" }
                    (tier_form(member, config, None, "/dashboard/tiers"))
                }
            }
        },
    )
}

/// The form of a new tier, or of `tier`'s changes.
fn tier_form(member: &Member, config: &TenantConfig, tier: Option<&Tier>, action: &str) -> Markup {
    let definition = tier.map(crate::tiers::model::TierView::from);
    html! {
        form.stack method="post" action=(action) {
            (csrf_field(&member.session.csrf))
            @if tier.is_none() {
                label for="tier-key" { "Key" }
                input #tier-key type="text" name="key" required;
            }
            label for="tier-name" { "Name" }
            input #tier-name type="text" name="name" required value=[definition.as_ref().map(|d| d.name.clone())];
            label for="tier-amount" { "Price, in minor units (cents)" }
            input #tier-amount type="number" min="0" name="amount" value=(definition.as_ref().map_or(0, |d| d.price.amount));
            label for="tier-currency" { "Currency" }
            input #tier-currency type="text" name="currency" value=(definition.as_ref().map_or("usd".to_string(), |d| d.price.currency.clone()));
            label for="tier-interval" { "Every" }
            @let yearly = definition.as_ref().is_some_and(|d| matches!(d.price.interval, crate::tiers::model::Interval::Year));
            select #tier-interval name="interval" {
                option value="month" selected[!yearly] { "month" }
                option value="year" selected[yearly] { "year" }
            }
            label for="tier-features" { "Features (comma-separated)" }
            input #tier-features type="text" name="features" value=(definition.as_ref().map(|d| d.features.join(", ")).unwrap_or_default());
            label for="tier-trial" { "Trial days" }
            input #tier-trial type="number" min="0" name="trial_days" value=(definition.as_ref().map_or(0, |d| d.trial_days));
            label { input type="checkbox" name="default" checked[definition.as_ref().is_some_and(|d| d.default)]; " The default tier" }
            fieldset {
                legend { "Caps (leave a limit blank for no cap)" }
                table {
                    thead { tr { th scope="col" { "Meter" } th scope="col" { "Limit" } th scope="col" { "Warn at (fraction)" } th scope="col" { "Past the limit" } } }
                    tbody {
                        @for (_, meter) in config.live_meters() {
                            @let cap = definition.as_ref().and_then(|d| d.caps.get(&*meter.key));
                            tr {
                                th scope="row" { (meter.key) }
                                td { input type="text" inputmode="decimal" name=(format!("limit.{}", meter.key)) aria-label=(format!("Limit of {}", meter.key)) value=[cap.map(|c| c.limit.to_string())]; }
                                td { input type="text" inputmode="decimal" name=(format!("warn_at.{}", meter.key)) aria-label=(format!("Warn at, {}", meter.key)) value=[cap.map(|c| c.warn_at.to_string())]; }
                                td {
                                    @let overage = cap.is_some_and(|c| c.on_exceed == crate::usage::decide::OnExceed::Overage);
                                    select name=(format!("on_exceed.{}", meter.key)) aria-label=(format!("Past the limit of {}", meter.key)) {
                                        option value="block" selected[!overage] { "block" }
                                        option value="overage" selected[overage] { "count as overage" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            p { button type="submit" { @if tier.is_some() { "Save tier" } @else { "Create tier" } } }
        }
    }
}

pub fn tier(
    member: &Member,
    config: &TenantConfig,
    tier: &Tier,
    stripe: Option<&serde_json::Value>,
    notice: Option<&str>,
) -> Markup {
    let title = format!("Tier {}", tier.key);
    page(
        &member.frame(&title, "/dashboard/tiers", notice),
        html! {
            @if let Some(stripe) = stripe {
                section.card {
                    h2 { "At Stripe" }
                    p { "Status: " strong { (crate::web::table::cell(&stripe["status"])) } }
                    p.muted { "Product " (crate::web::table::cell(&stripe["product_id"])) ", price " (crate::web::table::cell(&stripe["price_id"])) }
                }
            }
            @if member.role.can_change() {
                section.card { h2 { "Change" } (tier_form(member, config, Some(tier), &format!("/dashboard/tiers/{}", tier.key))) }
                (action_button(&format!("/dashboard/tiers/{}/delete", tier.key), &member.session.csrf, "Delete tier", Some("Delete this tier?")))
            } @else {
                pre { (crate::web::layout::json(&serde_json::to_value(crate::tiers::model::TierView::from(tier)).unwrap_or_default())) }
            }
        },
    )
}

pub fn customers(
    member: &Member,
    config: &TenantConfig,
    listed: &CustomerPage,
    (q, tier): (&str, &str),
) -> Markup {
    let rows: Vec<Row> = listed
        .customers
        .iter()
        .map(|customer| {
            Row::of(customer)
                .with(html! { a href=(customer_path(&customer.customer_id)) { "Open" } })
        })
        .collect();
    page(
        &member.frame("Customers", "/dashboard/customers", None),
        html! {
            form.search method="get" action="/dashboard/customers" role="search" {
                label for="q" { "Search id or email " }
                input #q type="search" name="q" value=(q);
                " "
                label for="tier" { "Tier " }
                select #tier name="tier" {
                    option value="" { "any" }
                    @for t in config.live_tiers() { option value=(t.key) selected[&*t.key == tier] { (t.key) } }
                }
                " " button type="submit" { "Search" }
            }
            (table("Customers", &[("customer_id", "Customer"), ("email", "Email"), ("tier", "Tier"), ("created_at", "Since")], &rows))
            @if let Some(next) = &listed.next_cursor {
                p.pager { a href=(format!("/dashboard/customers?q={}&tier={}&cursor={}", encode(q), encode(tier), encode(next))) { "Older customers →" } }
            }
        },
    )
}

pub fn customer(
    member: &Member,
    config: &TenantConfig,
    usage: &Usage,
    history: &[(String, Vec<Point>, String)],
    notice: Option<&str>,
) -> Markup {
    let title = format!("Customer {}", usage.customer_id);
    let base = customer_path(&usage.customer_id);
    let csrf = &member.session.csrf;
    page(
        &member.frame(&title, "/dashboard/customers", notice),
        html! {
            section.card {
                p { "Tier: " strong { (usage.tier.as_deref().unwrap_or("—")) } }
                @if let Some(status) = &usage.billing_status { p { "Billing: " (status) } }
                table {
                    caption.muted { "Usage this period" }
                    thead { tr { th scope="col" { "Meter" } th scope="col" class="num" { "Used" } th scope="col" class="num" { "Limit" } th scope="col" { "Share" } th scope="col" { "Period" } } }
                    tbody {
                        @for meter in &usage.meters {
                            tr {
                                th scope="row" { (meter.meter) }
                                td.num { (quantity(meter.used)) }
                                td.num { @if let Some(limit) = meter.limit { (quantity(limit)) } @else { "—" } }
                                td {
                                    @if let Some(limit) = meter.limit {
                                        @let share = share(meter.used, limit);
                                        progress value=(format!("{share:.3}")) max="1" aria-label=(format!("{} of the cap of {}", quantity(meter.used), meter.meter)) {}
                                    }
                                }
                                td { (meter.period_start[..10]) " → " (meter.period_end.as_deref().map_or("", |end| &end[..10])) }
                            }
                        }
                    }
                }
            }
            @for (meter, points, unit) in history {
                section.card {
                    h2 { (meter) ", last 30 days" }
                    (chart::columns(&format!("{meter}, last 30 days"), &day_points(points), unit))
                }
            }
            @if member.role.can_change() {
                section.card {
                    h2 { "Change tier" }
                    form.stack method="post" action=(format!("{base}/tier")) {
                        (csrf_field(csrf))
                        label for="new-tier" { "Tier" }
                        select #new-tier name="tier" {
                            @for t in config.live_tiers() { option value=(t.key) selected[usage.tier.as_deref() == Some(&*t.key)] { (t.definition.name) " (" (t.key) ")" } }
                        }
                        p { button type="submit" { "Change tier" } }
                    }
                }
                section.card {
                    h2 { "Privacy" }
                    p { a href=(format!("{base}/export")) download { "Export everything about this customer (JSON)" } }
                    form.inline method="post" action=(format!("{base}/erase")) data-confirm="Erase this customer for good?" {
                        (csrf_field(csrf))
                        button.danger type="submit" { "Erase customer" }
                    }
                }
            }
        },
    )
}

fn share(used: crate::usage::quantity::Quantity, limit: crate::usage::quantity::Quantity) -> f64 {
    if limit.micros() <= 0 {
        return 1.0;
    }
    (used.micros() as f64 / limit.micros() as f64).clamp(0.0, 1.0)
}

pub fn embeds(member: &Member, views: &[serde_json::Value]) -> Markup {
    let rows: Vec<Row> = views
        .iter()
        .map(|view| {
            let key = view["key"].as_str().unwrap_or_default();
            Row {
                view: view.clone(),
                actions: Some(html! { a href=(format!("/dashboard/embeds/{key}")) { "Open" } }),
            }
        })
        .collect();
    page(
        &member.frame("Embeds", "/dashboard/embeds", None),
        html! {
            (table("Embeds", &[("key", "Key"), ("kind", "Kind"), ("published_version", "Published version"), ("updated_at", "Updated")], &rows))
            p.muted { "Embeds and their versions are made through the API (POST /v1/embeds); here you preview, publish and copy the snippet." }
        },
    )
}

pub fn embed(
    member: &Member,
    embed: &serde_json::Value,
    snippet: &str,
    ai_on: bool,
    notice: Option<&str>,
) -> Markup {
    let key = embed["key"].as_str().unwrap_or_default();
    let title = format!("Embed {key}");
    let csrf = &member.session.csrf;
    let versions = embed["versions"].as_array().cloned().unwrap_or_default();
    page(
        &member.frame(&title, "/dashboard/embeds", notice),
        html! {
            section.card {
                h2 { "Snippet" }
                pre #snippet { (snippet) }
                button.secondary type="button" data-copy="snippet" { "Copy" }
            }
            @for version in versions.iter().rev() {
                @let number = version["version"].as_i64().unwrap_or_default();
                section.card {
                    h2 { "Version " (number) @if version["published"].as_bool() == Some(true) { " " span.badge.allow { "published" } } }
                    p.muted { (version["clicks"]) " clicks, " (version["checkouts_started"]) " checkouts started" }
                    iframe.preview src=(format!("/dashboard/embeds/{key}/preview/{number}")) title=(format!("Preview of version {number}")) loading="lazy" {}
                    @if member.role.can_change() && version["published"].as_bool() != Some(true) {
                        form.inline method="post" action=(format!("/dashboard/embeds/{key}/publish")) {
                            (csrf_field(csrf))
                            input type="hidden" name="version" value=(number);
                            button type="submit" { "Publish version " (number) }
                        }
                    }
                }
            }
            @if ai_on && member.role.can_change() {
                section.card {
                    h2 { "Suggest a version (AI)" }
                    form.stack method="post" action=(format!("/dashboard/embeds/{key}/suggest")) {
                        (csrf_field(csrf))
                        label for="brief" { "What should the new version do better?" }
                        textarea #brief name="brief" required {}
                        p { button type="submit" { "Suggest (saved unpublished)" } }
                    }
                }
            }
        },
    )
}

/// A version as its widget would show its tiers: a server-side rendering for the
/// dashboard's preview frame.
pub fn preview(embed: &Embed, number: i64, config: &TenantConfig) -> Markup {
    let version = embed.version(number);
    page(
        &Frame {
            title: &format!("Preview of {} v{number}", embed.key),
            product: "Preview",
            nav: &[],
            current: "",
            signed_in: None,
            brand_css: None,
            notice: None,
        },
        html! {
            @match version {
                None => p { "No such version." },
                Some(version) => {
                    p.muted { (embed.kind.as_str()) }
                    div.grid {
                        @for key in version.config.tiers() {
                            @if let Some(tier) = config.tier_id(key).map(|id| crate::tiers::model::TierView::from(&**config.tier(id))) {
                                section.card {
                                    h2 { (tier.name) }
                                    p.figure { (money(tier.price.amount, &tier.price.currency)) }
                                    p.muted { "per " (match tier.price.interval { crate::tiers::model::Interval::Month => "month", crate::tiers::model::Interval::Year => "year" }) }
                                    ul {
                                        @for (meter, cap) in &tier.caps { li { (quantity(cap.limit)) " " (meter) } }
                                        @for feature in &tier.features { li { (feature) } }
                                    }
                                }
                            }
                        }
                    }
                    details { summary { "Configuration" } pre { (crate::web::layout::json(&version.config.to_json())) } }
                }
            }
        },
    )
}

pub fn experiments(member: &Member, views: &[serde_json::Value]) -> Markup {
    let rows: Vec<Row> = views
        .iter()
        .map(|view| {
            let key = view["key"].as_str().unwrap_or_default();
            Row {
                view: view.clone(),
                actions: Some(
                    html! { a href=(format!("/dashboard/experiments/{key}")) { "Results" } },
                ),
            }
        })
        .collect();
    page(
        &member.frame("Experiments", "/dashboard/experiments", None),
        html! {
            (table("Experiments", &[("key", "Key"), ("embed", "Embed"), ("goal", "Goal"), ("status", "Status"), ("started_at", "Started")], &rows))
        },
    )
}

pub fn experiment(
    member: &Member,
    view: &serde_json::Value,
    results: &serde_json::Value,
    notice: Option<&str>,
) -> Markup {
    let key = view["key"].as_str().unwrap_or_default();
    let title = format!("Experiment {key}");
    let status = view["status"].as_str().unwrap_or_default();
    let csrf = &member.session.csrf;
    let rows: Vec<Row> = results["variants"]
        .as_array()
        .map(|variants| {
            variants
                .iter()
                .map(|v| Row {
                    view: v.clone(),
                    actions: None,
                })
                .collect()
        })
        .unwrap_or_default();
    page(
        &member.frame(&title, "/dashboard/experiments", notice),
        html! {
            p { "Status: " strong { (status) } " · goal: " (crate::web::table::cell(&view["goal"])) }
            @if results["srm_alert"].as_bool() == Some(true) {
                p.error role="alert" { "Sample ratio mismatch (p = " (crate::web::table::cell(&results["srm_p_value"])) "): visitors are not split as the weights say. Check the assignment before trusting the results." }
            }
            p { @if results["ready"].as_bool() == Some(true) { span.badge.allow { "ready" } " enough data to decide" } @else { span.badge.warn { "not ready" } " keep it running" } }
            (table("Variants", &[("key", "Variant"), ("visitors", "Visitors"), ("conversions", "Conversions"), ("conversion_rate", "Rate"), ("revenue", "Revenue"), ("chance_to_beat_control", "Chance to beat control")], &rows))
            @if member.role.can_change() {
                @if status == "draft" { (action_button(&format!("/dashboard/experiments/{key}/start"), csrf, "Start", None)) }
                @if status == "running" { (action_button(&format!("/dashboard/experiments/{key}/stop"), csrf, "Stop", Some("Stop this experiment?"))) }
            }
        },
    )
}

pub fn billing(
    member: &Member,
    account: Option<&serde_json::Value>,
    reports: &[serde_json::Value],
    events: &[serde_json::Value],
    notice: Option<&str>,
) -> Markup {
    let csrf = &member.session.csrf;
    let report_rows: Vec<Row> = reports
        .iter()
        .map(|report| {
            let failed = report["state"].as_str() == Some("failed");
            let identifier = report["identifier"].as_str().unwrap_or_default();
            Row {
                view: report.clone(),
                actions: (failed && member.role.can_change()).then(|| {
                    action_button(
                        &format!("/dashboard/billing/reports/{}/retry", encode(identifier)),
                        csrf,
                        "Retry",
                        None,
                    )
                }),
            }
        })
        .collect();
    let event_rows: Vec<Row> = events
        .iter()
        .map(|e| Row {
            view: e.clone(),
            actions: None,
        })
        .collect();
    page(
        &member.frame("Billing", "/dashboard/billing", notice),
        html! {
            @match account {
                None => p.muted { "Billing is off on this platform (no Stripe key)." },
                Some(account) => section.card {
                    h2 { "Stripe account" }
                    p { "Connected account: " strong { (crate::web::table::cell(&account["account_id"])) } }
                    @if let Some(tiers) = account["tiers"].as_object() {
                        ul { @for (tier, sync) in tiers { li { (tier) ": " (crate::web::table::cell(&sync["status"])) } } }
                    }
                },
            }
            h2 { "Usage reports to Stripe" }
            (table("Reports", &[("identifier", "Identifier"), ("customer_id", "Customer"), ("meter", "Meter"), ("value", "Value"), ("state", "State"), ("attempts", "Attempts"), ("last_error", "Last error")], &report_rows))
            h2 { "Billing events" }
            (table("Events", &[("type", "Type"), ("customer_id", "Customer"), ("amount", "Amount"), ("currency", "Currency"), ("status", "Status"), ("received_at", "Received")], &event_rows))
        },
    )
}

pub fn notices(
    member: &Member,
    settings: &serde_json::Value,
    endpoints: &[serde_json::Value],
    messages: &[serde_json::Value],
) -> Markup {
    let endpoint_rows: Vec<Row> = endpoints
        .iter()
        .map(|e| Row {
            view: e.clone(),
            actions: None,
        })
        .collect();
    let message_rows: Vec<Row> = messages
        .iter()
        .map(|m| Row {
            view: m.clone(),
            actions: None,
        })
        .collect();
    page(
        &member.frame("Notices & webhooks", "/dashboard/notices", None),
        html! {
            section.card {
                h2 { "Email notices" }
                p { "Email: " strong { @if settings["email_enabled"].as_bool() == Some(true) { "on" } @else { "off (no Resend key on this platform)" } } }
                p { "Notice address: " (crate::web::table::cell(&settings["notice_email"])) }
            }
            h2 { "Webhook endpoints" }
            (table("Endpoints", &[("url", "URL"), ("events", "Events"), ("enabled", "Enabled"), ("disabled_reason", "Disabled because"), ("failing_since", "Failing since")], &endpoint_rows))
            h2 { "Recent messages" }
            (table("Messages", &[("integration", "Channel"), ("target", "To"), ("status", "Status"), ("attempts", "Attempts"), ("created_at", "Made"), ("last_error", "Last error")], &message_rows))
        },
    )
}

pub fn keys(
    member: &Member,
    keys: &[serde_json::Value],
    made: Option<&str>,
    notice: Option<&str>,
) -> Markup {
    let csrf = &member.session.csrf;
    let owner = member.role.manages_team();
    let rows: Vec<Row> = keys
        .iter()
        .map(|key| {
            let id = key["id"].as_str().unwrap_or_default();
            let live = key["revoked_at"].is_null();
            Row {
                view: key.clone(),
                actions: (owner && live).then(|| {
                    action_button(
                        &format!("/dashboard/keys/{id}/revoke"),
                        csrf,
                        "Revoke",
                        Some("Revoke this key? Requests with it fail from now on."),
                    )
                }),
            }
        })
        .collect();
    page(
        &member.frame("API keys", "/dashboard/keys", notice),
        html! {
            @if let Some(made) = made {
                section.card {
                    h2 { "Your new key" }
                    p { "Copy it now: it is shown this once." }
                    pre #new-key { (made) }
                    button.secondary type="button" data-copy="new-key" { "Copy" }
                }
            }
            (table("Keys", &[("name", "Name"), ("kind", "Kind"), ("prefix", "Starts with"), ("created_at", "Made"), ("last_used_at", "Last used"), ("revoked_at", "Revoked"), ("expires_at", "Expires")], &rows))
            @if owner {
                section.card {
                    h2 { "New secret key" }
                    form.stack method="post" action="/dashboard/keys" {
                        (csrf_field(csrf))
                        label for="key-name" { "Name" }
                        input #key-name type="text" name="name" required;
                        p { button type="submit" { "Make key" } }
                    }
                }
            }
        },
    )
}

/// `link`: a link to share, and whether it also went by email.
pub fn team(
    member: &Member,
    users: &[UserView],
    link: Option<(&str, bool)>,
    notice: Option<&str>,
) -> Markup {
    let csrf = &member.session.csrf;
    let owner = member.role.manages_team();
    page(
        &member.frame("Team", "/dashboard/team", notice),
        html! {
            @if let Some((link, emailed)) = link {
                section.card {
                    h2 { "Link to share" }
                    @if emailed {
                        p { "It was sent to the person by email; you can also copy it from here." }
                    }
                    p { "Send this link to the person (it works once; an invite for 7 days, a reset for an hour)." }
                    pre #share-link { (link) }
                    button.secondary type="button" data-copy="share-link" { "Copy" }
                }
            }
            table {
                caption.muted { "Team" }
                thead { tr { th scope="col" { "Email" } th scope="col" { "Role" } th scope="col" { "Active" } th scope="col" { "Since" } @if owner { th scope="col" { "Actions" } } } }
                tbody {
                    @for user in users {
                        tr {
                            td { (user.email) }
                            td { (user.role.as_str()) }
                            td { @if user.active { "yes" } @else { "invited" } }
                            td { (user.created_at[..10]) }
                            @if owner {
                                td {
                                    form.inline method="post" action=(format!("/dashboard/team/{}/role", user.id)) {
                                        (csrf_field(csrf))
                                        select name="role" aria-label=(format!("Role of {}", user.email)) {
                                            @for role in ["viewer", "admin", "owner"] { option value=(role) selected[user.role.as_str() == role] { (role) } }
                                        }
                                        button.secondary type="submit" { "Set role" }
                                    }
                                    " " (action_button(&format!("/dashboard/team/{}/reset", user.id), csrf, "Password link", None))
                                    @if user.id != member.user.id {
                                        " " (action_button(&format!("/dashboard/team/{}/remove", user.id), csrf, "Remove", Some("Remove this user from the team?")))
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if owner {
                section.card {
                    h2 { "Invite" }
                    form.stack method="post" action="/dashboard/team" {
                        (csrf_field(csrf))
                        label for="invite-email" { "Email" }
                        input #invite-email type="email" name="email" required;
                        label for="invite-role" { "Role" }
                        select #invite-role name="role" { option value="viewer" { "viewer" } option value="admin" { "admin" } option value="owner" { "owner" } }
                        p { button type="submit" { "Invite" } }
                    }
                }
            }
        },
    )
}

pub fn audit(member: &Member, records: &[serde_json::Value], next: Option<&str>) -> Markup {
    let rows: Vec<Row> = records
        .iter()
        .map(|r| Row {
            view: r.clone(),
            actions: None,
        })
        .collect();
    page(
        &member.frame("Audit log", "/dashboard/audit", None),
        html! {
            (table("Records", &[("at", "When"), ("actor", "Who"), ("action", "Did"), ("object_type", "To"), ("object_id", "Which")], &rows))
            @if let Some(next) = next { p.pager { a href=(format!("/dashboard/audit?cursor={next}")) { "Older records →" } } }
        },
    )
}

pub fn settings(
    member: &Member,
    config: &TenantConfig,
    profile: &crate::creators::model::CreatorProfile,
    notice: Option<&str>,
) -> Markup {
    page(
        &member.frame("Settings", "/dashboard/settings", notice),
        html! {
            section.card {
                h2 { "Creator" }
                p { (profile.name) " (" (profile.slug) ")" }
                p { "Custom domain: " (profile.custom_domain.as_deref().unwrap_or("—")) }
                p { "Customer portal links: " code { "POST /v1/customers/{id}/sessions {\"scope\": \"portal\"}" } " answers a token; send the customer to " code { "/portal/enter?token=…" } "." }
            }
            section.card {
                h2 { "Meters in the customer portal" }
                form.stack method="post" action="/dashboard/settings/portal" {
                    (csrf_field(&member.session.csrf))
                    fieldset {
                        legend { "Hide from customers" }
                        @for (_, meter) in config.live_meters() {
                            label { input type="checkbox" name="hidden" value=(meter.key) checked[profile.portal_hidden_meters.iter().any(|k| **k == *meter.key)] disabled[!member.role.can_change()]; " " (meter.name) " (" (meter.key) ")" }
                        }
                    }
                    @if member.role.can_change() { p { button type="submit" { "Save" } } }
                }
            }
        },
    )
}
