//! Passwords as argon2id PHC strings (RustCrypto's `argon2`, OWASP's parameters: 19 MiB,
//! two passes, one lane). Hashing takes tens of milliseconds of CPU by design, so it runs
//! on tokio's blocking threads, never on an HTTP worker that ingest shares, a few at once.

use std::sync::LazyLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::RngCore;

use crate::error::ApiError;

/// Hashes at once, at most: each takes 19 MiB and a core for tens of milliseconds, so a
/// flood of sign-ins waits its turn instead of taking the machine's memory.
const AT_ONCE: usize = 4;
static HASHING: LazyLock<tokio::sync::Semaphore> =
    LazyLock::new(|| tokio::sync::Semaphore::new(AT_ONCE));

/// Runs `work` on a blocking thread, when one of the `AT_ONCE` turns is free.
async fn in_turn<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    let _turn = HASHING
        .acquire()
        .await
        .map_err(|e| ApiError::internal(&e))?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal(&e))
}

/// A password's PHC string.
pub async fn hash(password: String) -> Result<String, ApiError> {
    in_turn(move || hash_now(&password)).await?
}

fn hash_now(password: &str) -> Result<String, ApiError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| hashing_failed(&e))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| hashing_failed(&e))
}

/// Whether `password` matches `stored`; without a stored hash (no such user, or an
/// invite not yet accepted) a dummy hash is checked, so the answer takes as long.
pub async fn verify(password: String, stored: Option<String>) -> Result<bool, ApiError> {
    in_turn(move || {
        let matched = verify_now(&password, stored.as_deref().unwrap_or(&DUMMY));
        matched && stored.is_some()
    })
    .await
}

fn verify_now(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A hash of no one's password, checked when there is no user to check.
static DUMMY: LazyLock<String> =
    LazyLock::new(|| hash_now("no user has this password").unwrap_or_default());

fn hashing_failed(err: &argon2::password_hash::Error) -> ApiError {
    tracing::error!(error = %err, "hashing a password failed");
    ApiError::unavailable("busy", "the password could not be hashed; retry")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let stored = hash_now("correct horse battery").unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(verify_now("correct horse battery", &stored));
        assert!(!verify_now("wrong horse battery", &stored));
    }
}
