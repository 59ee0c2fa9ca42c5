//! The platform owner's pages.

use maud::{html, Markup};

use crate::web::layout::{csrf_field, page, Frame, SignedIn};

pub struct CreatorLine {
    pub slug: String,
    pub name: String,
    pub customers: i64,
    /// Events decided since the daemon started.
    pub events: u64,
    pub blocked: u64,
    pub revenue: String,
    pub stripe_account: Option<String>,
    pub failed_reports: i64,
    pub parked_messages: i64,
}

pub struct Platform {
    pub events_per_second: f64,
    pub decisions: [u64; 3],
    pub uptime_secs: i64,
    pub live_counters: usize,
    pub store_up: bool,
    pub backlog: Vec<(String, i64)>,
}

/// What a creator just made shows once: its keys and its owner's invite link.
pub struct Made {
    pub slug: String,
    pub secret_key: String,
    pub publishable_key: String,
    pub invite_url: String,
}

fn frame<'a>(title: &'a str, csrf: Option<&'a str>) -> Frame<'a> {
    Frame {
        title,
        product: "Staryer platform",
        nav: &[],
        current: "",
        signed_in: csrf.map(|csrf| SignedIn {
            who: "platform owner",
            sign_out: "/admin/sign-out",
            csrf,
        }),
        brand_css: None,
        notice: None,
    }
}

pub fn sign_in(error: Option<&str>) -> Markup {
    page(
        &frame("Platform sign-in", None),
        html! {
            @if let Some(error) = error { p.error role="alert" { (error) } }
            form.stack.sign-in method="post" action="/admin/sign-in" {
                label for="token" { "Admin token" }
                input #token type="password" name="token" autocomplete="current-password" required;
                p { button type="submit" { "Sign in" } }
            }
        },
    )
}

pub fn home(
    csrf: &str,
    platform: &Platform,
    creators: &[CreatorLine],
    made: Option<&Made>,
) -> Markup {
    let [allow, warn, block] = platform.decisions;
    page(
        &frame("Platform", Some(csrf)),
        html! {
            @if let Some(made) = made {
                section.card {
                    h2 { "Creator " (made.slug) " is made" }
                    p { "Shown this once: give these to the creator." }
                    dl {
                        dt { "Secret key" } dd { code #made-secret { (made.secret_key) } }
                        dt { "Publishable key" } dd { code { (made.publishable_key) } }
                        dt { "Owner's invite link" } dd { code #made-invite { (made.invite_url) } }
                    }
                }
            }
            div.grid {
                section.card { h2 { "Events per second" } p.figure { (format!("{:.1}", platform.events_per_second)) } p.muted { "averaged since the daemon started" } }
                section.card { h2 { "Decisions" } p { "allow " (allow) ", warn " (warn) ", block " (block) } }
                section.card { h2 { "Store" } p.figure { @if platform.store_up { "up" } @else { "DOWN" } } p.muted { (platform.live_counters) " live counters" } }
                section.card {
                    h2 { "Outbox backlog" }
                    @if platform.backlog.is_empty() { p.figure { "0" } }
                    ul { @for (integration, count) in &platform.backlog { li { (integration) ": " (count) } } }
                }
            }
            table {
                caption.muted { "Creators" }
                thead { tr {
                    th scope="col" { "Creator" } th scope="col" class="num" { "Customers" } th scope="col" class="num" { "Events" }
                    th scope="col" class="num" { "Blocked" } th scope="col" { "Revenue, 30 days" } th scope="col" { "Stripe" }
                    th scope="col" class="num" { "Failed reports" } th scope="col" class="num" { "Parked messages" }
                } }
                tbody {
                    @for line in creators {
                        tr {
                            th scope="row" { (line.name) " " span.muted { "(" (line.slug) ")" } }
                            td.num { (line.customers) }
                            td.num { (line.events) }
                            td.num { (line.blocked) }
                            td { (line.revenue) }
                            td { @if let Some(account) = &line.stripe_account { (account) } @else { span.muted { "not connected" } } }
                            td.num { (line.failed_reports) }
                            td.num { (line.parked_messages) }
                        }
                    }
                }
            }
            section.card {
                h2 { "New creator" }
                form.stack method="post" action="/admin/creators" {
                    (csrf_field(csrf))
                    label for="slug" { "Slug" }
                    input #slug type="text" name="slug" required;
                    label for="name" { "Name" }
                    input #name type="text" name="name";
                    label for="owner" { "First owner's email" }
                    input #owner type="email" name="owner_email" required;
                    p { button type="submit" { "Make creator" } }
                }
            }
        },
    )
}
