//! Electronic seals (电子印章): the DSSE pre-authentication encoding and Ed25519 signatures.
//!
//! Signatures cover `PAE(payload_type, payload)`, never a re-serialised struct, so a verifier needs only the bytes
//! the server stored.
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

use super::DomainError;
use super::model::{KeyAlgorithm, SealKey};

/// DSSE v1 pre-authentication encoding: `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload_type.len() + payload.len() + 32);
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

/// Signs `(payload_type, payload)` with an Ed25519 key.
pub fn sign_ed25519(key: &SigningKey, payload_type: &str, payload: &[u8]) -> Vec<u8> {
    key.sign(&pae(payload_type, payload)).to_bytes().to_vec()
}

/// Checks that `key` may sign at `at` and that `signature` is its signature over `(payload_type, payload)`.
pub fn verify(
    key: &SealKey,
    payload_type: &str,
    payload: &[u8],
    signature: &[u8],
    at: DateTime<Utc>,
) -> Result<(), DomainError> {
    if let Some(from) = key.valid_from
        && at < from
    {
        return Err(DomainError::BadSignature(format!("key {} is not valid before {from}", key.key_id)));
    }
    if let Some(revoked) = key.revoked_at
        && at >= revoked
    {
        return Err(DomainError::BadSignature(format!("key {} was revoked at {revoked}", key.key_id)));
    }
    match key.algorithm {
        KeyAlgorithm::Ed25519 => {
            let public: [u8; 32] =
                key.public_key.as_slice().try_into().map_err(|_| {
                    DomainError::BadSignature(format!("key {} is not a 32-byte Ed25519 key", key.key_id))
                })?;
            let public = VerifyingKey::from_bytes(&public)
                .map_err(|_| DomainError::BadSignature(format!("key {} is not a valid Ed25519 point", key.key_id)))?;
            let signature = Signature::from_slice(signature)
                .map_err(|_| DomainError::BadSignature("the signature is not 64 bytes".into()))?;
            public.verify(&pae(payload_type, payload), &signature).map_err(|_| {
                DomainError::BadSignature(format!("the signature does not verify with key {}", key.key_id))
            })
        }
    }
}

/// Checks a public key's encoding for its algorithm (at registration time).
pub fn check_public_key(algorithm: KeyAlgorithm, public_key: &[u8]) -> Result<(), DomainError> {
    match algorithm {
        KeyAlgorithm::Ed25519 => {
            let bytes: [u8; 32] = public_key
                .try_into()
                .map_err(|_| DomainError::field("public_key", "an Ed25519 public key has 32 bytes"))?;
            VerifyingKey::from_bytes(&bytes)
                .map(|_| ())
                .map_err(|_| DomainError::field("public_key", "not a valid Ed25519 public key"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(sk: &SigningKey) -> SealKey {
        SealKey {
            key_id: "k1".into(),
            algorithm: KeyAlgorithm::Ed25519,
            public_key: sk.verifying_key().to_bytes().to_vec(),
            valid_from: None,
            revoked_at: None,
        }
    }

    #[test]
    fn pae_matches_the_dsse_spec_example() {
        // The example from the DSSE protocol document.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ".to_vec());
    }

    #[test]
    fn sign_then_verify_and_reject_changes() {
        let sk = SigningKey::from_bytes(&[7u8; 32]);
        let k = key(&sk);
        let now = Utc::now();
        let sig = sign_ed25519(&sk, "gongwen.v1.Acknowledge", b"abc");
        assert!(verify(&k, "gongwen.v1.Acknowledge", b"abc", &sig, now).is_ok());
        assert!(verify(&k, "gongwen.v1.Acknowledge", b"abd", &sig, now).is_err());
        assert!(verify(&k, "gongwen.v1.Complete", b"abc", &sig, now).is_err());
        assert!(verify(&k, "gongwen.v1.Acknowledge", b"abc", &sig[..63], now).is_err());
        let other = SigningKey::from_bytes(&[8u8; 32]);
        let sig2 = sign_ed25519(&other, "gongwen.v1.Acknowledge", b"abc");
        assert!(verify(&k, "gongwen.v1.Acknowledge", b"abc", &sig2, now).is_err());
    }

    #[test]
    fn validity_window_is_enforced() {
        let sk = SigningKey::from_bytes(&[9u8; 32]);
        let mut k = key(&sk);
        let now = Utc::now();
        let sig = sign_ed25519(&sk, "t", b"x");
        k.revoked_at = Some(now);
        assert!(verify(&k, "t", b"x", &sig, now).is_err());
        assert!(verify(&k, "t", b"x", &sig, now - chrono::Duration::seconds(1)).is_ok());
        k.revoked_at = None;
        k.valid_from = Some(now);
        assert!(verify(&k, "t", b"x", &sig, now - chrono::Duration::seconds(1)).is_err());
    }

    #[test]
    fn public_keys_are_checked() {
        assert!(check_public_key(KeyAlgorithm::Ed25519, &[1u8; 31]).is_err());
        let sk = SigningKey::from_bytes(&[3u8; 32]);
        assert!(check_public_key(KeyAlgorithm::Ed25519, sk.verifying_key().as_bytes()).is_ok());
    }
}
