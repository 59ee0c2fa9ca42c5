//! The page frame every face shares (header, navigation, sign-out, the main landmark),
//! and small printers: quantities, money, forms' CSRF fields, notices after a
//! change. Notices are chosen by a code in the query (`?done=tier_saved`) from a fixed
//! table, so a link can never put text of its own on a page.

use maud::{html, Markup, DOCTYPE};

use crate::error::ApiError;
use crate::usage::quantity::Quantity;

/// What a page's frame shows around its body.
pub struct Frame<'a> {
    pub title: &'a str,
    /// The face's name in the header (`Staryer dashboard`, a creator's brand).
    pub product: &'a str,
    /// `(path, label)` of the navigation; `current` is marked.
    pub nav: &'a [(&'a str, &'a str)],
    pub current: &'a str,
    /// Who is signed in, and where signing out posts; none on sign-in pages.
    pub signed_in: Option<SignedIn<'a>>,
    /// A stylesheet after the face's own: a creator's branding.
    pub brand_css: Option<&'a str>,
    /// The notice after a change.
    pub notice: Option<&'a str>,
}

pub struct SignedIn<'a> {
    pub who: &'a str,
    pub sign_out: &'a str,
    pub csrf: &'a str,
}

pub fn page(frame: &Frame<'_>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (frame.title) " · " (frame.product) }
                link rel="stylesheet" href="/assets/app.css";
                @if let Some(brand) = frame.brand_css {
                    link rel="stylesheet" href=(brand);
                }
                script src="/assets/app.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    span.product { (frame.product) }
                    @if let Some(signed_in) = &frame.signed_in {
                        form.sign-out method="post" action=(signed_in.sign_out) {
                            span.who { (signed_in.who) }
                            (csrf_field(signed_in.csrf))
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                @if !frame.nav.is_empty() {
                    nav aria-label="Sections" {
                        ul {
                            @for (path, label) in frame.nav {
                                li {
                                    @if *path == frame.current {
                                        a href=(path) aria-current="page" { (label) }
                                    } @else {
                                        a href=(path) { (label) }
                                    }
                                }
                            }
                        }
                    }
                }
                main #main {
                    h1 { (frame.title) }
                    @if let Some(notice) = frame.notice {
                        p.notice role="status" { (notice) }
                    }
                    (body)
                }
            }
        }
    }
}

/// A failed page: its status and the API's message for a person.
pub fn error_page(err: &ApiError) -> Markup {
    let frame = Frame {
        title: err.status.canonical_reason().unwrap_or("Error"),
        product: "Staryer",
        nav: &[],
        current: "",
        signed_in: None,
        brand_css: None,
        notice: None,
    };
    page(
        &frame,
        html! {
            p.error { (err.message) }
            p { code { (err.code) } }
        },
    )
}

/// The hidden field every form carries.
pub fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}

/// A form that posts one action with its CSRF token, as a single button.
pub fn action_button(action: &str, csrf: &str, label: &str, confirm: Option<&str>) -> Markup {
    html! {
        form.inline method="post" action=(action) data-confirm=[confirm] {
            (csrf_field(csrf))
            button type="submit" { (label) }
        }
    }
}

/// A quantity as people read it: `1,234.5`.
pub fn quantity(value: Quantity) -> String {
    let text = value.to_string();
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let (sign, digits) = whole
        .strip_prefix('-')
        .map_or(("", whole), |digits| ("-", digits));
    let mut grouped = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    if fraction.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}.{fraction}")
    }
}

/// An amount in a currency's smallest unit, for people: `12.50 EUR`.
pub fn money(amount: i64, currency: &str) -> String {
    format!(
        "{}{}.{:02} {}",
        if amount < 0 { "-" } else { "" },
        (amount.abs() / 100),
        amount.abs() % 100,
        currency.to_uppercase()
    )
}

/// A notice's text by its code, from the face's table.
pub fn notice<'a>(table: &[(&str, &'a str)], code: Option<&str>) -> Option<&'a str> {
    let code = code?;
    table
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, text)| *text)
}

/// Pretty JSON for a `pre` block (escaped by the template).
pub fn json(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// Whether `text` is a `#rrggbb` colour (what branding may set).
pub fn is_hex_colour(text: &str) -> bool {
    text.len() == 7 && text.starts_with('#') && text[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_are_grouped_by_thousands() {
        assert_eq!(
            quantity(Quantity::from_micros(1_234_567_500_000)),
            "1,234,567.5"
        );
        assert_eq!(quantity(Quantity::from_micros(999_000_000)), "999");
        assert_eq!(money(1250, "eur"), "12.50 EUR");
    }

    #[test]
    fn printed_text_is_escaped() {
        let err = ApiError::invalid("x", "<script>alert(1)</script>");
        let page = error_page(&err).into_string();
        assert!(!page.contains("<script>alert"));
        assert!(page.contains("&lt;script&gt;"));
    }
}
