//! The client-side keystore: one file per unit (`<name>.key`, mode 0600) holding its seal key (Ed25519 or SM2). Private keys
//! never leave this directory; the server only ever sees public keys and signatures.
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

use crate::domain::model::KeyAlgorithm;
use crate::signing::Signer;

/// Why a keystore operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    #[error("keystore {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("no key for {name} in {dir} (create one with: gongwen keygen {name} --keys {dir})")]
    Missing { name: String, dir: String },
    #[error("{path} exists already; refusing to overwrite a key")]
    Exists { path: String },
    #[error("{path} is not a gongwen key file: {reason}")]
    Malformed { path: String, reason: String },
    #[error("{0} is not a valid key name (use a unit id or \"operator\")")]
    BadName(String),
    #[error(transparent)]
    KeyGen(#[from] crate::signing::KeyGenError),
}

#[derive(Serialize, Deserialize)]
struct KeyFile {
    name: String,
    key_id: String,
    algorithm: String,
    secret_key: String,
    public_key: String,
}

/// A directory of key files.
pub struct Keystore {
    dir: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeystoreError + '_ {
    move |source| KeystoreError::Io { path: path.display().to_string(), source }
}

impl Keystore {
    /// A keystore at `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Keystore {
        Keystore { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> Result<PathBuf, KeystoreError> {
        // Names become file names: refuse anything that could leave the directory.
        let ok = !name.is_empty()
            && name.len() <= 64
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
            && !name.starts_with('.');
        if ok { Ok(self.dir.join(format!("{name}.key"))) } else { Err(KeystoreError::BadName(name.to_owned())) }
    }

    /// True when a key for `name` exists.
    pub fn has(&self, name: &str) -> bool {
        self.path(name).map(|p| p.exists()).unwrap_or(false)
    }

    /// Generates and stores a new key for `name`; `key_id` defaults to `<name>#<8 hex of the public key>`.
    pub fn generate(&self, name: &str, key_id: Option<&str>) -> Result<Signer, KeystoreError> {
        self.generate_with(name, key_id, KeyAlgorithm::Ed25519)
    }

    /// Like [`Keystore::generate`], for a chosen algorithm.
    pub fn generate_with(
        &self,
        name: &str,
        key_id: Option<&str>,
        algorithm: KeyAlgorithm,
    ) -> Result<Signer, KeystoreError> {
        let path = self.path(name)?;
        let mut signer = Signer::generate_with("", algorithm)?;
        signer.key_id = match key_id {
            Some(k) => k.to_owned(),
            None => format!("{name}#{}", &hex::encode(signer.public_key())[..8]),
        };
        self.write(&path, name, &signer)?;
        Ok(signer)
    }

    fn write(&self, path: &Path, name: &str, signer: &Signer) -> Result<(), KeystoreError> {
        fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700)).map_err(io(&self.dir))?;
        let body = KeyFile {
            name: name.to_owned(),
            key_id: signer.key_id.clone(),
            algorithm: signer.algorithm().name().into(),
            secret_key: B64.encode(signer.secret()),
            public_key: B64.encode(signer.public_key()),
        };
        let text = serde_json::to_string_pretty(&body)
            .map_err(|e| KeystoreError::Malformed { path: path.display().to_string(), reason: e.to_string() })?;
        let mut file = match OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(KeystoreError::Exists { path: path.display().to_string() });
            }
            Err(e) => return Err(io(path)(e)),
        };
        file.write_all(text.as_bytes()).map_err(io(path))?;
        file.sync_all().map_err(io(path))
    }

    /// Loads the key of `name`.
    pub fn load(&self, name: &str) -> Result<Signer, KeystoreError> {
        let path = self.path(name)?;
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(KeystoreError::Missing { name: name.to_owned(), dir: self.dir.display().to_string() });
            }
            Err(e) => return Err(io(&path)(e)),
        };
        let bad = |reason: &str| KeystoreError::Malformed { path: path.display().to_string(), reason: reason.into() };
        let file: KeyFile = serde_json::from_str(&text).map_err(|e| bad(&e.to_string()))?;
        let algorithm =
            KeyAlgorithm::parse(&file.algorithm).ok_or_else(|| bad("the algorithm is not ed25519 or sm2"))?;
        let secret = B64.decode(file.secret_key.as_bytes()).map_err(|e| bad(&e.to_string()))?;
        let signer = Signer::from_secret_with(file.key_id, algorithm, &secret).map_err(|e| bad(&e.to_string()))?;
        if B64.encode(signer.public_key()) != file.public_key {
            return Err(bad("the public key does not match the secret key"));
        }
        Ok(signer)
    }

    /// Loads the key of `name`, generating it first if there is none.
    pub fn load_or_generate(&self, name: &str) -> Result<(Signer, bool), KeystoreError> {
        if self.has(name) { Ok((self.load(name)?, false)) } else { Ok((self.generate(name, None)?, true)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_private_files_that_load_back_and_are_never_overwritten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ks = Keystore::new(dir.path().join("keys"));
        let k = ks.generate("370304.czj", None).expect("generate");
        assert!(k.key_id.starts_with("370304.czj#"));
        let path = dir.path().join("keys").join("370304.czj.key");
        let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = fs::metadata(dir.path().join("keys")).expect("meta").permissions().mode() & 0o777;
        assert_eq!(dir_mode, 0o700);
        let back = ks.load("370304.czj").expect("load");
        assert_eq!(back.public_key(), k.public_key());
        assert_eq!(back.key_id, k.key_id);
        assert!(matches!(ks.generate("370304.czj", None), Err(KeystoreError::Exists { .. })));
        assert_eq!(ks.load("370304.czj").expect("still there").public_key(), k.public_key());
    }

    #[test]
    fn bad_names_and_missing_or_tampered_keys_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ks = Keystore::new(dir.path());
        for bad in ["", "../x", "a/b", ".hidden"] {
            assert!(matches!(ks.generate(bad, None), Err(KeystoreError::BadName(_))), "{bad}");
        }
        assert!(matches!(ks.load("nobody"), Err(KeystoreError::Missing { .. })));
        ks.generate("u", Some("u-key")).expect("generate");
        let sm2 = ks.generate_with("s", None, KeyAlgorithm::Sm2).expect("generate sm2");
        let back = ks.load("s").expect("load sm2");
        assert_eq!(back.algorithm(), KeyAlgorithm::Sm2);
        assert_eq!(back.public_key(), sm2.public_key());
        let path = dir.path().join("u.key");
        let text = fs::read_to_string(&path).expect("read");
        let mut v: serde_json::Value = serde_json::from_str(&text).expect("json");
        v["public_key"] = serde_json::Value::String(B64.encode([0u8; 32]));
        fs::write(&path, v.to_string()).expect("tamper");
        assert!(matches!(ks.load("u"), Err(KeystoreError::Malformed { .. })));
    }
}
