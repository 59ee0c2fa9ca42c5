//! Key material. A key is shown once when made; only its SHA-256 is stored. A presented
//! key is hashed and looked up by hash, and the stored hash is compared again in constant
//! time. Secret keys (`sk_…`) open the creator API; publishable keys (`pk_…`) are for
//! browser embeds and are refused there (403).

use rand::distr::{Alphanumeric, SampleString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Random characters after the prefix (≈238 bits).
const KEY_CHARS: usize = 40;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Secret,
    Publishable,
}

impl KeyKind {
    pub fn prefix(self) -> &'static str {
        match self {
            KeyKind::Secret => "sk_",
            KeyKind::Publishable => "pk_",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Secret => "secret",
            KeyKind::Publishable => "publishable",
        }
    }

    pub fn parse(text: &str) -> Option<KeyKind> {
        match text {
            "secret" => Some(KeyKind::Secret),
            "publishable" => Some(KeyKind::Publishable),
            _ => None,
        }
    }
}

pub type KeyHash = [u8; 32];

/// A fresh key of `kind`, e.g. `sk_3kTq…`.
pub fn generate(kind: KeyKind) -> String {
    let mut key = String::from(kind.prefix());
    key.push_str(&Alphanumeric.sample_string(&mut rand::rng(), KEY_CHARS));
    key
}

/// A random token for the platform owner.
pub fn generate_admin_token() -> String {
    format!(
        "adm_{}",
        Alphanumeric.sample_string(&mut rand::rng(), KEY_CHARS)
    )
}

pub fn hash(key: &str) -> KeyHash {
    Sha256::digest(key.as_bytes()).into()
}

pub fn hash_hex(key: &str) -> String {
    hex::encode(hash(key))
}

pub fn parse_hash_hex(text: &str) -> Option<KeyHash> {
    hex::decode(text).ok()?.try_into().ok()
}

/// Constant-time equality of two key hashes.
pub fn same(a: &KeyHash, b: &KeyHash) -> bool {
    a.ct_eq(b).into()
}

/// A key's id (`key_` and 20 random characters): what the API and the audit log name it
/// by, which unlike its prefix says nothing of the key.
pub fn generate_id() -> String {
    format!("key_{}", Alphanumeric.sample_string(&mut rand::rng(), 20))
}

/// The first characters of a key, safe to show and log.
pub fn display_prefix(key: &str) -> String {
    key.chars().take(7).collect()
}
