//! Tables of API views: the pages list the same objects the JSON API answers, so they
//! print those views' fields by name rather than re-describing each object.

use maud::{html, Markup};
use serde_json::Value;

/// One row: the view as JSON, and what its last cell holds (actions), if anything.
pub struct Row {
    pub view: Value,
    pub actions: Option<Markup>,
}

impl Row {
    pub fn of(view: &impl serde::Serialize) -> Row {
        Row {
            view: serde_json::to_value(view).unwrap_or(Value::Null),
            actions: None,
        }
    }

    pub fn with(mut self, actions: Markup) -> Row {
        self.actions = Some(actions);
        self
    }
}

/// A table of `rows` showing `columns` (`(field, heading)`; a field may be a path,
/// `price.amount`), with an actions column when any row has actions.
pub fn table(caption: &str, columns: &[(&str, &str)], rows: &[Row]) -> Markup {
    let with_actions = rows.iter().any(|row| row.actions.is_some());
    html! {
        @if rows.is_empty() {
            p.muted { "No " (caption.to_lowercase()) " yet." }
        } @else {
            table {
                caption.muted { (caption) }
                thead { tr {
                    @for (_, heading) in columns { th scope="col" { (heading) } }
                    @if with_actions { th scope="col" { "Actions" } }
                } }
                tbody {
                    @for row in rows {
                        tr {
                            @for (field, _) in columns { td { (cell(pick(&row.view, field))) } }
                            @if with_actions {
                                td { @if let Some(actions) = &row.actions { (actions) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn pick<'a>(view: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(view, |value, part| &value[part])
}

/// A JSON value as a cell's text.
pub fn cell(value: &Value) -> String {
    match value {
        Value::Null => "—".into(),
        Value::String(text) => text.clone(),
        Value::Bool(true) => "yes".into(),
        Value::Bool(false) => "no".into(),
        Value::Array(items) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_read_paths_and_escape_what_they_print() {
        let rows = [Row::of(&serde_json::json!({
            "name": "<img src=x>",
            "price": {"amount": 900},
            "features": ["a", "b"],
        }))];
        let html = table(
            "Tiers",
            &[
                ("name", "Name"),
                ("price.amount", "Amount"),
                ("features", "Features"),
            ],
            &rows,
        )
        .into_string();
        assert!(html.contains("&lt;img src=x&gt;"));
        assert!(html.contains("<td>900</td>"));
        assert!(html.contains("<td>a, b</td>"));
    }
}
