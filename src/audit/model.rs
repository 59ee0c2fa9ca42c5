//! Who acts, and the records of what they change. A request's `Who` is its actor (the
//! admin, one of a creator's keys by id, Stripe through a webhook), the peer address of
//! the connection and the request id; jobs act as `system:<job>`. A record's before and
//! after are the object's public view (the one the API answers with), which never holds
//! a secret. A customer is named by `customer_ref`, a hash of its id, so that erasing it
//! leaves the chain whole and its id in no record.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::store::audit::{AuditEntry, AuditRow};

/// Who made a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    Admin,
    /// A creator's API key, by id (`key_…`).
    Key(String),
    /// Stripe, through a signed webhook.
    Stripe,
    /// The browser of a creator's customer, through the publishable key or a session.
    Browser,
    /// One of the daemon's background jobs.
    System(&'static str),
    /// A dashboard user, by id (`du_…`).
    User(String),
}

impl Actor {
    pub fn name(&self) -> String {
        match self {
            Actor::Admin => "admin".into(),
            Actor::Key(id) => format!("key:{id}"),
            Actor::Stripe => "stripe".into(),
            Actor::Browser => "browser".into(),
            Actor::System(job) => format!("system:{job}"),
            Actor::User(id) => format!("user:{id}"),
        }
    }
}

/// The actor of a request and where it came from.
#[derive(Debug, Clone)]
pub struct Who {
    pub actor: Actor,
    /// The peer address of the connection (a proxy's, behind one).
    pub client_addr: Option<String>,
    /// `X-Request-Id` as sent (when it is a plain token), else made for the request; the
    /// answer carries it back.
    pub request_id: Option<String>,
}

impl Who {
    /// An actor outside any request: a background job, a webhook's sender.
    pub fn acting(actor: Actor) -> Who {
        Who {
            actor,
            client_addr: None,
            request_id: None,
        }
    }

    pub fn system(job: &'static str) -> Who {
        Who::acting(Actor::System(job))
    }

    /// The record of a change to one of `creator_id`'s objects (`""`: the platform's);
    /// its states are added with `AuditEntry::before` and `after`.
    pub fn change(
        &self,
        creator_id: &str,
        at: i64,
        object_type: &'static str,
        verb: &str,
        object_id: impl Into<String>,
    ) -> AuditEntry {
        debug_assert!(
            OBJECT_TYPES.contains(&object_type),
            "`{object_type}` is not in OBJECT_TYPES: the log could not be filtered by it"
        );
        AuditEntry {
            creator_id: creator_id.to_string(),
            at,
            actor: self.actor.name(),
            action: format!("{object_type}.{verb}"),
            object_type,
            object_id: object_id.into(),
            before_state: None,
            after_state: None,
            client_addr: self.client_addr.clone(),
            request_id: self.request_id.clone(),
        }
    }
}

impl Who {
    /// The record of a change to a customer, named by its reference.
    pub fn customer_change(
        &self,
        creator_id: &str,
        at: i64,
        verb: &str,
        customer_id: &str,
    ) -> AuditEntry {
        let reference = customer_ref(creator_id, customer_id);
        self.change(creator_id, at, "customer", verb, reference)
    }
}

/// How the audit log names a customer: `cus_` and 24 hex digits of SHA-256 over the
/// creator id and the customer id. The creator can find a customer's records by its id
/// (the API hashes it), but the log itself holds no id to erase.
pub fn customer_ref(creator_id: &str, customer_id: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(creator_id.as_bytes());
    hasher.update([0]);
    hasher.update(customer_id.as_bytes());
    let digest = hasher.finalize();
    format!("cus_{}", &hex::encode(digest)[..24])
}

/// A record as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditRecord {
    /// Position in the chain.
    pub seq: i64,
    /// RFC 3339, UTC.
    pub at: String,
    /// `admin`, `key:<key id>`, `stripe`, `browser` or `system:<job>`.
    pub actor: String,
    /// `<object type>.<verb>`, e.g. `tier.update`.
    pub action: String,
    pub object_type: String,
    /// The object's key or id; a customer's is its `cus_…` reference.
    pub object_id: String,
    /// The object before the change (absent for a creation).
    #[schema(value_type = Option<Object>)]
    pub before: Option<serde_json::Value>,
    /// The object after the change (absent for a removal).
    #[schema(value_type = Option<Object>)]
    pub after: Option<serde_json::Value>,
    pub client_addr: Option<String>,
    pub request_id: Option<String>,
    /// SHA-256 over the record and the hash of the one before it.
    pub hash: String,
}

impl AuditRecord {
    pub fn of(row: AuditRow) -> AuditRecord {
        let json = |text: Option<String>| text.and_then(|t| serde_json::from_str(&t).ok());
        AuditRecord {
            seq: row.seq,
            at: crate::usage::period::rfc3339(row.at),
            actor: row.actor,
            action: row.action,
            object_type: row.object_type,
            object_id: row.object_id,
            before: json(row.before_state),
            after: json(row.after_state),
            client_addr: row.client_addr,
            request_id: row.request_id,
            hash: row.hash,
        }
    }
}

/// A page of records, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    pub records: Vec<AuditRecord>,
    /// Pass as `cursor` for the next page; none on the last.
    pub next_cursor: Option<String>,
}

/// `?object_type=&object_id=&actor=&from=&to=&cursor=&limit=`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only records about objects of this type (`meter`, `tier`, `customer`, …).
    #[param(schema_with = object_type_schema)]
    pub object_type: Option<String>,
    /// Only records about this object (a customer by its id: it is hashed here).
    #[param(schema_with = crate::usage::model::id_schema)]
    pub object_id: Option<String>,
    /// Only records by this actor (`admin`, `key:key_…`, `stripe`, `system:dunning`).
    #[param(schema_with = actor_schema)]
    pub actor: Option<String>,
    /// Only records at or after this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<String>,
    /// Only records before this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<String>,
    /// The previous page's `next_cursor`.
    #[param(schema_with = cursor_schema)]
    pub cursor: Option<String>,
    /// At most this many (1–100, default 20).
    #[param(schema_with = crate::schema::page_limit_schema)]
    pub limit: Option<i64>,
}

/// The kinds of object the log names.
pub const OBJECT_TYPES: [&str; 17] = [
    "creator",
    "key",
    "meter",
    "tier",
    "customer",
    "profile",
    "embed",
    "experiment",
    "webhook_endpoint",
    "notice_settings",
    "posthog_settings",
    "billing_settings",
    "billing_account",
    "outbox_message",
    "session",
    "session_key",
    "dashboard_user",
];

fn object_type_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(OBJECT_TYPES))
        .description(Some("Only records about objects of this type"))
        .build()
}

/// What an actor's name looks like (`Actor::name`).
pub const ACTOR_PATTERN: &str = r"^(admin|stripe|browser|key:key_[A-Za-z0-9]{1,40}|system:[a-z_]{1,40}|user:du_[A-Za-z0-9]{1,40})$";

fn actor_schema() -> utoipa::openapi::schema::Object {
    crate::schema::text(1, 80, ACTOR_PATTERN, "Only records by this actor")
}

fn cursor_schema() -> utoipa::openapi::schema::Object {
    crate::schema::text(
        1,
        18,
        "^[1-9][0-9]{0,17}$",
        "The previous page's `next_cursor`",
    )
}
