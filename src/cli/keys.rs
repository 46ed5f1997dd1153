//! `gongwen keys add|revoke`: a parent unit (or the operator) changes a unit's seal keys with a signed
//! `ChangeUnitKeys`.
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use serde::Serialize;

use super::CliError;
use super::client::{Client, new_request_id};
use super::keystore::Keystore;
use crate::pb;

/// Who signs a key change, and for which unit.
#[derive(Debug, Args)]
pub struct KeyActor {
    /// The unit whose keys change.
    #[arg(long)]
    pub unit: String,
    /// The signer: the unit's parent unit (its key from the keystore), or "operator".
    #[arg(long = "as", value_name = "PARENT")]
    pub signer: String,
    /// Request id, to retry a request exactly (default: a new one).
    #[arg(long)]
    pub request_id: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Register a new seal key for a unit (with --revoke, a rotation in one signed change).
    Add {
        #[command(flatten)]
        actor: KeyActor,
        /// Take the new key from the unit's file in this keystore directory (made with
        /// `gongwen keygen UNIT --keys DIR`); only its public half is sent.
        #[arg(long, value_name = "DIR", conflicts_with_all = ["public_key", "key_id"])]
        from: Option<PathBuf>,
        /// The new public key in hex (as `gongwen keygen` prints it), instead of --from.
        #[arg(long, requires = "key_id")]
        public_key: Option<String>,
        /// The new key's id (with --public-key).
        #[arg(long)]
        key_id: Option<String>,
        /// The new key's algorithm (with --public-key): ed25519 or sm2.
        #[arg(long, default_value = "ed25519")]
        algorithm: String,
        /// Also revoke this key of the unit, from now.
        #[arg(long, value_name = "OLD_KEY_ID")]
        revoke: Vec<String>,
    },
    /// Revoke a unit's seal key, from now or from a given time (a compromise may be dated in the past).
    Revoke {
        #[command(flatten)]
        actor: KeyActor,
        /// The key to revoke.
        #[arg(long)]
        key_id: String,
        /// From when it signs nothing (RFC 3339, e.g. 2022-12-22T01:00:00Z); default: now.
        #[arg(long)]
        at: Option<String>,
        /// Why (e.g. 私钥泄露, 到期轮换).
        #[arg(long, default_value = "")]
        reason: String,
    },
}

fn revocation(key_id: String, at: Option<DateTime<Utc>>, reason: String) -> pb::KeyRevocation {
    let revoked_at = at.map(|t| prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    });
    pb::KeyRevocation { key_id, revoked_at, reason }
}

fn new_key(
    unit: &str,
    from: Option<PathBuf>,
    public_key: Option<String>,
    key_id: Option<String>,
    algorithm: &str,
) -> Result<pb::SealKey, CliError> {
    match (from, public_key, key_id) {
        (Some(dir), None, None) => Ok(Keystore::new(dir).load(unit)?.seal_key()),
        (None, Some(hex_key), Some(key_id)) => {
            let public_key =
                hex::decode(hex_key.trim()).map_err(|e| CliError::Input(format!("--public-key is not hex: {e}")))?;
            let algorithm = crate::domain::model::KeyAlgorithm::parse(algorithm)
                .ok_or_else(|| CliError::Input(format!("unknown algorithm {algorithm:?}: use ed25519 or sm2")))?;
            Ok(pb::SealKey {
                key_id,
                algorithm: algorithm.name().into(),
                public_key,
                valid_from: None,
                revoked_at: None,
            })
        }
        _ => Err(CliError::Input("give the new key with --from DIR, or with --public-key HEX and --key-id ID".into())),
    }
}

impl Client {
    /// Runs a `keys` subcommand.
    pub async fn keys_command(&self, command: KeysCommand) -> Result<(), CliError> {
        let (actor, add_keys, revoke) = match command {
            KeysCommand::Add { actor, from, public_key, key_id, algorithm, revoke } => {
                let key = new_key(&actor.unit, from, public_key, key_id, &algorithm)?;
                let revoke = revoke.into_iter().map(|k| revocation(k, None, "轮换 rotation".into())).collect();
                (actor, vec![key], revoke)
            }
            KeysCommand::Revoke { actor, key_id, at, reason } => {
                let at = at
                    .map(|t| {
                        DateTime::parse_from_rfc3339(&t)
                            .map(|t| t.with_timezone(&Utc))
                            .map_err(|e| CliError::Input(format!("--at {t:?} is not an RFC 3339 time: {e}")))
                    })
                    .transpose()?;
                (actor, vec![], vec![revocation(key_id, at, reason)])
            }
        };
        let operator = actor.signer == "operator";
        let m = pb::ChangeUnitKeys {
            request_id: actor.request_id.clone().unwrap_or_else(new_request_id),
            signer_unit_id: if operator { String::new() } else { actor.signer.clone() },
            unit_id: actor.unit.clone(),
            add_keys,
            revoke,
        };
        let env = self.sign(&actor.signer, &m)?;
        let reply = self.registry().change_unit_keys(env).await?.into_inner();
        #[derive(Serialize)]
        struct Out {
            unit: String,
            keys_changed: u32,
            event_seq: u64,
        }
        let out = Out { unit: actor.unit, keys_changed: reply.keys_changed, event_seq: reply.event_seq };
        self.print(&out, |o| {
            format!("{}: {} key change(s) recorded (event #{})\n", o.unit, o.keys_changed, o.event_seq)
        })
    }
}
