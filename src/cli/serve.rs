//! `gongwen serve`.
use std::path::Path;

use super::keystore::Keystore;
use super::{CliError, ServeArgs};
use crate::domain::model::{KeyAlgorithm, SealKey};
use crate::server::{self, ServerConfig};
use crate::signing::Signer;

/// The operator's public key as the registry records it.
pub fn operator_seal(signer: &Signer) -> SealKey {
    SealKey {
        key_id: signer.key_id.clone(),
        algorithm: KeyAlgorithm::Ed25519,
        public_key: signer.public_key().to_vec(),
        valid_from: None,
        revoked_at: None,
    }
}

/// The server config for `args`, with the operator key from (or generated into) the keystore.
pub fn config(args: &ServeArgs, keys: &Path) -> Result<ServerConfig, CliError> {
    let ks = Keystore::new(keys);
    let (operator, created) = ks.load_or_generate("operator")?;
    if created {
        eprintln!("generated the operator key {} in {}", operator.key_id, keys.display());
    }
    let mut cfg = ServerConfig::new(&args.data);
    cfg.listen = args.listen;
    cfg.cache_bytes = args.cache_mb.saturating_mul(1024 * 1024);
    cfg.app.max_attachment_bytes = args.max_attachment_mb.saturating_mul(1024 * 1024);
    cfg.app.allow_confidential = args.allow_confidential;
    cfg.app.max_message_bytes = args.max_message_mb.saturating_mul(1024 * 1024);
    cfg.app.rate_per_sec = args.rate;
    cfg.app.rate_burst = args.burst;
    cfg.app.max_streams = args.max_streams;
    cfg.operator = Some(operator_seal(&operator));
    cfg.tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(crate::server::TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: args.tls_client_ca.clone(),
        }),
        _ => None,
    };
    if cfg.tls.is_none() && !args.plaintext && !args.listen.ip().is_loopback() {
        return Err(CliError::Input(format!(
            "{} is not a loopback address: give --tls-cert and --tls-key, or --plaintext to serve unencrypted on purpose",
            args.listen
        )));
    }
    Ok(cfg)
}

/// Resolves when SIGINT or SIGTERM arrives.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Runs the server until SIGINT or SIGTERM, then stops gracefully.
pub async fn serve(args: ServeArgs, keys: &Path) -> Result<(), CliError> {
    let running = server::start(config(&args, keys)?).await?;
    eprintln!("gongwen serving on {} (data in {}); Ctrl-C stops it", running.addr, args.data.display());
    shutdown_signal().await;
    eprintln!("stopping: finishing requests in flight");
    running.stop().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(extra: &[&str]) -> ServeArgs {
        let mut argv = vec!["gongwen", "serve"];
        argv.extend_from_slice(extra);
        match crate::cli::Cli::parse_from(argv).command {
            crate::cli::Command::Serve(a) => a,
            other => panic!("parsed {other:?}"),
        }
    }

    #[test]
    fn plaintext_beyond_loopback_must_be_asked_for() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(config(&args(&[]), dir.path()).is_ok(), "loopback plaintext is the default");
        let open = args(&["--listen", "0.0.0.0:50051"]);
        assert!(matches!(config(&open, dir.path()), Err(CliError::Input(m)) if m.contains("--plaintext")));
        assert!(config(&args(&["--listen", "0.0.0.0:50051", "--plaintext"]), dir.path()).is_ok());
        let tls = args(&["--listen", "0.0.0.0:50051", "--tls-cert", "c.pem", "--tls-key", "k.pem"]);
        assert!(config(&tls, dir.path()).is_ok_and(|c| c.tls.is_some()));
    }
}
