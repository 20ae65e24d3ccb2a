//! Gateway credentials: long random bearer tokens, stored only as SHA-256 hashes and compared in
//! constant time.
//!
//! A credential carries 256 random bits from the OS, so a fast hash is the right tool (a slow password hash such
//! as argon2 guards low-entropy human passwords, and would only slow every poll down).

use sha2::{Digest, Sha256};

/// The prefix that makes a leaked credential recognisable in logs and secret scanners.
pub const CREDENTIAL_PREFIX: &str = "sgw_";

/// A new random credential, shown once to the admin who issues it.
pub fn generate_credential() -> String {
    format!("{CREDENTIAL_PREFIX}{}", crate::random::hex::<32>())
}

/// The hash stored for a credential (hex SHA-256).
pub fn hash_credential(credential: &str) -> String {
    format!("{:x}", Sha256::digest(credential.as_bytes()))
}

/// Whether `presented` matches `stored_hash`, in time independent of where they differ.
pub fn verify_credential(presented: &str, stored_hash: &str) -> bool {
    let presented_hash = hash_credential(presented);
    use subtle::ConstantTimeEq;
    bool::from(presented_hash.as_bytes().ct_eq(stored_hash.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_verifies_against_its_hash_only() {
        let credential = generate_credential();
        let hash = hash_credential(&credential);
        assert!(verify_credential(&credential, &hash));
        assert!(!verify_credential(&generate_credential(), &hash));
        assert!(!verify_credential("", &hash));
        assert!(!verify_credential(&credential, "short"));
    }

    #[test]
    fn credentials_are_long_random_and_recognisable() {
        let a = generate_credential();
        assert!(a.starts_with(CREDENTIAL_PREFIX));
        assert_eq!(a.len(), CREDENTIAL_PREFIX.len() + 64);
        assert_ne!(a, generate_credential());
    }

    #[test]
    fn the_hash_is_hex_sha256() {
        assert_eq!(
            hash_credential("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
