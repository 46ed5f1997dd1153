//! `gongwen serve` logs to stderr as text, or with `GONGWEN_LOG_FORMAT=json` as one JSON object a line, for log
//! collectors; `RUST_LOG` filters either.
use crate::common;

use gongwen::cli::keystore::Keystore;

/// The server's start-up log line ("gongwen serving"), written as `format` says.
async fn serving_log_line(format: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, keys) = (dir.path().join("data"), dir.path().join("keys"));
    Keystore::new(&keys).generate("operator", None).expect("operator key");
    let mut cmd = common::gongwen_async();
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

/// With JSON logs, everything `gongwen serve` writes to stderr is one JSON object a line, from its start to its
/// stop (the lines for a person at a terminal are left out), and the stop is logged when it is done.
#[tokio::test]
async fn with_json_logs_every_line_from_start_to_stop_is_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, keys, log) = (dir.path().join("data"), dir.path().join("keys"), dir.path().join("stderr.log"));
    let child = common::gongwen()
        .env("GONGWEN_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .args(["serve", "--plaintext", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .arg("--keys")
        .arg(&keys)
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("spawn the server");
    // Killed if the test fails before the server has stopped.
    struct Server(Option<std::process::Child>);
    impl Drop for Server {
        fn drop(&mut self) {
            if let Some(child) = self.0.as_mut() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
    let mut server = Server(Some(child));
    let events = || -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        // Only whole lines: the server may be halfway through writing the last one.
        let whole = text.rfind('\n').map_or("", |end| &text[..end]);
        whole
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
            .collect()
    };
    let said = |events: &[serde_json::Value], message: &str| events.iter().any(|e| e["fields"]["message"] == message);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !said(&events(), "gongwen serving") {
        assert!(std::time::Instant::now() < deadline, "no start-up event: {:?}", events());
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let child = server.0.take().expect("the server");
    let pid = i32::try_from(child.id()).expect("a pid");
    // SAFETY: signals the child this test started and still owns.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0, "SIGTERM sent");
    let mut child = child;
    let status = tokio::task::spawn_blocking(move || child.wait()).await.expect("joined").expect("the server exits");
    assert!(status.success(), "{status}");
    let all = events();
    assert!(said(&all, "generated the operator key"), "{all:?}");
    assert!(said(&all, "stopped"), "{all:?}");
}
