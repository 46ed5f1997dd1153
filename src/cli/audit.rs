//! `gongwen checkpoint`, `gongwen export` and `gongwen verify`.
use std::path::{Path, PathBuf};

use prost::Message;
use serde::Serialize;

use super::CliError;
use super::client::Client;
use crate::pb;
use crate::verify::{Report, Trust, verify_bundle};

fn write(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    std::fs::write(path, bytes).map_err(|source| CliError::Io { path: path.display().to_string(), source })
}

fn read<M: Message + Default>(path: &Path, what: &str) -> Result<M, CliError> {
    let bytes = std::fs::read(path).map_err(|source| CliError::Io { path: path.display().to_string(), source })?;
    M::decode(bytes.as_slice()).map_err(|e| CliError::Input(format!("{} is not a {what}: {e}", path.display())))
}

fn key(hex_text: Option<String>, what: &str) -> Result<Option<Vec<u8>>, CliError> {
    hex_text
        .map(|h| {
            hex::decode(h.trim())
                .ok()
                .filter(|k| k.len() == 32)
                .ok_or_else(|| CliError::Input(format!("the {what} must be 64 hex digits")))
        })
        .transpose()
}

/// Saves the current signed checkpoint.
pub async fn save_checkpoint(c: &Client, output: &Path) -> Result<(), CliError> {
    let cp = c.audit().get_checkpoint(pb::GetCheckpointRequest {}).await?.into_inner();
    write(output, &cp.encode_to_vec())?;
    let size = pb::Checkpoint::decode(cp.checkpoint.as_slice()).map(|c| c.tree_size).unwrap_or(0);
    eprintln!("checkpoint of {size} events saved to {}", output.display());
    Ok(())
}

/// Writes an audit bundle.
pub async fn export(
    c: &Client,
    document: Option<String>,
    from: Option<u64>,
    to: Option<u64>,
    previous: Option<PathBuf>,
    output: &Path,
) -> Result<(), CliError> {
    let scope = match document {
        Some(d) => pb::export_request::Scope::DocumentId(c.resolve(&d).await?),
        None => pb::export_request::Scope::Range(pb::SeqRange { from_seq: from.unwrap_or(1), to_seq: to.unwrap_or(0) }),
    };
    let previous_size = match previous {
        Some(p) => {
            let cp: pb::SignedCheckpoint = read(&p, "checkpoint")?;
            pb::Checkpoint::decode(cp.checkpoint.as_slice()).map(|c| c.tree_size).unwrap_or(0)
        }
        None => 0,
    };
    let bundle = c.audit().export_bundle(pb::ExportRequest { scope: Some(scope), previous_size }).await?.into_inner();
    write(output, &bundle.encode_to_vec())?;
    eprintln!("{} events written to {}", bundle.entries.len(), output.display());
    Ok(())
}

#[derive(Serialize)]
struct ReportOut {
    ok: bool,
    tree_size: u64,
    root_hash: String,
    entries: usize,
    signatures_ok: usize,
    trusted_keys: bool,
    failures: Vec<String>,
}

fn print_report(report: &Report, trusted: bool, json: bool) -> Result<(), CliError> {
    let out = ReportOut {
        ok: report.ok(),
        tree_size: report.tree_size,
        root_hash: report.root_hash.clone(),
        entries: report.entries,
        signatures_ok: report.signatures_ok,
        trusted_keys: trusted,
        failures: report.failures.iter().map(ToString::to_string).collect(),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&out).map_err(|e| CliError::Input(e.to_string()))?);
    } else {
        println!("log of {} events, root {}", out.tree_size, out.root_hash);
        println!("{} entries checked, {} signatures verified", out.entries, out.signatures_ok);
        if !trusted {
            println!(
                "note: the log and operator keys were taken from the bundle; pass --log-key and --operator-key to check them against keys you obtained yourself"
            );
        }
        for f in &out.failures {
            println!("FAIL {f}");
        }
        println!("{}", if out.ok { "verified: OK" } else { "verification FAILED" });
    }
    if out.ok { Ok(()) } else { Err(CliError::Input(format!("{} checks failed", out.failures.len()))) }
}

fn trust(log_key: Option<String>, operator_key: Option<String>, previous: Option<PathBuf>) -> Result<Trust, CliError> {
    Ok(Trust {
        log_public_key: key(log_key, "log key")?,
        operator_public_key: key(operator_key, "operator key")?,
        previous_checkpoint: previous.map(|p| read(&p, "checkpoint")).transpose()?,
    })
}

/// Verifies a bundle file.
pub fn verify_file(
    path: &Path,
    log_key: Option<String>,
    operator_key: Option<String>,
    previous: Option<PathBuf>,
    json: bool,
) -> Result<(), CliError> {
    let bundle: pb::AuditBundle = read(path, "audit bundle")?;
    let trust = trust(log_key, operator_key, previous)?;
    let trusted = trust.log_public_key.is_some() && trust.operator_public_key.is_some();
    print_report(&verify_bundle(&bundle, &trust), trusted, json)
}

/// Fetches the log from the server (the whole log for the operator, the events an auditor may read otherwise; with
/// a consistency proof from `previous`) and verifies it.
pub async fn verify_live(
    c: &Client,
    log_key: Option<String>,
    operator_key: Option<String>,
    previous: Option<PathBuf>,
    json: bool,
) -> Result<(), CliError> {
    let trust = trust(log_key, operator_key, previous)?;
    let previous_size = trust
        .previous_checkpoint
        .as_ref()
        .and_then(|cp| pb::Checkpoint::decode(cp.checkpoint.as_slice()).ok())
        .map_or(0, |c| c.tree_size);
    let scope = pb::export_request::Scope::Range(pb::SeqRange { from_seq: 1, to_seq: 0 });
    let bundle = c.audit().export_bundle(pb::ExportRequest { scope: Some(scope), previous_size }).await?.into_inner();
    if !bundle.complete && !json {
        // An auditor gets the events it may read, each with its inclusion proof, not the whole log.
        println!(
            "note: the server sent the {} events you may read, each proved against the checkpoint",
            bundle.entries.len()
        );
    }
    let trusted = trust.log_public_key.is_some() && trust.operator_public_key.is_some();
    print_report(&verify_bundle(&bundle, &trust), trusted, json)
}
