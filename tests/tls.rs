//! TLS with rustls, configured by file paths: a server that requires client certificates answers a client that
//! presents one, and refuses plaintext clients and clients without a certificate.
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

#[tokio::test]
async fn mutual_tls_admits_certified_clients_only() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys");
    let operator = Keystore::new(&keys).generate("operator", None).expect("operator");
    let mut cfg = ServerConfig::new(dir.path().join("data"));
    cfg.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    cfg.cache_bytes = 16 << 20;
    cfg.operator = Some(operator_seal(&operator));
    cfg.tls = Some(TlsFiles {
        cert: pki.path("server.pem"),
        key: pki.path("server.key"),
        client_ca: Some(pki.path("ca.pem")),
    });
    let running = server::start(cfg).await.expect("server");
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
