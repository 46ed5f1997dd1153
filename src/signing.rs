//! Client-side signing of statements: what the CLI, the demo and the tests use to act as a unit.
use ed25519_dalek::SigningKey;
use prost::Message;

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
    Remind
);

/// A unit's (or the operator's) signing key.
#[derive(Clone)]
pub struct Signer {
    /// The key id registered for it.
    pub key_id: String,
    key: SigningKey,
}

/// Why a key could not be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot generate a key: {0}")]
pub struct KeyGenError(String);

impl Signer {
    /// A new random Ed25519 key.
    pub fn generate(key_id: impl Into<String>) -> Result<Signer, KeyGenError> {
        let mut secret = [0u8; 32];
        getrandom::getrandom(&mut secret).map_err(|e| KeyGenError(e.to_string()))?;
        Ok(Signer::from_secret(key_id, secret))
    }

    /// A key from its 32 secret bytes.
    pub fn from_secret(key_id: impl Into<String>, secret: [u8; 32]) -> Signer {
        Signer { key_id: key_id.into(), key: SigningKey::from_bytes(&secret) }
    }

    /// The secret bytes (for the keystore).
    pub fn secret(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The public key bytes.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// The registry entry for this key.
    pub fn seal_key(&self) -> pb::SealKey {
        pb::SealKey {
            key_id: self.key_id.clone(),
            algorithm: "ed25519".into(),
            public_key: self.public_key().to_vec(),
            valid_from: None,
            revoked_at: None,
        }
    }

    /// Signs raw bytes under a payload type (the DSSE pre-authentication encoding), returning the signature.
    pub fn sign_raw(&self, payload_type: &str, payload: &[u8]) -> Vec<u8> {
        seal::sign_ed25519(&self.key, payload_type, payload)
    }

    /// Signs a statement into an envelope.
    pub fn envelope<M: Statement>(&self, statement: &M) -> pb::SignedEnvelope {
        let payload = statement.encode_to_vec();
        let signature = seal::sign_ed25519(&self.key, M::TYPE, &payload);
        pb::SignedEnvelope { payload_type: M::TYPE.into(), payload, key_id: self.key_id.clone(), signature }
    }
}
