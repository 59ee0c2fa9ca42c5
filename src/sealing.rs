//! Secrets at rest: what the daemon must keep and read back in clear (a webhook endpoint's
//! signing secret, a creator's PostHog key) is stored sealed with XChaCha20-Poly1305
//! under one key the operator holds (`secrets.sealing_key`, or a key file made on first
//! start). The row's owner and purpose are the associated data, so a sealed value copied
//! into another creator's row, or into another column, does not open.
//!
//! A sealed value reads `v1.<base64 of nonce and ciphertext>`; the version leaves room to
//! change the cipher or rotate the key later.

use std::path::Path;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

const VERSION: &str = "v1.";
const NONCE_LEN: usize = 24;
const KEY_FILE: &str = "sealing_key";

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("secrets.sealing_key must be 32 bytes in base64")]
    BadKey,
    #[error("reading or writing the sealing key file {0}")]
    KeyFile(String),
    #[error("a sealed secret does not open with this key (a different secrets.sealing_key?)")]
    DoesNotOpen,
}

/// Seals and opens secrets with the daemon's key.
#[derive(Clone)]
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl Sealer {
    /// The configured key, or the one kept in `data_dir` (made there on first start).
    pub fn from_config(configured: &str, data_dir: &Path) -> Result<Sealer, SealError> {
        if !configured.is_empty() {
            return Sealer::from_base64(configured);
        }
        let path = data_dir.join(KEY_FILE);
        let describe = |e: std::io::Error| SealError::KeyFile(format!("{}: {e}", path.display()));
        match std::fs::read_to_string(&path) {
            Ok(text) => Sealer::from_base64(text.trim()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                rand::rng().fill_bytes(&mut key);
                write_private(&path, &BASE64.encode(key)).map_err(describe)?;
                tracing::warn!(path = %path.display(),
                    "made a new sealing key for secrets at rest; back it up apart from the database");
                Ok(Sealer::from_key(&key))
            }
            Err(err) => Err(describe(err)),
        }
    }

    fn from_base64(text: &str) -> Result<Sealer, SealError> {
        let key = BASE64.decode(text).map_err(|_| SealError::BadKey)?;
        let key: [u8; 32] = key.try_into().map_err(|_| SealError::BadKey)?;
        Ok(Sealer::from_key(&key))
    }

    fn from_key(key: &[u8; 32]) -> Sealer {
        Sealer {
            cipher: XChaCha20Poly1305::new(key.into()),
        }
    }

    /// Seals `secret` for `owner` (such as `webhook_endpoint:<creator>:<id>`).
    pub fn seal(&self, owner: &str, secret: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: secret.as_bytes(),
                    aad: owner.as_bytes(),
                },
            )
            .expect("sealing in memory cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("{VERSION}{}", BASE64.encode(out))
    }

    /// Opens what `seal` made for the same `owner`.
    pub fn open(&self, owner: &str, sealed: &str) -> Result<String, SealError> {
        let bytes = sealed
            .strip_prefix(VERSION)
            .and_then(|b64| BASE64.decode(b64).ok())
            .filter(|bytes| bytes.len() > NONCE_LEN)
            .ok_or(SealError::DoesNotOpen)?;
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let clear = self
            .cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: owner.as_bytes(),
                },
            )
            .map_err(|_| SealError::DoesNotOpen)?;
        String::from_utf8(clear).map_err(|_| SealError::DoesNotOpen)
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

    #[test]
    fn a_sealed_secret_opens_only_for_its_owner_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let sealer = Sealer::from_config("", dir.path()).unwrap();
        let sealed = sealer.seal("endpoint:c1:we_1", "whsec_abc");
        assert!(!sealed.contains("whsec_abc"));
        assert_eq!(
            sealer.open("endpoint:c1:we_1", &sealed).unwrap(),
            "whsec_abc"
        );
        assert!(sealer.open("endpoint:c2:we_1", &sealed).is_err());
        // The key file made on first start is the key of the next start.
        let again = Sealer::from_config("", dir.path()).unwrap();
        assert_eq!(
            again.open("endpoint:c1:we_1", &sealed).unwrap(),
            "whsec_abc"
        );
        let other = Sealer::from_config(&BASE64.encode([7u8; 32]), dir.path()).unwrap();
        assert!(other.open("endpoint:c1:we_1", &sealed).is_err());
        assert!(Sealer::from_config("c2hvcnQ=", dir.path()).is_err());
    }
}
