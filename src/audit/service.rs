//! Reading the audit log (a creator's records, the platform's) and verifying its chain.

use crate::audit::model::{
    customer_ref, AuditPage, AuditQuery, AuditRecord, ACTOR_PATTERN, OBJECT_TYPES,
};
use crate::error::ApiError;
use crate::store::audit::{chain_hash, AuditFilter};
use crate::store::{Store, StoreError};
use crate::usage::model::parse_id;

/// One page of `creator_id`'s records (`None`: the platform's own), newest first.
pub async fn list(
    store: &Store,
    creator_id: Option<&str>,
    query: AuditQuery,
) -> Result<AuditPage, ApiError> {
    let bad = |message: &str| ApiError::bad_request("invalid_query", message);
    let limit = crate::schema::page_limit(query.limit)?;
    if let Some(kind) = &query.object_type {
        if !OBJECT_TYPES.contains(&kind.as_str()) {
            return Err(bad("object_type is not a kind of object the log names"));
        }
    }
    if let Some(id) = &query.object_id {
        parse_id("object_id", std::borrow::Cow::Borrowed(id))?;
    }
    static ACTOR: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(ACTOR_PATTERN).expect("a regex"));
    if query
        .actor
        .as_deref()
        .is_some_and(|actor| !ACTOR.is_match(actor))
    {
        return Err(bad(
            "actor is `admin`, `stripe`, `browser`, `key:<key id>`, `system:<job>` or `user:<user id>`",
        ));
    }
    let time = |text: &Option<String>, name: &str| -> Result<Option<i64>, ApiError> {
        text.as_deref()
            .map(|t| {
                chrono::DateTime::parse_from_rfc3339(t)
                    .map(|at| at.timestamp())
                    .map_err(|_| bad(&format!("{name} is not an RFC 3339 time")))
            })
            .transpose()
    };
    let before_seq = query
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<i64>().ok().filter(|seq| *seq > 0).ok_or_else(|| {
                ApiError::bad_request("invalid_cursor", "cursor is not one this API gave")
            })
        })
        .transpose()?;
    // A customer is named by its reference in the log: its id is hashed here.
    let object_id = match (&query.object_type, query.object_id, creator_id) {
        (Some(kind), Some(id), Some(creator)) if kind == "customer" => {
            Some(customer_ref(creator, &id))
        }
        (_, id, _) => id,
    };
    let filter = AuditFilter {
        from: time(&query.from, "from")?,
        to: time(&query.to, "to")?,
        object_type: query.object_type,
        object_id,
        actor: query.actor,
        before_seq,
    };
    let mut rows = store.audit_records(creator_id, &filter, limit + 1).await?;
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|row| row.seq.to_string())
    } else {
        None
    };
    Ok(AuditPage {
        records: rows.into_iter().map(AuditRecord::of).collect(),
        next_cursor,
    })
}

/// Every record of the creator's log about one customer, oldest first (its export).
pub async fn customer_records(
    store: &Store,
    creator_id: &str,
    reference: &str,
) -> Result<Vec<AuditRecord>, StoreError> {
    const PAGE: i64 = 500;
    let mut filter = AuditFilter {
        object_type: Some("customer".into()),
        object_id: Some(reference.into()),
        ..AuditFilter::default()
    };
    let mut records = Vec::new();
    loop {
        let rows = store.audit_records(Some(creator_id), &filter, PAGE).await?;
        let last_page = (rows.len() as i64) < PAGE;
        filter.before_seq = rows.last().map(|row| row.seq);
        records.extend(rows.into_iter().map(AuditRecord::of));
        if last_page {
            break;
        }
    }
    records.reverse();
    Ok(records)
}

/// What `verify` found.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every record from the anchor to the end chains; `records` were checked.
    Intact { records: u64, pruned_through: i64 },
    /// The first record that does not chain, and why.
    Broken { seq: i64, reason: String },
}

/// Records read per page while verifying.
const VERIFY_PAGE: i64 = 1_000;

/// Walks the chain from its anchor to its end as read when the walk starts (records
/// appended meanwhile, by a running daemon, wait for the next walk): each record must
/// follow the one before it without a gap, and hash to what it carries over its content
/// and the previous hash; the last one must be the chain's recorded end.
pub async fn verify(store: &Store) -> Result<Verdict, StoreError> {
    let chain = store.audit_chain_state().await?;
    let mut pruned_through = chain.pruned_through;
    let mut previous_seq = chain.pruned_through;
    let mut previous_hash = chain.pruned_hash.clone();
    let mut records = 0;
    'pages: while previous_seq < chain.last_seq {
        let page = store.audit_chain_page(previous_seq, VERIFY_PAGE).await?;
        for row in page.iter().take_while(|row| row.seq <= chain.last_seq) {
            if row.seq != previous_seq + 1 {
                // Retention may have cut the beginning meanwhile: go on from its new
                // anchor when it moved past what is missing.
                let now = store.audit_chain_state().await?;
                if now.pruned_through > previous_seq {
                    pruned_through = now.pruned_through;
                    previous_seq = now.pruned_through;
                    previous_hash = now.pruned_hash;
                    continue 'pages;
                }
                return Ok(Verdict::Broken {
                    seq: previous_seq + 1,
                    reason: format!("record {} is missing", previous_seq + 1),
                });
            }
            let expected = chain_hash(&previous_hash, row);
            if expected != row.hash {
                return Ok(Verdict::Broken {
                    seq: row.seq,
                    reason: format!(
                        "record {} does not hash to what it carries: its content or its hash \
                         was altered",
                        row.seq
                    ),
                });
            }
            previous_seq = row.seq;
            previous_hash = row.hash.clone();
            records += 1;
        }
        if page.is_empty() {
            break;
        }
    }
    if previous_seq != chain.last_seq || previous_hash != chain.last_hash {
        return Ok(Verdict::Broken {
            seq: previous_seq + 1,
            reason: format!(
                "the chain ends at record {previous_seq}, but its end says {}",
                chain.last_seq
            ),
        });
    }
    Ok(Verdict::Intact {
        records,
        pruned_through,
    })
}
