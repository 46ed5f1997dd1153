//! Client-side signing of statements: what the CLI, the demo and the tests use to act as a unit.
use prost::Message;

use crate::domain::model::KeyAlgorithm;
use crate::domain::seal;
use crate::pb;

/// A protobuf message that travels signed inside a [`pb::SignedEnvelope`].
pub trait Statement: Message + Default {
    /// The envelope's payload type.
    const TYPE: &'static str;
}

macro_rules! statements {
    ($($t:ident),*) => {$(
        impl Statement for pb::$t {
            const TYPE: &'static str = concat!("gongwen.v1.", stringify!($t));
        }
    )*};
}
statements!(
    RegistryChange,
    IssueDocument,
    ForwardDocument,
    Acknowledge,
    ReturnDelivery,
    StartHandling,
    SubmitReport,
    Complete,
    Remind,
    ImportDocument,
    ChangeUnitKeys
);

/// A unit's (or the operator's) signing key.
#[derive(Clone)]
pub struct Signer {
    /// The key id registered for it.
    pub key_id: String,
    key: SecretKey,
}

#[derive(Clone)]
enum SecretKey {
    Ed25519(ed25519_dalek::SigningKey),
    Sm2(sm2::dsa::SigningKey),
}

/// Why a key could not be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot make a key: {0}")]
pub struct KeyGenError(String);

impl Signer {
    /// A new random Ed25519 key.
    pub fn generate(key_id: impl Into<String>) -> Result<Signer, KeyGenError> {
        Signer::generate_with(key_id, KeyAlgorithm::Ed25519)
    }

    /// A new random key of the given algorithm.
    pub fn generate_with(key_id: impl Into<String>, algorithm: KeyAlgorithm) -> Result<Signer, KeyGenError> {
        let key_id = key_id.into();
        // An SM2 secret must be a non-zero scalar below the group order; random 32 bytes almost always are, so
        // drawing again is the simple, unbiased way to get one.
        for _ in 0..64 {
            let mut secret = [0u8; 32];
            getrandom::getrandom(&mut secret).map_err(|e| KeyGenError(e.to_string()))?;
            if let Ok(signer) = Signer::from_secret_with(key_id.clone(), algorithm, &secret) {
                return Ok(signer);
            }
        }
        Err(KeyGenError("the random source gave no usable secret in 64 draws".into()))
    }

    /// An Ed25519 key from its 32 secret bytes.
    pub fn from_secret(key_id: impl Into<String>, secret: [u8; 32]) -> Signer {
        Signer { key_id: key_id.into(), key: SecretKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&secret)) }
    }

    /// A key of the given algorithm from its 32 secret bytes (for SM2, the big-endian secret scalar).
    pub fn from_secret_with(
        key_id: impl Into<String>,
        algorithm: KeyAlgorithm,
        secret: &[u8],
    ) -> Result<Signer, KeyGenError> {
        let bytes: [u8; 32] = secret.try_into().map_err(|_| KeyGenError("a secret key has 32 bytes".into()))?;
        let key = match algorithm {
            KeyAlgorithm::Ed25519 => SecretKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&bytes)),
            KeyAlgorithm::Sm2 => SecretKey::Sm2(
                sm2::dsa::SigningKey::from_slice(seal::SM2_DIST_ID, &bytes)
                    .map_err(|_| KeyGenError("not a valid SM2 secret scalar".into()))?,
            ),
        };
        Ok(Signer { key_id: key_id.into(), key })
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        match self.key {
            SecretKey::Ed25519(_) => KeyAlgorithm::Ed25519,
            SecretKey::Sm2(_) => KeyAlgorithm::Sm2,
        }
    }

    /// The secret bytes (for the keystore).
    pub fn secret(&self) -> [u8; 32] {
        match &self.key {
            SecretKey::Ed25519(k) => k.to_bytes(),
            SecretKey::Sm2(k) => k.to_bytes().into(),
        }
    }

    /// The public key bytes: 32 bytes for Ed25519, the uncompressed SEC1 point (65 bytes) for SM2.
    pub fn public_key(&self) -> Vec<u8> {
        match &self.key {
            SecretKey::Ed25519(k) => k.verifying_key().to_bytes().to_vec(),
            SecretKey::Sm2(k) => k.verifying_key().to_sec1_bytes().to_vec(),
        }
    }

    /// The registry entry for this key.
    pub fn seal_key(&self) -> pb::SealKey {
        pb::SealKey {
            key_id: self.key_id.clone(),
            algorithm: self.algorithm().name().into(),
            public_key: self.public_key(),
            valid_from: None,
            revoked_at: None,
        }
    }

    /// Signs raw bytes under a payload type (the DSSE pre-authentication encoding), returning the signature.
    pub fn sign_raw(&self, payload_type: &str, payload: &[u8]) -> Vec<u8> {
        match &self.key {
            SecretKey::Ed25519(k) => seal::sign_ed25519(k, payload_type, payload),
            SecretKey::Sm2(k) => seal::sign_sm2(k, payload_type, payload),
        }
    }

    /// Signs a statement into an envelope.
    pub fn envelope<M: Statement>(&self, statement: &M) -> pb::SignedEnvelope {
        let payload = statement.encode_to_vec();
        let signature = self.sign_raw(M::TYPE, &payload);
        pb::SignedEnvelope { payload_type: M::TYPE.into(), payload, key_id: self.key_id.clone(), signature }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_algorithms_round_trip_through_their_secret() {
        for algorithm in [KeyAlgorithm::Ed25519, KeyAlgorithm::Sm2] {
            let k = Signer::generate_with("k", algorithm).expect("random source");
            let back = Signer::from_secret_with("k", algorithm, &k.secret()).expect("own secret");
            assert_eq!(back.public_key(), k.public_key());
            assert_eq!(back.algorithm(), algorithm);
            let sk = crate::domain::model::SealKey::try_from(k.seal_key()).expect("valid key");
            let sig = k.sign_raw("t", b"x");
            assert!(seal::verify(&sk, "t", b"x", &sig, chrono::Utc::now()).is_ok(), "{algorithm:?}");
        }
        assert!(Signer::from_secret_with("k", KeyAlgorithm::Sm2, &[0u8; 32]).is_err());
        assert!(Signer::from_secret_with("k", KeyAlgorithm::Sm2, &[0xffu8; 32]).is_err());
        assert!(Signer::from_secret_with("k", KeyAlgorithm::Ed25519, &[1u8; 31]).is_err());
    }
}
