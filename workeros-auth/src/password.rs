//! Password hashing: Argon2id with the OWASP parameters (19 MiB of memory, 2 passes, 1 lane), as
//! PHC strings (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`) with a random 128-bit salt.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 8;
/// Longest password accepted (hashing cost stays bounded).
pub const MAX_PASSWORD_LEN: usize = 1024;

fn argon2() -> Result<Argon2<'static>, crate::AuthError> {
    let params = Params::new(19 * 1024, 2, 1, None).map_err(|_| crate::AuthError::Internal)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Checks a new password's length (in characters).
pub fn check_new_password(password: &str) -> Result<(), crate::AuthError> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_LEN || password.len() > MAX_PASSWORD_LEN {
        return Err(crate::AuthError::Validation(format!(
            "a password has {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} characters"
        )));
    }
    Ok(())
}

/// Hashes `password` with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, crate::AuthError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()?
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| crate::AuthError::Internal)
}

/// Whether `password` matches the PHC string `stored` (compared in constant time by `argon2`). A
/// stored value that is not a valid hash never matches.
pub fn verify_password(password: &str, stored: &str) -> bool {
    if password.len() > MAX_PASSWORD_LEN {
        return false;
    }
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    argon2().is_ok_and(|a| a.verify_password(password.as_bytes(), &parsed).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ() {
        let a = hash_password("correct horse battery").unwrap();
        let b = hash_password("correct horse battery").unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "a fresh salt each time");
        assert!(verify_password("correct horse battery", &a));
        assert!(!verify_password("correct horse batterY", &a));
        assert!(!verify_password("", &a));
        assert!(!verify_password("correct horse battery", "not a hash"));
        assert!(!verify_password("correct horse battery", ""));
        assert!(!a.contains("correct"));
    }

    #[test]
    fn lengths() {
        assert!(check_new_password("short").is_err());
        assert!(check_new_password("eight ch").is_ok());
        assert!(check_new_password(&"x".repeat(1025)).is_err());
        assert!(!verify_password(
            &"x".repeat(1025),
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"
        ));
    }
}
