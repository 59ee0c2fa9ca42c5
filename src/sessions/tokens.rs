//! Customer session tokens: JWTs signed with HMAC-SHA256 by a key the daemon makes and
//! keeps in its store (`session_signing_keys`), named in each token's header (`kid`). The
//! algorithm is pinned (a token claiming another, `none` included, is refused before its
//! signature is looked at); `exp`, `aud` (the creator), `sub` (the customer) and `iss` are
//! required. Expiry is checked against the daemon's clock, not the library's, so a daemon
//! whose clock is set (tests, a replay) judges its own tokens consistently; no leeway.
//!
//! Rotation (`staryer` admin API) adds a key that signs from then on; older keys keep
//! verifying what they signed until the longest token they could have signed has expired,
//! then go at the next rotation.
//!
//! The keys are stored sealed under the master key (`crate::sealing`), owned by
//! `key_owner(kid)`: a copy of the database alone cannot forge a token. Keys written by
//! earlier versions hold their secret in clear (hex); they still load, and are sealed at
//! the next start (`startup::reseal_secrets`).

use std::sync::Arc;

use arc_swap::ArcSwap;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::distr::{Alphanumeric, SampleString};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::audit::model::Who;
use crate::sealing::{SealError, Sealer};
use crate::store::embeds::SigningKeyRow;
use crate::store::{Store, StoreError};

const ALGORITHM: Algorithm = Algorithm::HS256;
const ISSUER: &str = "staryer";
/// Bytes of a signing key: SHA-256's block-sized secret is more than HMAC needs.
const SECRET_BYTES: usize = 32;

/// What a token says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// The creator's id.
    pub aud: String,
    /// The customer's id (the creator's own id string).
    pub sub: String,
    /// `embed` or `portal`.
    pub scope: String,
    /// The session's id: what `DELETE /v1/sessions/{id}` revokes.
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
}

/// The creator a token names (`aud`), read without checking anything: only to choose
/// whose keys to check it with (`Sessions::check` then checks it whole).
pub fn unverified_audience(token: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims["aud"].as_str().map(String::from)
}

/// Who a signing key's sealed secret belongs to (the associated data it is sealed with).
pub fn key_owner(kid: &str) -> String {
    format!("session_key:{kid}")
}

/// A stored key's secret (hex): opened, or as it is when an earlier version stored it in
/// clear (hex never starts like a sealed value, `v1.` or `v2.`).
pub fn open_secret(sealer: &Sealer, kid: &str, stored: &str) -> Result<String, SealError> {
    if is_sealed(stored) {
        sealer.open(&key_owner(kid), stored)
    } else {
        Ok(stored.to_string())
    }
}

/// Whether a stored secret is sealed (else it is an earlier version's clear hex).
fn is_sealed(stored: &str) -> bool {
    stored.starts_with("v1.") || stored.starts_with("v2.")
}

/// Why the stored keys cannot make a ring (and the daemon must not start: a ring that
/// cannot sign or verify would break every customer session).
#[derive(Debug, thiserror::Error)]
pub enum RingError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "session signing key {0} does not open with the sealing keys given \
         (security.master_key, security.previous_master_keys, else data_dir/sealing_key): \
         start with the key that sealed it, or no customer session can be signed or checked"
    )]
    DoesNotOpen(String),
    #[error("session signing key {0} is not hex")]
    NotHex(String),
}

struct SigningKey {
    kid: String,
    created_at: i64,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl SigningKey {
    fn new(kid: &str, created_at: i64, secret: &[u8]) -> SigningKey {
        SigningKey {
            kid: kid.to_string(),
            created_at,
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    /// A stored key, opened.
    fn from_row(row: &SigningKeyRow, sealer: &Sealer) -> Result<SigningKey, RingError> {
        let secret = open_secret(sealer, &row.kid, &row.secret)
            .map_err(|_| RingError::DoesNotOpen(row.kid.clone()))?;
        let secret = hex::decode(secret).map_err(|_| RingError::NotHex(row.kid.clone()))?;
        Ok(SigningKey::new(&row.kid, row.created_at, &secret))
    }
}

/// Why a token was refused (said once, as 401 `invalid_customer_token`, whatever the
/// reason: a caller learns nothing from the difference).
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    Malformed,
    UnknownKey,
    BadSignature,
    Expired,
}

/// The keys in force, newest last.
pub struct KeyRing {
    keys: ArcSwap<Vec<Arc<SigningKey>>>,
    /// One rotation at a time (each builds the next list from the current one).
    rotation: tokio::sync::Mutex<()>,
}

impl KeyRing {
    /// Loads the stored keys (opening them), making the first one on a new database.
    pub async fn load(store: &Store, sealer: &Sealer, now: i64) -> Result<KeyRing, RingError> {
        let ring = KeyRing {
            keys: ArcSwap::from_pointee(Vec::new()),
            rotation: tokio::sync::Mutex::new(()),
        };
        let rows = store.load_signing_keys().await?;
        if rows.is_empty() {
            // The first key of a new database: part of setting it up, not a change to record.
            ring.rotate(store, sealer, now, 0, None).await?;
            return Ok(ring);
        }
        let keys = rows
            .iter()
            .map(|row| SigningKey::from_row(row, sealer).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        ring.keys.store(Arc::new(keys));
        Ok(ring)
    }

    /// Makes a new signing key; keys whose successor is older than `longest_ttl` (so every
    /// token they signed has expired) are dropped. With `who`, the rotation is recorded in
    /// the platform's log (the key's id, never its secret). The key is stored sealed.
    /// Answers the new key's id.
    pub async fn rotate(
        &self,
        store: &Store,
        sealer: &Sealer,
        now: i64,
        longest_ttl: i64,
        who: Option<&Who>,
    ) -> Result<String, StoreError> {
        let _one_at_a_time = self.rotation.lock().await;
        let mut secret = [0u8; SECRET_BYTES];
        rand::rng().fill_bytes(&mut secret);
        let kid = format!("sk{}", Alphanumeric.sample_string(&mut rand::rng(), 12));
        let row = SigningKeyRow {
            secret: sealer.seal(&key_owner(&kid), &hex::encode(secret)),
            kid,
            created_at: now,
        };
        let current = self.keys.load_full();
        // A key signed until its successor came; its tokens are gone `longest_ttl` later.
        let successors = current.iter().skip(1).map(|k| k.created_at).chain([now]);
        let retired: Vec<String> = current
            .iter()
            .zip(successors)
            .filter(|(_, successor)| *successor + longest_ttl < now)
            .map(|(key, _)| key.kid.clone())
            .collect();
        let records: Vec<_> = who
            .into_iter()
            .map(|who| {
                who.change("", now, "session_key", "rotate", &row.kid)
                    .after(&serde_json::json!({
                        "kid": row.kid,
                        "created_at": crate::usage::period::rfc3339(now),
                        "retired": retired,
                    }))
            })
            .collect();
        store.add_signing_key(&row, &retired, &records).await?;
        let mut keys: Vec<Arc<SigningKey>> = current
            .iter()
            .filter(|key| !retired.contains(&key.kid))
            .cloned()
            .collect();
        keys.push(Arc::new(SigningKey::new(&row.kid, now, &secret)));
        self.keys.store(Arc::new(keys));
        Ok(row.kid)
    }

    pub fn sign(&self, claims: &Claims) -> String {
        let keys = self.keys.load();
        let key = keys.last().expect("the ring always holds a key");
        let mut header = Header::new(ALGORITHM);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, claims, &key.encoding)
            .expect("HMAC signing of plain claims cannot fail")
    }

    /// The claims of a token this daemon signed for `creator_id`, unexpired at `now`.
    /// Scope, customer and revocation are the caller's to check.
    pub fn verify(&self, token: &str, creator_id: &str, now: i64) -> Result<Claims, Refusal> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| Refusal::Malformed)?;
        if header.alg != ALGORITHM {
            return Err(Refusal::Malformed);
        }
        let kid = header.kid.ok_or(Refusal::UnknownKey)?;
        let keys = self.keys.load();
        let key = keys
            .iter()
            .find(|key| key.kid == kid)
            .ok_or(Refusal::UnknownKey)?;
        let mut validation = Validation::new(ALGORITHM);
        validation.set_required_spec_claims(&["exp", "aud", "sub", "iss"]);
        validation.set_audience(&[creator_id]);
        validation.set_issuer(&[ISSUER]);
        // Checked below against the daemon's clock.
        validation.validate_exp = false;
        let claims = jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation)
            .map_err(|_| Refusal::BadSignature)?
            .claims;
        if claims.exp <= now {
            return Err(Refusal::Expired);
        }
        Ok(claims)
    }
}

/// Claims for a new session.
pub fn claims(creator_id: &str, customer_id: &str, scope: &str, now: i64, ttl: i64) -> Claims {
    Claims {
        iss: ISSUER.into(),
        aud: creator_id.into(),
        sub: customer_id.into(),
        scope: scope.into(),
        jti: format!("cs_{}", Alphanumeric.sample_string(&mut rand::rng(), 24)),
        iat: now,
        exp: now + ttl,
    }
}
