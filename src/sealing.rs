//! Secrets at rest: what the daemon must keep and read back in clear (a webhook endpoint's
//! signing secret, a creator's PostHog key, the keys that sign customer session tokens) is
//! stored sealed with AES-256-GCM under the
//! master key (`security.master_key`). The row's owner and purpose are the associated
//! data, so a sealed value copied into another creator's row, or into another column, does
//! not open.
//!
//! A sealed value reads `v2.<key id>.<base64 of nonce and ciphertext>`. The key id (the
//! first 16 hex digits of SHA-256 over the key) names the key that sealed it, so the
//! master key can be rotated: the new key seals, and the keys listed in
//! `security.previous_master_keys` still open what they sealed; at each start every stored
//! secret sealed under another key is sealed again under the current one
//! (`startup::reseal_secrets`), after which the old key can leave the list.
//!
//! Without `security.master_key`, the key is `secrets.sealing_key`, else a key file made
//! in `data_dir` on first start. Values of earlier versions (`v1.`, XChaCha20-Poly1305
//! under that same key) still open, and are sealed again at the next start.

use std::collections::HashMap;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use sha2::{Digest, Sha256};

const VERSION: &str = "v2.";
const NONCE_LEN: usize = 12;
/// What the first version sealed: `v1.<base64 of a 24-byte nonce and ciphertext>`.
const LEGACY_VERSION: &str = "v1.";
const LEGACY_NONCE_LEN: usize = 24;
const KEY_FILE: &str = "sealing_key";

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("{0} must be 32 bytes in base64")]
    BadKey(&'static str),
    #[error("reading or writing the sealing key file {0}")]
    KeyFile(String),
    #[error("a sealed secret does not open with the keys given (security.master_key, security.previous_master_keys)")]
    DoesNotOpen,
}

/// The keys a sealer knows: where they come from.
pub struct SealingKeys<'a> {
    /// `security.master_key`; empty: `legacy_key`, else the key file.
    pub master_key: &'a str,
    /// `security.previous_master_keys`: base64 keys, separated by commas.
    pub previous_keys: &'a str,
    /// `secrets.sealing_key`, the first version's setting.
    pub legacy_key: &'a str,
}

/// Seals and opens secrets with the daemon's keys.
#[derive(Clone)]
pub struct Sealer {
    current_id: String,
    current: Aes256Gcm,
    /// Every key that opens, by id (the current one too).
    openers: HashMap<String, Aes256Gcm>,
    /// The same keys as XChaCha20-Poly1305, for `v1.` values.
    legacy: Vec<XChaCha20Poly1305>,
}

type Key = [u8; 32];

impl Sealer {
    pub fn from_config(keys: &SealingKeys<'_>, data_dir: &Path) -> Result<Sealer, SealError> {
        let mut known: Vec<Key> = Vec::new();
        if !keys.master_key.is_empty() {
            known.push(decode(keys.master_key, "security.master_key")?);
        }
        for previous in keys.previous_keys.split(',').map(str::trim) {
            if !previous.is_empty() {
                known.push(decode(previous, "security.previous_master_keys")?);
            }
        }
        // The first version's key: the master key when none is set, else one more
        // previous key (what it sealed opens).
        let legacy = if !keys.legacy_key.is_empty() {
            Some(decode(keys.legacy_key, "secrets.sealing_key")?)
        } else {
            key_file(data_dir, keys.master_key.is_empty())?
        };
        match legacy {
            Some(key) if keys.master_key.is_empty() => known.insert(0, key),
            Some(key) => known.push(key),
            None => {}
        }
        Ok(Sealer::from_keys(&known))
    }

    /// Seals with the first key; every key opens.
    fn from_keys(keys: &[Key]) -> Sealer {
        let openers: HashMap<String, Aes256Gcm> = keys
            .iter()
            .map(|key| (key_id(key), Aes256Gcm::new(key.into())))
            .collect();
        Sealer {
            current_id: key_id(&keys[0]),
            current: Aes256Gcm::new((&keys[0]).into()),
            openers,
            legacy: keys
                .iter()
                .map(|key| XChaCha20Poly1305::new(key.into()))
                .collect(),
        }
    }

    /// Seals `secret` for `owner` (such as `webhook_endpoint:<creator>:<id>`).
    pub fn seal(&self, owner: &str, secret: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .current
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: secret.as_bytes(),
                    aad: owner.as_bytes(),
                },
            )
            .expect("sealing in memory cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("{VERSION}{}.{}", self.current_id, BASE64.encode(out))
    }

    /// Opens what `seal` made for the same `owner`, under any key it knows.
    pub fn open(&self, owner: &str, sealed: &str) -> Result<String, SealError> {
        let clear = if let Some(rest) = sealed.strip_prefix(VERSION) {
            let (id, body) = rest.split_once('.').ok_or(SealError::DoesNotOpen)?;
            let cipher = self.openers.get(id).ok_or(SealError::DoesNotOpen)?;
            let bytes = opened_bytes(body, NONCE_LEN)?;
            let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
            cipher
                .decrypt(Nonce::from_slice(nonce), payload(ciphertext, owner))
                .map_err(|_| SealError::DoesNotOpen)?
        } else {
            let body = sealed
                .strip_prefix(LEGACY_VERSION)
                .ok_or(SealError::DoesNotOpen)?;
            let bytes = opened_bytes(body, LEGACY_NONCE_LEN)?;
            let (nonce, ciphertext) = bytes.split_at(LEGACY_NONCE_LEN);
            self.legacy
                .iter()
                .find_map(|cipher| {
                    cipher
                        .decrypt(XNonce::from_slice(nonce), payload(ciphertext, owner))
                        .ok()
                })
                .ok_or(SealError::DoesNotOpen)?
        };
        String::from_utf8(clear).map_err(|_| SealError::DoesNotOpen)
    }

    /// Whether `sealed` is sealed under the current key (else it is sealed again).
    pub fn is_current(&self, sealed: &str) -> bool {
        sealed
            .strip_prefix(VERSION)
            .and_then(|rest| rest.split_once('.'))
            .is_some_and(|(id, _)| id == self.current_id)
    }
}

fn payload<'a>(msg: &'a [u8], owner: &'a str) -> Payload<'a, 'a> {
    Payload {
        msg,
        aad: owner.as_bytes(),
    }
}

fn opened_bytes(body: &str, nonce_len: usize) -> Result<Vec<u8>, SealError> {
    BASE64
        .decode(body)
        .ok()
        .filter(|bytes| bytes.len() > nonce_len)
        .ok_or(SealError::DoesNotOpen)
}

/// A key's public name: 16 hex digits of SHA-256 over it.
fn key_id(key: &Key) -> String {
    hex::encode(&Sha256::digest(key)[..8])
}

fn decode(text: &str, setting: &'static str) -> Result<Key, SealError> {
    let key = BASE64
        .decode(text.trim())
        .map_err(|_| SealError::BadKey(setting))?;
    key.try_into().map_err(|_| SealError::BadKey(setting))
}

/// The key kept in `data_dir`; made there when `make` and none is kept.
fn key_file(data_dir: &Path, make: bool) -> Result<Option<Key>, SealError> {
    let path = data_dir.join(KEY_FILE);
    let describe = |e: std::io::Error| SealError::KeyFile(format!("{}: {e}", path.display()));
    match std::fs::read_to_string(&path) {
        Ok(text) => decode(&text, "the sealing key file").map(Some),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound && make => {
            let mut key = [0u8; 32];
            rand::rng().fill_bytes(&mut key);
            write_private(&path, &BASE64.encode(key)).map_err(describe)?;
            tracing::warn!(path = %path.display(),
                "made a new sealing key for secrets at rest; back it up apart from the database \
                 (or set security.master_key)");
            Ok(Some(key))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(describe(err)),
    }
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys<'a>(master: &'a str, previous: &'a str) -> SealingKeys<'a> {
        SealingKeys {
            master_key: master,
            previous_keys: previous,
            legacy_key: "",
        }
    }

    #[test]
    fn a_sealed_secret_opens_only_for_its_owner_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let sealer = Sealer::from_config(&keys("", ""), dir.path()).unwrap();
        let sealed = sealer.seal("endpoint:c1:we_1", "whsec_abc");
        assert!(sealed.starts_with("v2.") && !sealed.contains("whsec_abc"));
        assert!(sealer.is_current(&sealed));
        assert_eq!(
            sealer.open("endpoint:c1:we_1", &sealed).unwrap(),
            "whsec_abc"
        );
        assert!(sealer.open("endpoint:c2:we_1", &sealed).is_err());
        // The key file made on first start is the key of the next start.
        let again = Sealer::from_config(&keys("", ""), dir.path()).unwrap();
        assert_eq!(
            again.open("endpoint:c1:we_1", &sealed).unwrap(),
            "whsec_abc"
        );
        let other_dir = tempfile::tempdir().unwrap();
        let other = Sealer::from_config(&keys(&BASE64.encode([7u8; 32]), ""), other_dir.path());
        assert!(other.unwrap().open("endpoint:c1:we_1", &sealed).is_err());
        assert!(Sealer::from_config(&keys("c2hvcnQ=", ""), dir.path()).is_err());
    }

    #[test]
    fn a_rotated_master_key_still_opens_what_the_previous_one_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let (old, new) = (BASE64.encode([1u8; 32]), BASE64.encode([2u8; 32]));
        let before = Sealer::from_config(&keys(&old, ""), dir.path()).unwrap();
        let sealed = before.seal("posthog:c1", "phc_key");
        let after = Sealer::from_config(&keys(&new, &old), dir.path()).unwrap();
        assert!(!after.is_current(&sealed));
        assert_eq!(after.open("posthog:c1", &sealed).unwrap(), "phc_key");
        let resealed = after.seal("posthog:c1", "phc_key");
        assert!(after.is_current(&resealed));
        let forgotten = Sealer::from_config(&keys(&new, ""), dir.path()).unwrap();
        assert!(forgotten.open("posthog:c1", &sealed).is_err());
        assert_eq!(forgotten.open("posthog:c1", &resealed).unwrap(), "phc_key");
        // No key file is made while a master key is set.
        assert!(!dir.path().join(KEY_FILE).exists());
    }

    #[test]
    fn values_of_the_first_version_still_open() {
        let dir = tempfile::tempdir().unwrap();
        let key = [9u8; 32];
        let legacy = XChaCha20Poly1305::new((&key).into());
        let nonce = [3u8; LEGACY_NONCE_LEN];
        let mut bytes = nonce.to_vec();
        bytes.extend(
            legacy
                .encrypt(XNonce::from_slice(&nonce), payload(b"whsec_old", "we:c1"))
                .unwrap(),
        );
        let sealed = format!("{LEGACY_VERSION}{}", BASE64.encode(bytes));
        let encoded = BASE64.encode(key);
        let config = SealingKeys {
            master_key: "",
            previous_keys: "",
            legacy_key: &encoded,
        };
        let sealer = Sealer::from_config(&config, dir.path()).unwrap();
        assert_eq!(sealer.open("we:c1", &sealed).unwrap(), "whsec_old");
        assert!(!sealer.is_current(&sealed));
        // Moving to a master key keeps the old key as one that opens.
        let master = BASE64.encode([4u8; 32]);
        let config = SealingKeys {
            master_key: &master,
            ..config
        };
        let sealer = Sealer::from_config(&config, dir.path()).unwrap();
        assert_eq!(sealer.open("we:c1", &sealed).unwrap(), "whsec_old");
    }
}
