//! Charts drawn on the server as SVG: no script, no library, readable by a screen reader
//! (each chart has a title and a table-like description of its extremes).

use maud::{html, Markup};

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 180.0;
/// Room for the axis labels.
const LEFT: f64 = 64.0;
const BOTTOM: f64 = 22.0;

/// A column chart of a series (one column per point), with its largest value marked.
pub fn columns(title: &str, points: &[(String, f64)], unit: &str) -> Markup {
    let top = points.iter().map(|(_, v)| *v).fold(0.0_f64, f64::max);
    let scale = if top > 0.0 {
        (HEIGHT - BOTTOM - 8.0) / top
    } else {
        0.0
    };
    let step = (WIDTH - LEFT) / points.len().max(1) as f64;
    let bar = (step * 0.8).max(1.0);
    let total: f64 = points.iter().map(|(_, v)| v).sum();
    let description = format!(
        "{} points from {} to {}; largest {} {unit}, total {} {unit}",
        points.len(),
        points.first().map_or("", |(label, _)| label.as_str()),
        points.last().map_or("", |(label, _)| label.as_str()),
        number(top),
        number(total),
    );
    html! {
        figure.chart {
            svg viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img" aria-label=(format!("{title}: {description}")) {
                title { (title) }
                line.axis x1=(LEFT) y1=(HEIGHT - BOTTOM) x2=(WIDTH) y2=(HEIGHT - BOTTOM) {}
                text.label x=(LEFT - 6.0) y="14" text-anchor="end" { (number(top)) }
                text.label x=(LEFT - 6.0) y=(HEIGHT - BOTTOM) text-anchor="end" { "0" }
                @for (i, (label, value)) in points.iter().enumerate() {
                    @let height = value * scale;
                    rect.bar x=(format!("{:.1}", LEFT + i as f64 * step)) y=(format!("{:.1}", HEIGHT - BOTTOM - height))
                        width=(format!("{bar:.1}")) height=(format!("{height:.1}")) {
                        title { (label) ": " (number(*value)) " " (unit) }
                    }
                }
                @if let Some((first, _)) = points.first() {
                    text.label x=(LEFT) y=(HEIGHT - 4.0) { (first) }
                }
                @if let Some((last, _)) = points.last() {
                    text.label x=(WIDTH) y=(HEIGHT - 4.0) text-anchor="end" { (last) }
                }
            }
            figcaption { (title) " — " (description) }
        }
    }
}

/// One bar split into parts (`(label, count, class)`), each with its share.
pub fn shares(title: &str, parts: &[(&str, u64, &str)]) -> Markup {
    let total: u64 = parts.iter().map(|(_, n, _)| n).sum();
    // Each part's `(x, width)`, side by side.
    let mut at = 0.0;
    let spans: Vec<(f64, f64)> = parts
        .iter()
        .map(|(_, n, _)| {
            let width = if total > 0 {
                WIDTH * *n as f64 / total as f64
            } else {
                0.0
            };
            at += width;
            (at - width, width)
        })
        .collect();
    html! {
        figure.chart {
            svg viewBox=(format!("0 0 {WIDTH} 28")) role="img"
                aria-label=(format!("{title}: {}", legend(parts, total))) {
                title { (title) }
                @if total == 0 {
                    rect.empty x="0" y="0" width=(WIDTH) height="28" {}
                }
                @for ((label, n, class), (x, width)) in parts.iter().zip(&spans) {
                    rect class=(class) x=(format!("{x:.1}")) y="0" width=(format!("{width:.1}")) height="28" {
                        title { (label) ": " (n) }
                    }
                }
            }
            figcaption { (legend(parts, total)) }
        }
    }
}

fn legend(parts: &[(&str, u64, &str)], total: u64) -> String {
    parts
        .iter()
        .map(|(label, n, _)| {
            let share = if total > 0 {
                100.0 * *n as f64 / total as f64
            } else {
                0.0
            };
            format!("{label} {n} ({share:.1} %)")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A number for a label: whole when it is, else two decimals.
fn number(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_names_its_extremes_and_escapes_labels() {
        let points = vec![("<b>".to_string(), 2.0), ("b".to_string(), 4.5)];
        let svg = columns("Calls", &points, "calls").into_string();
        assert!(svg.contains("largest 4.50 calls, total 6.50 calls"));
        assert!(!svg.contains("<b>"));
        let mix = shares("Decisions", &[("allow", 3, "allow"), ("block", 1, "block")]);
        assert!(mix.into_string().contains("allow 3 (75.0 %)"));
    }
}
