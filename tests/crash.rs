//! Crash safety: the server binary runs as a child process while many clients acknowledge (half of them on
//! `Act` calls, each acknowledgment's result awaited before the next is sent), issue and forward;
//! it is killed with SIGKILL at random moments and restarted. Every request that got a success reply must be
//! there afterwards, nothing half-applied, numbering gapless, and the log must verify.
//! `GONGWEN_CRASH_ROUNDS` sets the number of kills (default 3; the soak run in the README uses 20).
mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use gongwen::cli::client::Client;
use gongwen::cli::keystore::Keystore;
use gongwen::pb;
use gongwen::verify::{Trust, verify_bundle};
use tokio::process::Child;

use common::PROVINCE;

/// Starts `gongwen serve` on a free port and waits for the line that says it is serving. With `defer`, every
/// commit with a new key is applied to the tree in the background, so kills also land during that work.
async fn start(data: &Path, keys: &Path, defer: bool) -> (Child, String) {
    // What is tested is durability, not the request budget: the checks after many rounds read every acknowledged
    // delivery, more than the default budget of one caller allows.
    let budget = ["--rate", "100000", "--burst", "100000"];
    let defer = ["--defer-keys", if defer { "1" } else { "4096" }];
    common::spawn_serve(common::gongwen_async(), data, keys, &[&budget[..], &defer[..]].concat()).await
}

fn random_ms(lo: u64, hi: u64) -> Duration {
    let mut b = [0u8; 8];
    getrandom::getrandom(&mut b).expect("random");
    Duration::from_millis(lo + u64::from_le_bytes(b) % (hi - lo))
}

/// An open `DeliveryService.Act` call.
struct Act {
    tx: tokio::sync::mpsc::Sender<pb::SignedEnvelope>,
    results: tonic::Streaming<pb::ActResult>,
}

impl Act {
    async fn open(c: &Client) -> Option<Act> {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let results = c.deliveries().act(tokio_stream::wrappers::ReceiverStream::new(rx)).await.ok()?.into_inner();
        Some(Act { tx, results })
    }

    /// Sends one statement; whether its result says it was applied.
    async fn applied(&mut self, envelope: pb::SignedEnvelope) -> bool {
        if self.tx.send(envelope).await.is_err() {
            return false;
        }
        matches!(
            self.results.message().await,
            Ok(Some(pb::ActResult { outcome: Some(pb::act_result::Outcome::Delivery(_)), .. }))
        )
    }
}

#[derive(Default)]
struct Acked {
    acks: BTreeSet<(String, String)>,
    issued: BTreeSet<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_servers_lose_nothing_they_acknowledged() {
    let rounds: usize = std::env::var("GONGWEN_CRASH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, keys) = (dir.path().join("data"), dir.path().join("keys"));
    Keystore::new(&keys).generate("operator", None).expect("operator key");
    let (mut child, mut url) = start(&data, &keys, false).await;
    let c = Client::connect(&url, &keys, "operator", false).await.expect("connect");
    c.load_registry(gongwen::registry_file::BUNDLED, true, &[]).await.expect("registry");
    let cities: Vec<String> = c
        .registry()
        .expand_group(pb::ExpandGroupRequest { group: "各市财政局".into(), issuer_unit_id: PROVINCE.into() })
        .await
        .expect("expand")
        .into_inner()
        .units
        .into_iter()
        .map(|u| u.id)
        .collect();
    let mut done = Acked::default();
    let mut docs: Vec<String> = vec![];

    for round in 0..rounds {
        let c = Client::connect(&url, &keys, "operator", false).await.expect("connect");
        // Documents to acknowledge in this round, issued before the chaos starts.
        let doc = common::issue_notice(&c, &format!("round-{round}")).await.expect("issue");
        done.issued.insert(doc.id.clone());
        docs.push(doc.id.clone());

        // Acknowledgments replied to so far: by Acknowledge, and on Act calls.
        let progress = std::sync::Arc::new([0, 1].map(|_| std::sync::atomic::AtomicUsize::new(0)));
        let mut tasks = vec![];
        for (n, city) in cities.clone().into_iter().enumerate() {
            let (url, keys, doc) = (url.clone(), keys.clone(), doc.id.clone());
            let progress = progress.clone();
            tasks.push(tokio::spawn(async move {
                let mut mine = Acked::default();
                let Ok(c) = Client::connect(&url, &keys, "operator", false).await else { return mine };
                // Every other city sends its acknowledgments on one Act call: this one, and one per document
                // issued to it below, each right after its issue.
                let mut act = if n % 2 == 0 { Act::open(&c).await } else { None };
                let m = pb::Acknowledge {
                    request_id: format!("a-{doc}"),
                    unit_id: city.clone(),
                    document_id: doc.clone(),
                    registration_number: String::new(),
                };
                let Ok(env) = c.sign(&city, &m) else { return mine };
                let acked = match act.as_mut() {
                    Some(act) => act.applied(env).await,
                    None => c.deliveries().acknowledge(env).await.is_ok(),
                };
                if acked {
                    mine.acks.insert((doc.clone(), city.clone()));
                    progress[usize::from(act.is_some())].fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                for k in 0..5 {
                    let m = pb::IssueDocument {
                        request_id: format!("extra-{doc}-{city}-{k}"),
                        unit_id: PROVINCE.into(),
                        draft: Some(common::draft("鲁财采", "山东省财政厅关于并发的通知", vec![common::unit(&city)])),
                    };
                    let Ok(env) = c.sign(PROVINCE, &m) else { break };
                    let issued = match c.documents().issue_document(env).await {
                        Ok(d) => d.into_inner().id,
                        Err(_) => break,
                    };
                    mine.issued.insert(issued.clone());
                    if let Some(act) = act.as_mut() {
                        let m = pb::Acknowledge {
                            request_id: format!("a-{issued}"),
                            unit_id: city.clone(),
                            document_id: issued.clone(),
                            registration_number: String::new(),
                        };
                        let Ok(env) = c.sign(&city, &m) else { break };
                        if !act.applied(env).await {
                            break;
                        }
                        mine.acks.insert((issued, city.clone()));
                    }
                }
                mine
            }));
        }
        // Kill once the load is under way (polled with a deadline), at a random moment after that.
        tokio::time::timeout(Duration::from_secs(30), async {
            while progress.iter().any(|p| p.load(std::sync::atomic::Ordering::SeqCst) == 0) {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the clients make progress, by Acknowledge and on Act calls");
        tokio::time::sleep(random_ms(1, 60)).await;
        child.start_kill().expect("SIGKILL");
        let _ = child.wait().await;
        for t in tasks {
            let mine = t.await.expect("task");
            done.acks.extend(mine.acks);
            done.issued.extend(mine.issued);
        }
        // Every other run defers: its kill may land while the background move is under way.
        (child, url) = start(&data, &keys, round % 2 == 0).await;
    }
    let c = Client::connect(&url, &keys, "operator", false).await.expect("connect");

    for (doc, unit) in &done.acks {
        let d = c
            .deliveries()
            .get_delivery(pb::GetDeliveryRequest { document_id: doc.clone(), recipient_unit_id: unit.clone() })
            .await
            .expect("the acknowledged delivery is there")
            .into_inner();
        assert_eq!(d.state, pb::DeliveryState::Acknowledged as i32, "{unit} on {doc}");
    }
    let mut serials = vec![];
    let mut token = String::new();
    loop {
        let page = c
            .documents()
            .list_issued(pb::ListIssuedRequest {
                unit_id: PROVINCE.into(),
                page: Some(pb::PageRequest { page_size: 1000, page_token: token.clone() }),
            })
            .await
            .expect("issued")
            .into_inner();
        for d in &page.documents {
            serials.push(d.number_serial);
            // Nothing half-applied: every stored document has all its deliveries.
            let tree = c
                .tracer()
                .trace(pb::TraceRequest { document_id: d.id.clone(), max_depth: 0 })
                .await
                .expect("trace")
                .into_inner();
            assert_eq!(tree.nodes.len(), d.main_unit_ids.len() + d.cc_unit_ids.len());
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    serials.sort();
    assert_eq!(serials, (1..=serials.len() as u32).collect::<Vec<_>>(), "no gaps, no duplicates");
    let stored: BTreeSet<String> = {
        let mut s = BTreeSet::new();
        for id in &done.issued {
            c.documents()
                .get_document(pb::GetDocumentRequest { key: Some(pb::get_document_request::Key::Id(id.clone())) })
                .await
                .expect("every acknowledged issue is stored");
            s.insert(id.clone());
        }
        s
    };
    assert_eq!(stored.len(), done.issued.len());
    let scope = pb::export_request::Scope::Range(pb::SeqRange { from_seq: 1, to_seq: 0 });
    let bundle = c
        .audit()
        .export_bundle(pb::ExportRequest { scope: Some(scope), previous_size: 0 })
        .await
        .expect("export")
        .into_inner();
    let report = verify_bundle(&bundle, &Trust::default());
    assert!(report.ok(), "{:?}", report.failures);
    assert!(!done.acks.is_empty() && docs.len() == rounds);
    drop(child);
}

#[tokio::test]
async fn sigterm_stops_gracefully_with_exit_code_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, keys) = (dir.path().join("data"), dir.path().join("keys"));
    Keystore::new(&keys).generate("operator", None).expect("operator key");
    let (mut child, url) = start(&data, &keys, false).await;
    let c = Client::connect(&url, &keys, "operator", false).await.expect("connect");
    c.load_registry(gongwen::registry_file::BUNDLED, true, &[]).await.expect("registry");
    let pid = child.id().expect("pid").to_string();
    let status = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(30), child.wait()).await.expect("exits in time").expect("wait");
    assert!(exit.success(), "{exit:?}");
    // Everything written before is there after a restart.
    let (_child, url) = start(&data, &keys, false).await;
    let c = Client::connect(&url, &keys, "operator", false).await.expect("connect");
    let units = c.registry().list_units(pb::ListUnitsRequest::default()).await.expect("units").into_inner();
    assert!(!units.units.is_empty());
}

#[tokio::test]
async fn tokens_accepted_before_a_kill_are_refused_after_the_restart() {
    const METHOD: &str = "/gongwen.v1.RegistryService/ListGroups";
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, keys) = (dir.path().join("data"), dir.path().join("keys"));
    let store = Keystore::new(&keys);
    let operator = store.generate("operator", None).expect("operator key");
    let (mut child, url) = start(&data, &keys, false).await;
    let c = Client::connect(&url, &keys, "operator", false).await.expect("connect");
    c.load_registry(gongwen::registry_file::BUNDLED, true, &[]).await.expect("registry");
    let province = store.load(PROVINCE).expect("the province's key");
    // The province's clock runs a minute ahead; the operator's is in step with the server's.
    let msg = pb::ListGroupsRequest {};
    let ahead = common::token_as(&province, PROVINCE, METHOD, &msg, chrono::Utc::now() + chrono::Duration::seconds(60));
    let in_step = common::token_as(&operator, "operator", METHOD, &msg, chrono::Utc::now());
    let copies: Vec<(tonic::metadata::MetadataMap, &str)> =
        vec![(ahead.metadata().clone(), PROVINCE), (in_step.metadata().clone(), "operator")];
    let channel = tonic::transport::Channel::from_shared(url.clone()).expect("uri").connect().await.expect("connect");
    let mut raw = pb::registry_service_client::RegistryServiceClient::new(channel);
    raw.list_groups(ahead).await.expect("a minute ahead is within the skew");
    raw.list_groups(in_step).await.expect("a fresh token");

    child.start_kill().expect("SIGKILL");
    let _ = child.wait().await;
    let (_child, url) = start(&data, &keys, false).await;
    // The restarted server waited out its lease before listening: a token signed now passes at once.
    let c = Client::connect(&url, &keys, "operator", false).await.expect("connect");
    c.registry().list_groups(pb::ListGroupsRequest {}).await.expect("a fresh token right after the restart");
    let channel = tonic::transport::Channel::from_shared(url).expect("uri").connect().await.expect("connect");
    let mut raw = pb::registry_service_client::RegistryServiceClient::new(channel);
    for (metadata, who) in copies {
        let mut replayed = tonic::Request::new(msg);
        *replayed.metadata_mut() = metadata;
        let s = raw.list_groups(replayed).await.expect_err("a replay after the kill");
        assert_eq!(s.code(), tonic::Code::Unauthenticated, "{who}: {}", s.message());
        assert!(s.message().contains("tokens from before a restart are refused"), "{who}: {}", s.message());
    }
}
