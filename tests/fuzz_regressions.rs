//! The fuzz corpus as regression tests: every file under `tests/fixtures/fuzz/<target>/` goes through the same
//! entry point its fuzz target (`fuzz/fuzz_targets/<target>.rs`) calls, which runs the real code and checks its
//! properties. Inputs that once crashed a target are kept here with the seeds and a minimised sample of what the
//! fuzzer found.
//!
//! `cargo test --test fuzz_regressions -- --ignored write_seed_corpus` writes the hand-made seeds to
//! `fuzz/corpus/<target>/`, the starting corpus of `cargo fuzz run`.
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use gongwen::fuzzing;
use gongwen::pb;
use gongwen::signing::{Signer, Statement};
use prost::Message;

type Target = fn(&[u8]);

const TARGETS: &[(&str, Target)] = &[
    ("envelope", fuzzing::envelope),
    ("doc_number", fuzzing::doc_number),
    ("title", fuzzing::title),
    ("request_token", fuzzing::request_token),
    ("requests", fuzzing::requests),
    ("parse", fuzzing::parse),
];

fn fixtures(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz").join(target)
}

/// Runs every fixture file of `target`; returns how many ran, or the files that panicked and why.
fn run(target: &str, f: Target) -> Result<usize, Vec<String>> {
    let dir = fixtures(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.map(|e| e.path()).unwrap_or_else(|e| panic!("{}: {e}", dir.display())))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut failed = vec![];
    for file in &files {
        let data = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| f(&data))) {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            failed.push(format!("{}: {why}", file.display()));
        }
    }
    if failed.is_empty() { Ok(files.len()) } else { Err(failed) }
}

/// Releases the harness's application when a test ends, passed or failed, so that no run leaves its directory.
struct ReleaseApp;

impl Drop for ReleaseApp {
    fn drop(&mut self) {
        fuzzing::release_app();
    }
}

macro_rules! regressions {
    ($($name:ident => $target:literal),* $(,)?) => {$(
        #[test]
        fn $name() {
            let (_, f) = TARGETS.iter().find(|(t, _)| *t == $target).copied().expect("a known target");
            let _release = ReleaseApp;
            match run($target, f) {
                Ok(n) => assert!(n > 0, "no fixtures for {}", $target),
                Err(failed) => panic!("{} fixture(s) of {} fail:\n{}", failed.len(), $target, failed.join("\n")),
            }
        }
    )*};
}

regressions!(
    envelope_fixtures => "envelope",
    doc_number_fixtures => "doc_number",
    title_fixtures => "title",
    request_token_fixtures => "request_token",
    requests_fixtures => "requests",
    parse_fixtures => "parse",
);

/// The harness's application lives in a temp dir, which goes once the application is released: a test run leaves
/// nothing behind.
#[test]
fn a_released_fuzz_app_leaves_no_directory() {
    let dir = fuzzing::app_dir();
    assert!(dir.is_dir(), "{}", dir.display());
    fuzzing::release_app();
    // Another test may still be inside a call on the same app; the directory goes when that call ends.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while dir.exists() {
        assert!(std::time::Instant::now() < deadline, "{} is still there", dir.display());
        std::thread::yield_now();
    }
}

/// The harness itself can fail: a property that does not hold panics, and `run` reports the file.
#[test]
fn a_failing_property_is_reported() {
    let dir = fixtures("doc_number");
    let broken: Target = |data| {
        if std::str::from_utf8(data).is_ok_and(|s| gongwen::domain::number::DocNumber::parse(s).is_ok()) {
            panic!("parsed");
        }
    };
    assert!(dir.is_dir());
    let failed = run("doc_number", broken).expect_err("the seeds hold numbers that parse");
    assert!(failed.iter().all(|f| f.ends_with("parsed")), "{failed:?}");
}

// ---------------------------------------------------------------------------------------------------------------
// Seeds

const PROVINCE_TITLE: &str = "山东省财政厅关于做好政府购买服务改革重点工作的通知";
const UNIT: &str = fuzzing::UNIT;

fn unit_key() -> Signer {
    Signer::from_secret("fuzz-unit", [2; 32])
}

fn operator_key() -> Signer {
    Signer::from_secret("fuzz-operator", [1; 32])
}

fn draft() -> pb::DocumentDraft {
    let unit = |id: &str| pb::Recipient { target: Some(pb::recipient::Target::UnitId(id.into())) };
    pb::DocumentDraft {
        number_prefix: "淄财采".into(),
        number_year: 2022,
        title: "关于转发《山东省财政厅关于做好政府购买服务改革重点工作的通知》的通知".into(),
        genre: pb::Genre::Notice as i32,
        signer: "张三".into(),
        main_recipients: vec![
            pb::Recipient { target: Some(pb::recipient::Target::Group("各区县财政局".into())) },
            unit("370304.czj"),
        ],
        cc_recipients: vec![unit("370000.czt")],
        body: "请遵照执行。".into(),
        attachments: vec![pb::AttachmentRef {
            sha256: "ab".repeat(32),
            title: "联系人名单".into(),
            media_type: "application/pdf".into(),
        }],
        dated: "2022-12-20".into(),
        printed_by: "淄博市财政局办公室".into(),
        printed_on: "2022-12-20".into(),
        deadline: "2023-01-31".into(),
        recipient_deadlines: vec![pb::RecipientDeadline {
            recipient: Some(unit("370304.czj")),
            due: "2023-01-15".into(),
        }],
        urgency: pb::Urgency::Urgent as i32,
        classification: pb::Classification::None as i32,
        classification_term: String::new(),
        copy_number: "000123".into(),
        disclosure: pb::Disclosure::Public as i32,
        contact: "李四 0533-1234567".into(),
        note: "此件主动公开".into(),
    }
}

fn statements() -> Vec<pb::SignedEnvelope> {
    let k = unit_key();
    let (rid, unit, doc) = ("r-1".to_owned(), UNIT.to_owned(), "d-0123456789abcdef0123".to_owned());
    vec![
        k.envelope(&pb::IssueDocument { request_id: rid.clone(), unit_id: unit.clone(), draft: Some(draft()) }),
        k.envelope(&pb::ForwardDocument {
            request_id: rid.clone(),
            unit_id: unit.clone(),
            source_document_id: doc.clone(),
            draft: Some(pb::DocumentDraft { title: String::new(), genre: 0, ..draft() }),
        }),
        k.envelope(&pb::Acknowledge {
            request_id: rid.clone(),
            unit_id: unit.clone(),
            document_id: doc.clone(),
            registration_number: "收2022-118".into(),
        }),
        k.envelope(&pb::ReturnDelivery {
            request_id: rid.clone(),
            unit_id: unit.clone(),
            document_id: doc.clone(),
            reason: "非本单位承办事项".into(),
        }),
        k.envelope(&pb::StartHandling {
            request_id: rid.clone(),
            unit_id: unit.clone(),
            document_id: doc.clone(),
            lead_office: "采购科".into(),
            note: "限期办理".into(),
        }),
        k.envelope(&pb::SubmitReport {
            request_id: rid.clone(),
            unit_id: unit.clone(),
            document_id: doc.clone(),
            text: "已报送典型案例".into(),
            attachment_sha256: vec!["cd".repeat(32)],
        }),
        k.envelope(&pb::Complete {
            request_id: rid.clone(),
            unit_id: unit.clone(),
            document_id: doc.clone(),
            note: "办结".into(),
        }),
        k.envelope(&pb::Remind {
            request_id: rid,
            unit_id: unit,
            document_id: doc,
            recipient_unit_id: "370304.czj".into(),
            message: "请于月底前报送".into(),
        }),
        operator_key().envelope(&small_change()),
    ]
}

/// The chain's three levels as a registry change.
fn small_change() -> pb::RegistryChange {
    let region = |code: &str, name: &str, parent: &str, level: pb::Level| pb::Region {
        code: code.into(),
        name: name.into(),
        parent_code: parent.into(),
        level: level as i32,
    };
    let unit = |id: &str, name: &str, region: &str, level: pb::Level, prefix: &str| pb::Unit {
        id: id.into(),
        full_name: name.into(),
        short_name: String::new(),
        region_code: region.into(),
        level: level as i32,
        kind: pb::UnitKind::FinanceBureau as i32,
        tags: vec!["finance".into()],
        number_prefixes: vec![prefix.into()],
        seal_keys: vec![],
    };
    pb::RegistryChange {
        request_id: "chain".into(),
        regions: vec![
            region("370000", "山东省", "", pb::Level::Province),
            region("370300", "淄博市", "370000", pb::Level::City),
            region("370304", "博山区", "370300", pb::Level::County),
        ],
        units: vec![
            unit("x.province", "山东省财政厅", "370000", pb::Level::Province, "鲁财测"),
            unit("x.city", "淄博市财政局", "370300", pb::Level::City, "淄财测"),
            pb::Unit {
                seal_keys: vec![unit_key().seal_key()],
                ..unit("x.county", "淄博市博山区财政局", "370304", pb::Level::County, "博财测")
            },
        ],
        groups: vec![pb::RecipientGroup {
            name: "各区县财政局".into(),
            scope: pb::GroupScope::ChildRegions as i32,
            level: pb::Level::County as i32,
            kinds: vec![pb::UnitKind::FinanceBureau as i32],
            tags: vec![],
            description: "下辖区县财政局".into(),
        }],
        number_baselines: vec![pb::NumberBaseline { prefix: "淄财测".into(), year: 2022, last_serial: 19 }],
        auditor_grants: vec![pb::AuditorGrant { unit_id: "x.province".into(), region_code: "370000".into() }],
        key_changes: vec![],
    }
}

fn kind_of(payload_type: &str) -> pb::LogEventKind {
    use pb::LogEventKind as K;
    match payload_type {
        t if t == pb::RegistryChange::TYPE => K::RegistryChanged,
        t if t == pb::IssueDocument::TYPE => K::Issued,
        t if t == pb::ForwardDocument::TYPE => K::Forwarded,
        t if t == pb::Acknowledge::TYPE => K::Acknowledged,
        t if t == pb::ReturnDelivery::TYPE => K::Returned,
        t if t == pb::StartHandling::TYPE => K::HandlingStarted,
        t if t == pb::SubmitReport::TYPE => K::Reported,
        t if t == pb::Complete::TYPE => K::Completed,
        _ => K::Reminded,
    }
}

fn log_entry(seq: u64, env: &pb::SignedEnvelope) -> pb::LogEntry {
    let actor = if env.payload_type == pb::RegistryChange::TYPE { "operator" } else { "x.county" };
    pb::LogEntry {
        event_seq: seq,
        kind: kind_of(&env.payload_type) as i32,
        recorded_at: Some(prost_types::Timestamp { seconds: 1_700_000_000 + seq as i64, nanos: 0 }),
        actor: actor.into(),
        document_id: String::new(),
        envelope: Some(env.clone()),
    }
}

/// A complete bundle: the registry change first, then an acknowledgment by the key it registered.
fn bundle() -> pb::AuditBundle {
    let log = Signer::from_secret("fuzz-log", [3; 32]);
    let operator = operator_key();
    let envs = [
        operator.envelope(&small_change()),
        unit_key().envelope(&pb::Acknowledge {
            request_id: "a".into(),
            unit_id: "x.county".into(),
            document_id: "d-1".into(),
            registration_number: String::new(),
        }),
    ];
    let entries: Vec<Vec<u8>> =
        envs.iter().enumerate().map(|(i, e)| log_entry(i as u64 + 1, e).encode_to_vec()).collect();
    let leaves: Vec<_> = entries.iter().map(|e| gongwen::domain::merkle::leaf_hash(e)).collect();
    let root = gongwen::domain::merkle::reference_root(&leaves);
    pb::AuditBundle {
        log_public_key: log.public_key().to_vec(),
        operator_public_key: operator.public_key().to_vec(),
        operator_key_id: operator.key_id.clone(),
        checkpoint: Some(gongwen::app::log::sign_checkpoint(&log, 2, root, chrono::Utc::now())),
        entries: entries
            .into_iter()
            .enumerate()
            .map(|(i, entry)| pb::BundleEntry { event_seq: i as u64 + 1, entry, inclusion: vec![] })
            .collect(),
        complete: true,
        consistency: None,
    }
}

fn with(b: u8, rest: impl AsRef<[u8]>) -> Vec<u8> {
    [vec![b], rest.as_ref().to_vec()].concat()
}

fn seeds(target: &str) -> Vec<Vec<u8>> {
    match target {
        "doc_number" => [
            "鲁财采〔2022〕14号",
            "淄财采[2022]20号",
            "博财采【2022】19号",
            "财综（2022）51号",
            "鲁财采函(2022)2号",
            "鲁财采〔２０２２〕１４号",
            " 鲁财采 〔2022〕 14 号\n",
            "鲁财采〔2022〕014号",
            "鲁财采〔2022]14号",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect(),
        "title" => vec![
            with(2, format!("{PROVINCE_TITLE}|山东省财政厅|淄博市财政局|淄博市博山区财政局")),
            with(7, format!("{PROVINCE_TITLE}|山东省财政厅|淄博市财政局")),
            with(0x83, "关于做好政府购买服务改革重点工作的通知|山东省财政厅|淄博市财政局"),
            with(1, "关于印发《管理办法》的通知|淄博市财政局"),
            with(0, "|"),
        ],
        "envelope" => {
            let mut out: Vec<Vec<u8>> = statements().iter().map(|e| with(0, e.encode_to_vec())).collect();
            out.extend(
                statements().iter().enumerate().map(|(i, e)| with(1, log_entry(i as u64 + 1, e).encode_to_vec())),
            );
            let b = bundle().encode_to_vec();
            for flags in [0x02, 0x22, 0x0e, 0x1e, 0x3e, 0x7e] {
                out.push(with(flags, &b));
            }
            out.push(with(3, small_change().encode_to_vec()));
            out
        }
        "request_token" => {
            let k = unit_key();
            let token = gongwen::auth::make_token(&k, UNIT, "/gongwen.v1.RegistryService/ListUnits", vec![0; 32])
                .unwrap_or_else(|e| panic!("{e}"));
            let header = {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD_NO_PAD.encode(token.encode_to_vec())
            };
            let fields = pb::RequestToken::decode(token.token.as_slice()).unwrap_or_default().encode_to_vec();
            vec![
                with(0, header),
                with(1, token.encode_to_vec()),
                with(0x7a, &fields),
                with(0xfa, &fields),
                with(0x32, &fields),
                with(3, []),
                with(0x83, pb::RequestToken { method: "/x".into(), ..Default::default() }.encode_to_vec()),
            ]
        }
        "parse" => {
            let corpus = include_bytes!("fixtures/forwarding-chain-lu-zi-bo-2022.txt");
            vec![with(5, corpus), with(1, &corpus[..corpus.len() / 2]), with(0, b"PK\x03\x04")]
        }
        "requests" => fuzzing::REQUESTS.iter().enumerate().map(|(i, (name, _))| request_seed(i, name)).collect(),
        other => panic!("no seeds for {other}"),
    }
}

fn request_seed(index: usize, name: &str) -> Vec<u8> {
    let page = Some(pb::PageRequest { page_size: 2, page_token: String::new() });
    let envs = statements();
    let env = |t: &str| envs.iter().find(|e| e.payload_type == t).cloned().unwrap_or_default().encode_to_vec();
    let msg: Vec<u8> = match name.rsplit('/').next().unwrap_or_default() {
        "GetInclusionProof" => pb::InclusionProofRequest { event_seq: 3, tree_size: 5 }.encode_to_vec(),
        "GetConsistencyProof" => pb::ConsistencyProofRequest { old_size: 3, new_size: 7 }.encode_to_vec(),
        "StreamLog" => pb::StreamLogRequest { from_seq: 0, limit: 10 }.encode_to_vec(),
        "ExportBundle" => pb::ExportRequest {
            scope: Some(pb::export_request::Scope::Range(pb::SeqRange { from_seq: 1, to_seq: 0 })),
            previous_size: 2,
        }
        .encode_to_vec(),
        "GetPublicDocument" | "GetDocument" => pb::GetDocumentRequest {
            key: Some(pb::get_document_request::Key::Number("淄财采〔2022〕20号".into())),
        }
        .encode_to_vec(),
        "DownloadPublicAttachment" => {
            pb::PublicAttachmentRequest { document_id: "d-1".into(), sha256: "ab".repeat(32) }.encode_to_vec()
        }
        "DownloadAttachment" => pb::DownloadRequest { sha256: "ab".repeat(32) }.encode_to_vec(),
        "Acknowledge" => env(pb::Acknowledge::TYPE),
        "Return" => env(pb::ReturnDelivery::TYPE),
        "StartHandling" => env(pb::StartHandling::TYPE),
        "Report" => env(pb::SubmitReport::TYPE),
        "Complete" => env(pb::Complete::TYPE),
        "Remind" => env(pb::Remind::TYPE),
        "Act" => env(pb::StartHandling::TYPE),
        "IssueDocument" => env(pb::IssueDocument::TYPE),
        "ForwardDocument" => env(pb::ForwardDocument::TYPE),
        "ApplyRegistryChange" => env(pb::RegistryChange::TYPE),
        "ImportDocument" => operator_key()
            .envelope(&pb::ImportDocument {
                request_id: "import-1".into(),
                issuer_name: "淄博市财政局".into(),
                number: "淄财采〔2022〕20号".into(),
                draft: Some(draft()),
                main_written: vec!["各区县财政局".into(), "高新区、经济开发区、文昌湖区财政局".into()],
                cc_written: vec![],
                forwards_document_id: String::new(),
                attachments: vec![],
                source_sha256: "ab".repeat(32),
                source_name: "chain.txt".into(),
                position: 1,
                ..Default::default()
            })
            .encode_to_vec(),
        "GetDelivery" => {
            pb::GetDeliveryRequest { document_id: "d-1".into(), recipient_unit_id: UNIT.into() }.encode_to_vec()
        }
        "ListInbox" => pb::ListInboxRequest {
            unit_id: UNIT.into(),
            states: vec![pb::DeliveryState::Pending as i32, pb::DeliveryState::Acknowledged as i32],
            page: Some(pb::PageRequest { page_size: 10, page_token: "42".into() }),
        }
        .encode_to_vec(),
        "WatchInbox" => pb::WatchInboxRequest { unit_id: UNIT.into() }.encode_to_vec(),
        "UploadAttachment" => pb::UploadChunk {
            part: Some(pb::upload_chunk::Part::Meta(pb::UploadMeta {
                file_name: "a.pdf".into(),
                media_type: "application/pdf".into(),
                expected_sha256: "ab".repeat(32),
            })),
        }
        .encode_to_vec(),
        "ListIssued" => pb::ListIssuedRequest { unit_id: UNIT.into(), page }.encode_to_vec(),
        "GetRegion" => pb::GetRegionRequest { code: "370300".into() }.encode_to_vec(),
        "ListRegions" => pb::ListRegionsRequest { subtree_of: "370300".into() }.encode_to_vec(),
        "GetUnit" => pb::GetUnitRequest { id: UNIT.into() }.encode_to_vec(),
        "ListUnits" => pb::ListUnitsRequest {
            region_subtree: "370000".into(),
            level: pb::Level::City as i32,
            kind: pb::UnitKind::FinanceBureau as i32,
            tag: String::new(),
            page: Some(pb::PageRequest { page_size: 3, page_token: "370200.czj".into() }),
        }
        .encode_to_vec(),
        "ExpandGroup" => {
            pb::ExpandGroupRequest { group: "各区县财政局".into(), issuer_unit_id: UNIT.into() }.encode_to_vec()
        }
        "ListOverdue" => pb::OverdueRequest {
            scope: Some(pb::overdue_request::Scope::RegionCode("370300".into())),
            order: pb::OverdueOrder::DaysLateDesc as i32,
        }
        .encode_to_vec(),
        "StatusMatrix" => pb::MatrixRequest { document_id: "d-1".into(), with_units: true }.encode_to_vec(),
        "UnitView" => pb::UnitViewRequest { unit_id: UNIT.into() }.encode_to_vec(),
        "ExportReport" => pb::ReportRequest {
            document_id: String::new(),
            region_code: "370300".into(),
            kind: pb::ReportKind::Overdue as i32,
            format: pb::ReportFormat::Csv as i32,
        }
        .encode_to_vec(),
        "Trace" => pb::TraceRequest { document_id: "d-1".into(), max_depth: 0 }.encode_to_vec(),
        "ListNotActed" => {
            pb::ListNotActedRequest { document_id: "d-1".into(), page_size: 2, page_token: "AQ".into() }.encode_to_vec()
        }
        _ => vec![],
    };
    let index = u8::try_from(index).unwrap_or_else(|_| panic!("more than 256 request types"));
    [vec![index, 8], msg].concat()
}

/// The seeds also run as regression inputs, straight from memory.
#[test]
fn seeds_run_clean() {
    let _release = ReleaseApp;
    for (target, f) in TARGETS {
        for seed in seeds(target) {
            f(&seed);
        }
    }
}

#[test]
#[ignore = "writes the seed corpus for cargo fuzz (GONGWEN_SEED_DIR, default fuzz/corpus)"]
fn write_seed_corpus() {
    let root = std::env::var_os("GONGWEN_SEED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus"));
    for (target, _) in TARGETS {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).expect("corpus dir");
        for (i, seed) in seeds(target).iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i:02}")), seed).expect("write seed");
        }
    }
}
