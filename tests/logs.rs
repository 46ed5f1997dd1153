//! `gongwen serve` logs to stderr as text, or with `GONGWEN_LOG_FORMAT=json` as one JSON object a line, for log
//! collectors; `RUST_LOG` filters either.
mod common;

use gongwen::cli::keystore::Keystore;
use tokio::process::Command;

/// The server's start-up log line ("gongwen serving"), written as `format` says.
async fn serving_log_line(format: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, keys) = (dir.path().join("data"), dir.path().join("keys"));
    Keystore::new(&keys).generate("operator", None).expect("operator key");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gongwen"));
    cmd.env("GONGWEN_LOG_FORMAT", format);
    let (_child, _, said) = common::spawn_serve_logging(cmd, &data, &keys, &[], "info").await;
    said.into_iter()
        .find(|l| l.contains("gongwen serving") && !l.starts_with("gongwen serving on "))
        .unwrap_or_else(|| panic!("no start-up log line among the server's first lines"))
}

#[tokio::test]
async fn logs_are_one_json_object_a_line_when_asked_and_text_otherwise() {
    let json = serving_log_line("json").await;
    let event: serde_json::Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json:?}: {e}"));
    assert_eq!(event["level"], "INFO", "{json}");
    assert_eq!(event["fields"]["message"], "gongwen serving", "{json}");
    assert!(event["fields"]["addr"].as_str().is_some_and(|a| a.starts_with("127.0.0.1:")), "{json}");

    let text = serving_log_line("text").await;
    assert!(serde_json::from_str::<serde_json::Value>(&text).is_err(), "text, not JSON: {text}");
    assert!(text.contains("INFO") && text.contains("gongwen serving"), "{text}");
}
