//! TLS with rustls, configured by file paths: a server that requires client certificates answers a client that
//! presents one, and refuses plaintext clients and clients without a certificate; a server with only its own
//! certificate answers any client that trusts it; `gongwen serve` without TLS material refuses to start unless
//! plaintext is asked for.
use std::net::SocketAddr;

use gongwen::cli::client::{Client, Tls};
use gongwen::cli::keystore::Keystore;
use gongwen::cli::serve::operator_seal;
use gongwen::pb;
use gongwen::server::{self, ServerConfig, TlsFiles};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca_key = KeyPair::generate().expect("ca key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).expect("ca");
        let issuer = Issuer::new(ca_params, ca_key);
        let write = |name: &str, text: String| std::fs::write(dir.path().join(name), text).expect("write pem");
        write("ca.pem", ca.pem());
        for (name, san) in [("server", "localhost"), ("client", "370304.czj")] {
            let key = KeyPair::generate().expect("key");
            let cert =
                CertificateParams::new(vec![san.to_string()]).expect("params").signed_by(&key, &issuer).expect("cert");
            write(&format!("{name}.pem"), cert.pem());
            write(&format!("{name}.key"), key.serialize_pem());
        }
        Pki { dir }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }
}

/// A server over a fresh data directory in `dir` with `tls`, and the operator's signer.
async fn start_tls(dir: &std::path::Path, tls: TlsFiles) -> (server::Running, gongwen::signing::Signer) {
    let operator = Keystore::new(dir.join("keys")).generate("operator", None).expect("operator");
    let mut cfg = ServerConfig::new(dir.join("data"));
    cfg.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    cfg.store.cache_bytes = 16 << 20;
    cfg.operator = Some(operator_seal(&operator));
    cfg.tls = Some(tls);
    (server::start(cfg).await.expect("server"), operator)
}

#[tokio::test]
async fn mutual_tls_admits_certified_clients_only() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys");
    let tls =
        TlsFiles { cert: pki.path("server.pem"), key: pki.path("server.key"), client_ca: Some(pki.path("ca.pem")) };
    let (running, operator) = start_tls(dir.path(), tls).await;
    let https = format!("https://localhost:{}", running.addr.port());

    let certified =
        Tls { ca: Some(pki.path("ca.pem")), client: Some(vec![pki.path("client.pem"), pki.path("client.key")]) };
    let c = Client::connect_with(&https, &keys, "operator", false, &certified).await.expect("TLS connection");
    let info = c.registry().get_server_info(pb::GetServerInfoRequest {}).await.expect("answer over TLS").into_inner();
    assert_eq!(info.operator_public_key, operator.public_key().to_vec());
    c.registry().list_groups(pb::ListGroupsRequest {}).await.expect("signed calls over TLS");

    // No client certificate: the handshake or the first call fails.
    let anonymous = Tls { ca: Some(pki.path("ca.pem")), client: None };
    let refused = match Client::connect_with(&https, &keys, "operator", false, &anonymous).await {
        Err(_) => true,
        Ok(c) => c.registry().get_server_info(pb::GetServerInfoRequest {}).await.is_err(),
    };
    assert!(refused, "a client without a certificate must not get in");
    // Plaintext to a TLS port.
    let plain = format!("http://127.0.0.1:{}", running.addr.port());
    let refused = match Client::connect(&plain, &keys, "operator", false).await {
        Err(_) => true,
        Ok(c) => c.registry().get_server_info(pb::GetServerInfoRequest {}).await.is_err(),
    };
    assert!(refused, "plaintext must not reach a TLS server");
    running.stop().await.expect("stop");
}

#[tokio::test]
async fn tls_without_client_certificates_serves_clients_that_trust_the_server() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys");
    let tls = TlsFiles { cert: pki.path("server.pem"), key: pki.path("server.key"), client_ca: None };
    let (running, operator) = start_tls(dir.path(), tls).await;
    let https = format!("https://localhost:{}", running.addr.port());

    let trusting = Tls { ca: Some(pki.path("ca.pem")), client: None };
    let c = Client::connect_with(&https, &keys, "operator", false, &trusting).await.expect("TLS connection");
    let info = c.registry().get_server_info(pb::GetServerInfoRequest {}).await.expect("answer over TLS").into_inner();
    assert_eq!(info.operator_public_key, operator.public_key().to_vec());
    c.registry().list_groups(pb::ListGroupsRequest {}).await.expect("signed calls over TLS, no client certificate");

    // A client that does not trust the server's CA (the system roots only) cannot get in.
    let untrusting = Tls { ca: None, client: None };
    let refused = match Client::connect_with(&https, &keys, "operator", false, &untrusting).await {
        Err(_) => true,
        Ok(c) => c.registry().get_server_info(pb::GetServerInfoRequest {}).await.is_err(),
    };
    assert!(refused, "a certificate the client does not trust must not be accepted");
    let plain = format!("http://127.0.0.1:{}", running.addr.port());
    let refused = match Client::connect(&plain, &keys, "operator", false).await {
        Err(_) => true,
        Ok(c) => c.registry().get_server_info(pb::GetServerInfoRequest {}).await.is_err(),
    };
    assert!(refused, "plaintext must not reach a TLS server");

    // `gongwen health` (the container health check) speaks TLS with the CA it is given.
    let health = |server: &str, ca: Option<&std::path::Path>| {
        let mut cmd = crate::common::gongwen();
        cmd.args(["--server", server]);
        if let Some(ca) = ca {
            cmd.arg("--tls-ca").arg(ca);
        }
        cmd.arg("health").output().expect("run gongwen health")
    };
    let ca = pki.path("ca.pem");
    let (trusted, untrusted, plaintext, ca_ignored) = tokio::task::spawn_blocking(move || {
        (health(&https, Some(&ca)), health(&https, None), health(&plain, None), health(&plain, Some(&ca)))
    })
    .await
    .expect("health runs");
    assert!(trusted.status.success(), "{}", String::from_utf8_lossy(&trusted.stderr));
    assert_eq!(String::from_utf8_lossy(&trusted.stdout).trim(), "SERVING");
    assert!(!untrusted.status.success(), "without the CA the health check cannot trust the server");
    // An operator who forgot https:// is told so, instead of "transport error".
    let said = String::from_utf8_lossy(&plaintext.stderr);
    assert!(!plaintext.status.success() && said.contains("give --server https://"), "{said}");
    let said = String::from_utf8_lossy(&ca_ignored.stderr);
    assert!(
        !ca_ignored.status.success() && said.contains("--tls-ca and --tls-client are for a server over TLS"),
        "{said}"
    );
    // So is one importing files, whose failures are reported file by file.
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/forwarding-chain-lu-zi-bo-2022.txt");
    let plain = format!("http://127.0.0.1:{}", running.addr.port());
    let import = tokio::task::spawn_blocking(move || {
        crate::common::gongwen()
            .args(["--server", &plain, "--keys", &keys.to_string_lossy(), "import", fixture])
            .output()
            .expect("run gongwen import")
    })
    .await
    .expect("import runs");
    let said = format!("{}{}", String::from_utf8_lossy(&import.stdout), String::from_utf8_lossy(&import.stderr));
    assert!(!import.status.success() && said.contains("give --server https://"), "{said}");
    running.stop().await.expect("stop");
}

#[test]
fn serve_without_tls_refuses_to_start_unless_plaintext_is_asked_for() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, keys) = (dir.path().join("data"), dir.path().join("keys"));
    let mut serve = crate::common::gongwen();
    serve.arg("--keys").arg(&keys).args(["serve", "--listen", "127.0.0.1:0", "--data"]).arg(&data);
    let child = serve
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run gongwen serve");
    let pid = child.id().to_string();
    // A server that wrongly starts would serve forever: wait for the refusal with a deadline, and stop it if not.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    let Ok(out) = rx.recv_timeout(std::time::Duration::from_secs(60)) else {
        let _ = std::process::Command::new("kill").arg(&pid).status();
        panic!("serve started without TLS or --plaintext");
    };
    let out = out.expect("gongwen serve output");
    assert!(!out.status.success(), "serve started without TLS or --plaintext");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no TLS certificate and key") && stderr.contains("--plaintext"), "{stderr}");
    assert!(!data.exists() && !keys.join("operator.key").exists(), "a refused start creates nothing");
}
