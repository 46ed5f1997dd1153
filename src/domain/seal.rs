//! Electronic seals (电子印章): the DSSE pre-authentication encoding, Ed25519 and SM2 signatures.
//!
//! Signatures cover `PAE(payload_type, payload)`, never a re-serialised struct, so a verifier needs only the bytes
//! the server stored. SM2 (GB/T 32918.2) hashes `Z_A || message` with SM3 (GB/T 32905) itself; `Z_A` binds the
//! signer's distinguishing identifier, which is always [`SM2_DIST_ID`].
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

/// The SM2 distinguishing identifier: the default of GM/T 0009-2012, which other SM2 implementations assume when
/// none is agreed, so a third party can verify our seals with stock tools.
pub const SM2_DIST_ID: &str = "1234567812345678";

/// Signs `(payload_type, payload)` with an SM2 key; the signature is `r || s`, 64 bytes big-endian.
pub fn sign_sm2(key: &sm2::dsa::SigningKey, payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let signature: sm2::dsa::Signature = key.sign(&pae(payload_type, payload));
    signature.to_vec()
}

/// Signs `(payload_type, payload)` with an Ed25519 key.
pub fn sign_ed25519(key: &SigningKey, payload_type: &str, payload: &[u8]) -> Vec<u8> {
    key.sign(&pae(payload_type, payload)).to_bytes().to_vec()
}

/// A seal key's public point, decoded once: decoding an Ed25519 point is about a fifth of the cost of a
/// verification, and every request carries two signatures of the same key.
#[derive(Debug, Clone)]
pub enum PublicKey {
    Ed25519(VerifyingKey),
    Sm2(sm2::dsa::VerifyingKey),
}

impl PublicKey {
    /// Decodes `key`'s public point.
    pub fn parse(key: &SealKey) -> Result<PublicKey, DomainError> {
        match key.algorithm {
            KeyAlgorithm::Ed25519 => {
                let public: [u8; 32] = key.public_key.as_slice().try_into().map_err(|_| {
                    DomainError::BadSignature(format!("key {} is not a 32-byte Ed25519 key", key.key_id))
                })?;
                VerifyingKey::from_bytes(&public)
                    .map(PublicKey::Ed25519)
                    .map_err(|_| DomainError::BadSignature(format!("key {} is not a valid Ed25519 point", key.key_id)))
            }
            KeyAlgorithm::Sm2 => sm2::dsa::VerifyingKey::from_sec1_bytes(SM2_DIST_ID, &key.public_key)
                .map(PublicKey::Sm2)
                .map_err(|_| DomainError::BadSignature(format!("key {} is not a valid SM2 point", key.key_id))),
        }
    }

    /// The algorithm the point is for.
    pub fn algorithm(&self) -> KeyAlgorithm {
        match self {
            PublicKey::Ed25519(_) => KeyAlgorithm::Ed25519,
            PublicKey::Sm2(_) => KeyAlgorithm::Sm2,
        }
    }
}

/// Checks that `key` may sign at `at` and that `signature` is its signature over `(payload_type, payload)`.
pub fn verify(
    key: &SealKey,
    payload_type: &str,
    payload: &[u8],
    signature: &[u8],
    at: DateTime<Utc>,
) -> Result<(), DomainError> {
    verify_with(key, &PublicKey::parse(key)?, payload_type, payload, signature, at)
}

/// [`verify`] with `key`'s point decoded before: `public` must be `PublicKey::parse(key)`.
pub fn verify_with(
    key: &SealKey,
    public: &PublicKey,
    payload_type: &str,
    payload: &[u8],
    signature: &[u8],
    at: DateTime<Utc>,
) -> Result<(), DomainError> {
    check_window(key, at)?;
    if public.algorithm() != key.algorithm {
        return Err(DomainError::BadSignature(format!(
            "key {} is {:?}, but the point given is {:?}",
            key.key_id,
            key.algorithm,
            public.algorithm()
        )));
    }
    check_signature(key, public, payload_type, payload, signature)
}

fn check_window(key: &SealKey, at: DateTime<Utc>) -> Result<(), DomainError> {
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
    Ok(())
}

fn check_signature(
    key: &SealKey,
    public: &PublicKey,
    payload_type: &str,
    payload: &[u8],
    signature: &[u8],
) -> Result<(), DomainError> {
    let verified = match public {
        PublicKey::Ed25519(public) => {
            let signature = Signature::from_slice(signature)
                .map_err(|_| DomainError::BadSignature("the signature is not 64 bytes".into()))?;
            public.verify(&pae(payload_type, payload), &signature)
        }
        PublicKey::Sm2(public) => {
            let signature = sm2::dsa::Signature::from_slice(signature)
                .map_err(|_| DomainError::BadSignature("the SM2 signature is not 64 bytes of r || s".into()))?;
            public.verify(&pae(payload_type, payload), &signature)
        }
    };
    verified.map_err(|_| DomainError::BadSignature(format!("the signature does not verify with key {}", key.key_id)))
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
        KeyAlgorithm::Sm2 => {
            sm2::dsa::VerifyingKey::from_sec1_bytes(SM2_DIST_ID, public_key).map(|_| ()).map_err(|_| {
                DomainError::field("public_key", "not a valid SM2 public key (SEC1 encoding, 33 or 65 bytes)")
            })
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
    fn a_decoded_point_verifies_as_the_key_does() {
        let sk = SigningKey::from_bytes(&[7u8; 32]);
        let mut k = key(&sk);
        let public = PublicKey::parse(&k).expect("valid point");
        let now = Utc::now();
        let sig = sign_ed25519(&sk, "t", b"abc");
        assert!(verify_with(&k, &public, "t", b"abc", &sig, now).is_ok());
        assert!(verify_with(&k, &public, "t", b"abd", &sig, now).is_err());
        // The window is still the key's.
        k.revoked_at = Some(now - chrono::Duration::seconds(1));
        assert!(verify_with(&k, &public, "t", b"abc", &sig, now).unwrap_err().to_string().contains("revoked"));
        // A point of another algorithm is refused, not tried.
        k.revoked_at = None;
        k.algorithm = KeyAlgorithm::Sm2;
        assert!(verify_with(&k, &public, "t", b"abc", &sig, now).unwrap_err().to_string().contains("but the point"));
        assert!(PublicKey::parse(&k).is_err(), "32 bytes are not an SM2 point");
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

    /// GB/T 32918.5-2017 (GM/T 0003.5-2012) Annex A: the recommended curve, ID 1234567812345678, "message digest".
    const SM2_SECRET: &str = "3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8";
    const SM2_PUBLIC: &str = "0409F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020\
                              CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13";
    const SM2_SIGNATURE: &str = "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3\
                                 B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA";

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s.split_whitespace().collect::<String>()).expect("test vector is hex")
    }

    #[test]
    fn sm2_published_vector_verifies() {
        use sm2::dsa::signature::Verifier as _;
        let secret = sm2::dsa::SigningKey::from_slice(SM2_DIST_ID, &unhex(SM2_SECRET)).expect("valid scalar");
        // The public key derived from the published secret is the published public key.
        assert_eq!(secret.verifying_key().to_sec1_bytes().to_vec(), unhex(SM2_PUBLIC));
        let public = sm2::dsa::VerifyingKey::from_sec1_bytes(SM2_DIST_ID, &unhex(SM2_PUBLIC)).expect("valid point");
        let sig = sm2::dsa::Signature::from_slice(&unhex(SM2_SIGNATURE)).expect("64 bytes");
        assert!(public.verify(b"message digest", &sig).is_ok());
        assert!(public.verify(b"message digesT", &sig).is_err());
        // The identifier is part of what is signed.
        let other_id = sm2::dsa::VerifyingKey::from_sec1_bytes("ALICE123@YAHOO.COM", &unhex(SM2_PUBLIC)).expect("ok");
        assert!(other_id.verify(b"message digest", &sig).is_err());
    }

    #[test]
    fn sm3_published_vectors() {
        use sm3::Digest;
        // GB/T 32905-2016 Annex A, examples 1 and 2.
        assert_eq!(
            hex::encode(sm3::Sm3::digest(b"abc")),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        );
        assert_eq!(
            hex::encode(sm3::Sm3::digest(b"abcd".repeat(16))),
            "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
        );
    }

    #[test]
    fn sm2_seals_sign_and_verify_through_pae() {
        let sk = sm2::dsa::SigningKey::from_slice(SM2_DIST_ID, &unhex(SM2_SECRET)).expect("valid scalar");
        let k = SealKey {
            key_id: "sm2#1".into(),
            algorithm: KeyAlgorithm::Sm2,
            public_key: sk.verifying_key().to_sec1_bytes().to_vec(),
            valid_from: None,
            revoked_at: None,
        };
        let now = Utc::now();
        let sig = sign_sm2(&sk, "gongwen.v1.Acknowledge", b"abc");
        assert_eq!(sig.len(), 64);
        assert!(verify(&k, "gongwen.v1.Acknowledge", b"abc", &sig, now).is_ok());
        assert!(verify(&k, "gongwen.v1.Acknowledge", b"abd", &sig, now).is_err());
        assert!(verify(&k, "gongwen.v1.Complete", b"abc", &sig, now).is_err());
        assert!(verify(&k, "gongwen.v1.Acknowledge", b"abc", &sig[..63], now).is_err());
        // An Ed25519 signature is not an SM2 one, and an SM2 key registered as Ed25519 is refused.
        let ed = sign_ed25519(&SigningKey::from_bytes(&[7u8; 32]), "gongwen.v1.Acknowledge", b"abc");
        assert!(verify(&k, "gongwen.v1.Acknowledge", b"abc", &ed, now).is_err());
        assert!(check_public_key(KeyAlgorithm::Sm2, &k.public_key).is_ok());
        assert!(check_public_key(KeyAlgorithm::Ed25519, &k.public_key).is_err());
        assert!(check_public_key(KeyAlgorithm::Sm2, &[4u8; 65]).is_err());
    }
}
