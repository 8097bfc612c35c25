//! Username and password credentials: users in `[[auth.users]]` with an argon2 hash (PHC
//! string, never the password), verified on a blocking thread because argon2 is slow on
//! purpose and a shard must not stall its other connections. An unknown user costs the same
//! verification as a wrong password, so timing does not tell which users exist.

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use serde::{Deserialize, Serialize};

/// One user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// The name HELLO's `user` header carries.
    pub name: String,
    /// The password's argon2 hash, a PHC string (`shardbus --hash-password`).
    pub password_hash: String,
    /// Its role.
    pub role: String,
    /// Permissions of its own, replacing the role's.
    #[serde(default)]
    pub permissions: Option<super::Permissions>,
}

/// A hash no password matches, verified for unknown users (same cost as a real check).
const DECOY: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2hhcmRidXNkZWNveQ$2tS7i1mWvYy3yU0Q8Tnqyu1vkJ8b8e0PZq7m1m1YkxY";

/// Whether `password` matches `hash` (a PHC string); a malformed hash matches nothing.
pub fn verify(hash: &str, password: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// Runs the check for an unknown user, to spend the same time, and fails.
pub fn verify_decoy(password: &str) -> bool {
    let _ = verify(DECOY, password);
    false
}

/// Whether `hash` is a PHC string argon2 can verify against.
pub fn is_valid_hash(hash: &str) -> bool {
    PasswordHash::new(hash).is_ok()
}

/// An argon2id hash of `password` with a random salt, as `[[auth.users]]` wants it.
///
/// # Errors
/// The hasher failed (it does not with the default parameters).
pub fn hash(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let hashed = hash("correct horse").unwrap();
        assert!(hashed.starts_with("$argon2id$"));
        assert!(verify(&hashed, "correct horse"));
        assert!(!verify(&hashed, "battery staple"));
        assert!(!verify("not a hash", "correct horse"));
        assert!(is_valid_hash(DECOY));
        assert!(!verify_decoy("anything"));
    }
}
