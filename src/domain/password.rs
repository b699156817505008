//! Passwords: length rules, argon2id hashing, verification.

use std::sync::LazyLock;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

/// A new password that meets the length rules (checked; not yet hashed).
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(..)")
    }
}

impl Password {
    /// At least 10 characters and at most 256 (NCSC advice favours length over rules).
    pub fn parse(input: &str) -> Result<Self, String> {
        let chars = input.chars().count();
        if chars < 10 {
            return Err("Password must be at least 10 characters".into());
        }
        if chars > 256 {
            return Err("Password must be 256 characters or fewer".into());
        }
        Ok(Self(input.to_owned()))
    }

    /// The argon2id hash in PHC form, with a fresh random salt.
    pub fn hash(&self) -> Result<String, String> {
        Argon2::default()
            .hash_password(self.0.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| format!("cannot hash password: {e}"))
    }
}

/// A hash of a password nobody knows, so a sign-in for an unknown user costs as much
/// time as one for a known user.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    Password("a password that is never used".into())
        .hash()
        .unwrap_or_default()
});

/// Whether `candidate` matches the stored hash. With no hash, spends the same effort
/// and answers no.
pub fn verify(stored_hash: Option<&str>, candidate: &str) -> bool {
    let hash = stored_hash.unwrap_or(DUMMY_HASH.as_str());
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let matches = Argon2::default()
        .verify_password(candidate.as_bytes(), &parsed)
        .is_ok();
    matches && stored_hash.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_and_verifies() {
        assert!(Password::parse("short").is_err());
        let password = Password::parse("correct horse battery").expect("long enough");
        let hash = password.hash().expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify(Some(&hash), "correct horse battery"));
        assert!(!verify(Some(&hash), "wrong horse battery"));
        assert!(!verify(None, "a password that is never used"));
    }
}
