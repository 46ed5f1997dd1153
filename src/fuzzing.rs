//! Entry points for the fuzz targets in `fuzz/` and for the regression test `tests/fuzz_regressions.rs`.
//!
//! Each function takes arbitrary bytes and runs the code the server (or the offline verifier) runs on hostile
//! input — the same functions, not copies — and then checks properties of what came out with `assert!`. A panic
//! is a finding: either a panic inside the real code, or a property that does not hold. Not a stable API.
#![allow(clippy::panic)]
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use chrono::Utc;
use futures::executor::block_on;
use prost::Message;
use sha2::{Digest, Sha256};

use crate::app::access::Caller;
use crate::app::deliveries::DeliveryStatement;
use crate::app::log::ExportScope;
use crate::app::{App, AppConfig, AppError, SystemClock, documents, open_envelope, registry, schema};
use crate::auth;
use crate::domain::merkle::{self, Hash, Leaves};
use crate::domain::model::{KeyAlgorithm, Registry, SealKey};
use crate::domain::number::{DocNumber, validate_prefix};
use crate::domain::{seal, title};
use crate::grpc;
use crate::pb;
use crate::signing::{Signer, Statement};
use crate::store::{BlobStore, SledStore};
use crate::verify;

/// The unit whose key the harness holds (淄博市财政局).
pub const UNIT: &str = "370300.czj";
/// A unit below it (博山区财政局), whose key the harness does not hold.
const OTHER_UNIT: &str = "370304.czj";
/// The method the request-token target signs for, and the digest of its (empty) body.
const METHOD: &str = "/gongwen.v1.RegistryService/ListUnits";

fn operator_signer() -> Signer {
    Signer::from_secret("fuzz-operator", [1; 32])
}

fn unit_signer() -> Signer {
    Signer::from_secret("fuzz-unit", [2; 32])
}

fn log_signer() -> Signer {
    Signer::from_secret("fuzz-log", [3; 32])
}

fn seal_key(s: &Signer) -> SealKey {
    SealKey {
        key_id: s.key_id.clone(),
        algorithm: KeyAlgorithm::Ed25519,
        public_key: s.public_key().to_vec(),
        valid_from: None,
        revoked_at: None,
    }
}

/// First byte (a selector) and the rest.
fn head(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((b, rest)) => (*b, rest),
        None => (0, &[]),
    }
}

/// The bundled Shandong registry with the harness's key on [`UNIT`], as a registry change.
fn registry_change() -> pb::RegistryChange {
    let file = crate::registry_file::bundled().unwrap_or_else(|e| panic!("the bundled registry does not parse: {e}"));
    let keys =
        |id: &str| Ok::<_, std::convert::Infallible>(if id == UNIT { vec![unit_signer().seal_key()] } else { vec![] });
    let Ok(change) = file.into_change("fuzz-registry".into(), keys);
    change
}

/// The registry a change is checked against: the bundled one, as the server holds it after loading it.
fn base_registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| match registry::check_change(&Registry::default(), registry_change(), Utc::now()) {
        Ok(add) => add.next,
        Err(e) => panic!("the bundled registry is refused: {e}"),
    })
}

/// The harness's application and the directory of its store. Field order matters: the app (and its store) is
/// dropped before the directory is removed.
struct FuzzApp {
    app: Arc<App>,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for FuzzApp {
    type Target = App;
    fn deref(&self) -> &App {
        &self.app
    }
}

static APP: Mutex<Option<Arc<FuzzApp>>> = Mutex::new(None);

/// A real application over a sled store in a temp dir, with the bundled registry applied by a signed change. One
/// is shared until [`release_app`]; a fuzzer never releases it.
fn fuzz_app() -> Arc<FuzzApp> {
    let mut shared = APP.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    shared
        .get_or_insert_with(|| Arc::new(make_app().unwrap_or_else(|e| panic!("the fuzz app does not start: {e}"))))
        .clone()
}

/// Lets the shared application go: its store's directory is removed once no call still uses it, and the next
/// call makes a new one. A static is never dropped, so without this every test run would leave a directory
/// behind in the temp dir.
pub fn release_app() {
    let released = APP.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
    // Torn down outside the lock: other tests' calls need not wait for the store to close.
    drop(released);
}

/// The directory of the shared application's store (made if there is none).
pub fn app_dir() -> std::path::PathBuf {
    fuzz_app()._dir.path().to_owned()
}

fn make_app() -> Result<FuzzApp, String> {
    let dir = tempfile::Builder::new().prefix("gongwen-fuzz-").tempdir().map_err(|e| e.to_string())?;
    let store = SledStore::open(&dir.path().join("db"), 8 << 20).map_err(|e| e.to_string())?;
    let blobs = BlobStore::open(&dir.path().join("blobs"), 1 << 20).map_err(|e| e.to_string())?;
    let operator = operator_signer();
    let app = Arc::new(
        App::open(
            Arc::new(store),
            Arc::new(blobs),
            Arc::new(SystemClock),
            AppConfig::default(),
            Some(seal_key(&operator)),
        )
        .map_err(|e| e.to_string())?,
    );
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(app.apply_registry_change(operator.envelope(&registry_change()))).map_err(|e| e.to_string())?;
    Ok(FuzzApp { app, _dir: dir })
}

// ---------------------------------------------------------------------------------------------------------------
// doc_number

/// Fuzz target `doc_number`: parses UTF-8 text as a document number; what parses must print and parse back.
pub fn doc_number(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(n) = DocNumber::parse(text) {
        check_number(&n, text);
    }
}

/// Properties of a parsed number: its fields are in range, and its printed form (〔〕), every other accepted
/// bracket pair, full-width digits and stray spaces all parse back to the same number.
pub fn check_number(n: &DocNumber, from: &str) {
    assert!(validate_prefix(&n.prefix).is_ok(), "{from:?} parsed to the invalid prefix {:?}", n.prefix);
    assert!((1949..=2999).contains(&n.year), "{from:?} parsed to the year {}", n.year);
    assert!((1..=999_999).contains(&n.serial), "{from:?} parsed to the serial {}", n.serial);
    let printed = n.to_string();
    assert_eq!(printed, format!("{}〔{}〕{}号", n.prefix, n.year, n.serial), "{from:?}");
    let mut forms = vec![printed.clone()];
    for (open, close) in [('[', ']'), ('【', '】'), ('（', '）'), ('(', ')')] {
        forms.push(format!("{}{open}{}{close}{}号", n.prefix, n.year, n.serial));
    }
    forms.push(printed.chars().map(full_width_digit).collect());
    forms.push(printed.chars().flat_map(|c| [' ', c]).collect());
    for form in forms {
        assert_eq!(DocNumber::parse(&form).ok().as_ref(), Some(n), "{from:?} → {n:?}, but {form:?} parses otherwise");
    }
}

fn full_width_digit(c: char) -> char {
    match c.to_digit(10) {
        Some(d) if c.is_ascii_digit() => char::from_u32(u32::from('０') + d).unwrap_or(c),
        _ => c,
    }
}

// ---------------------------------------------------------------------------------------------------------------
// title

/// Fuzz target `title`: byte 0 gives the depth (1 to 8, low 3 bits) and whether the base title starts with its
/// issuer (high bit); the rest is `title|issuer|issuer…`. Derives the forwarding chain and checks every level.
pub fn title(data: &[u8]) {
    let (b, rest) = head(data);
    let depth = usize::from(b % 8) + 1;
    let text = String::from_utf8_lossy(rest);
    let mut parts = text.split('|');
    let base = parts.next().unwrap_or_default();
    let issuers: Vec<&str> = parts.collect();
    let issuer = |k: usize| issuers.get(k % issuers.len().max(1)).copied().unwrap_or_default();
    let mut t = if b & 0x80 != 0 { format!("{}{base}", issuer(0)) } else { base.to_owned() };
    for k in 0..depth {
        let next = title::forwarding_title(&t, issuer(k));
        check_forwarding(&t, issuer(k), &next);
        t = next;
    }
    let n = title::normalize_title(&text);
    // Only a single space between two ASCII characters survives normalisation (GB/T 9704 stays GB/T 9704).
    let chars: Vec<char> = n.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        let kept = *c == ' '
            && i > 0
            && chars.get(i - 1).is_some_and(char::is_ascii_graphic)
            && chars.get(i + 1).is_some_and(char::is_ascii_graphic);
        assert!(!c.is_whitespace() || kept, "{n:?}");
    }
    assert_eq!(title::normalize_title(&n), n);
}

const BOOK_MARKS: [char; 4] = ['《', '》', '〈', '〉'];

fn marks(s: &str) -> usize {
    s.chars().filter(|c| BOOK_MARKS.contains(c)).count()
}

/// Swaps 《》 and 〈〉 (an involution).
pub fn swap_marks(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '《' => '〈',
            '》' => '〉',
            '〈' => '《',
            '〉' => '》',
            other => other,
        })
        .collect()
}

/// The nesting depth of the book-title marks in `s` when they are balanced and alternate by depth (《》 at odd
/// depths, 〈〉 at even ones), otherwise `None`.
pub fn mark_depth(s: &str) -> Option<usize> {
    let (mut depth, mut max) = (0usize, 0usize);
    for c in s.chars() {
        match c {
            '《' | '〈' => {
                depth += 1;
                if c != if depth % 2 == 1 { '《' } else { '〈' } {
                    return None;
                }
                max = max.max(depth);
            }
            '》' | '〉' => {
                if depth == 0 || c != if depth % 2 == 1 { '》' } else { '〉' } {
                    return None;
                }
                depth -= 1;
            }
            _ => {}
        }
    }
    (depth == 0).then_some(max)
}

/// Undoes one forwarding step for an issuer without book-title marks: strips `关于转发` and `的通知`, the issuer
/// prefix (present exactly when the source title does not start with the issuer) and the outer 《》, and swaps the
/// inner marks back.
pub fn unforward(derived: &str, issuer: &str) -> Option<String> {
    let middle = derived.strip_prefix("关于转发")?.strip_suffix("的通知")?;
    let (prefixed, rest) = match middle.strip_prefix(issuer) {
        Some(r) if !issuer.is_empty() && r.starts_with('《') => (true, r),
        _ => (false, middle),
    };
    let source = swap_marks(rest.strip_prefix('《')?.strip_suffix('》')?);
    (prefixed != source.starts_with(issuer)).then_some(source)
}

/// Properties of one forwarding step `derived = forwarding_title(source, issuer)`.
pub fn check_forwarding(source: &str, issuer: &str, derived: &str) {
    assert!(derived.starts_with("关于转发") && derived.ends_with("的通知"), "{derived:?}");
    let quoted = title::quoted_title(source, issuer);
    assert_eq!(derived, format!("关于转发{quoted}的通知"));
    // The issuer prefix rule: the issuer's name stands before the quote exactly when the title does not start
    // with it.
    let prefixed = !source.starts_with(issuer);
    if prefixed {
        assert!(quoted.starts_with(issuer) && quoted[issuer.len()..].starts_with('《'), "{quoted:?}");
    } else {
        assert!(quoted.starts_with('《'), "{quoted:?}");
    }
    let issuer_marks = if prefixed { marks(issuer) } else { 0 };
    assert_eq!(marks(derived), marks(source) + 2 + issuer_marks, "{source:?} / {issuer:?} → {derived:?}");
    if marks(issuer) == 0 {
        assert_eq!(unforward(derived, issuer).as_deref(), Some(source), "{issuer:?}: {derived:?}");
        if let Some(d) = mark_depth(source) {
            assert_eq!(mark_depth(derived), Some(d + 1), "{source:?} → {derived:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// envelope

/// Fuzz target `envelope`: byte 0 selects what the rest is (low 2 bits): a signed envelope as a write RPC takes it,
/// a log entry holding one, an audit bundle for the offline verifier (the other bits say which signatures the
/// harness fixes up, so the checks behind them are reached), or a registry change.
pub fn envelope(data: &[u8]) {
    let (b, rest) = head(data);
    match b % 4 {
        0 => {
            if let Ok(env) = pb::SignedEnvelope::decode(rest) {
                check_envelope(&env);
            }
        }
        1 => {
            if let Ok(entry) = pb::LogEntry::decode(rest)
                && let Some(env) = &entry.envelope
            {
                check_envelope(env);
                if let Some(t) = verify::expected_type(entry.kind) {
                    assert!(t.starts_with("gongwen.v1."), "{t}");
                }
            }
        }
        2 => bundle(b, rest),
        _ => {
            if let Ok(change) = pb::RegistryChange::decode(rest) {
                check_registry_change(&change);
            }
        }
    }
}

/// Reads a DSSE PAE back into (payload type, payload).
fn parse_pae(pae: &[u8]) -> Option<(&[u8], &[u8])> {
    fn field(b: &[u8]) -> Option<(&[u8], &[u8])> {
        let sp = b.iter().position(|c| *c == b' ')?;
        let len: usize = std::str::from_utf8(&b[..sp]).ok()?.parse().ok()?;
        let rest = &b[sp + 1..];
        (rest.len() >= len).then(|| rest.split_at(len))
    }
    let rest = pae.strip_prefix(b"DSSEv1 ")?;
    let (payload_type, rest) = field(rest)?;
    let (payload, rest) = field(rest.strip_prefix(b" ")?)?;
    rest.is_empty().then_some((payload_type, payload))
}

/// The pre-authentication encoding, the signature check, and every statement type the server takes.
fn check_envelope(env: &pb::SignedEnvelope) {
    let pae = seal::pae(&env.payload_type, &env.payload);
    assert_eq!(parse_pae(&pae), Some((env.payload_type.as_bytes(), env.payload.as_slice())), "PAE is ambiguous");
    let _ = seal::verify(&seal_key(&unit_signer()), &env.payload_type, &env.payload, &env.signature, Utc::now());
    open_statement::<pb::RegistryChange>(env);
    open_statement::<pb::IssueDocument>(env);
    open_statement::<pb::ForwardDocument>(env);
    open_statement::<pb::Acknowledge>(env);
    open_statement::<pb::ReturnDelivery>(env);
    open_statement::<pb::StartHandling>(env);
    open_statement::<pb::SubmitReport>(env);
    open_statement::<pb::Complete>(env);
    open_statement::<pb::Remind>(env);
    open_statement::<pb::ChangeUnitKeys>(env);
}

/// A statement type with the checks its RPC makes before anything is looked up; returns the acting unit.
trait Checked: Statement {
    fn check(&self) -> Option<String>;
}

impl Checked for pb::RegistryChange {
    fn check(&self) -> Option<String> {
        check_registry_change(self);
        None
    }
}

impl Checked for pb::ChangeUnitKeys {
    fn check(&self) -> Option<String> {
        let base = base_registry();
        let signer = (!self.signer_unit_id.is_empty()).then_some(self.signer_unit_id.as_str());
        let now = Utc::now();
        if let Ok((unit, keys)) = registry::check_key_change(base, signer, self, now) {
            assert_eq!(unit.id, self.unit_id);
            assert!(unit.keys.iter().any(|k| k.revoked_at.is_none_or(|t| t > now)), "a key change left no valid key");
            assert_eq!(keys as usize, self.add_keys.len() + self.revoke.len());
            if let (Some(signer), Some(before)) = (signer, base.units.get(&self.unit_id)) {
                let parent = crate::domain::keys::parent_unit(base, before).map(|p| p.id.as_str());
                assert_eq!(parent, Ok(signer), "a key change by someone other than the parent unit was accepted");
            }
        }
        Some(if self.signer_unit_id.is_empty() { "operator".into() } else { self.signer_unit_id.clone() })
    }
}

impl Checked for pb::IssueDocument {
    fn check(&self) -> Option<String> {
        if let Ok((draft, _)) = documents::issue_draft(self) {
            check_draft(&draft);
        }
        Some(self.unit_id.clone())
    }
}

impl Checked for pb::ForwardDocument {
    fn check(&self) -> Option<String> {
        let _ = documents::forward_source(self);
        if let Ok(draft) = documents::forward_draft(self) {
            check_draft(&draft);
        }
        Some(self.unit_id.clone())
    }
}

impl Checked for pb::ImportDocument {
    fn check(&self) -> Option<String> {
        if let Ok(n) = DocNumber::parse(&self.number) {
            check_number(&n, &self.number);
        }
        let snap = fuzz_app().snapshot();
        if let Some(u) = snap.registry.unit_named(&self.issuer_name) {
            assert!(
                snap.registry.units.contains_key(&u.id),
                "{:?} names a unit outside the registry",
                self.issuer_name
            );
        }
        if let Err(missing) = snap.registry.match_recipients(&self.main_written) {
            assert!(!missing.is_empty(), "a refused recipient list names nothing it could not match");
        }
        // Imports are the operator's, never a unit's: there is no acting unit to compare with the verifier.
        None
    }
}

macro_rules! delivery_checked {
    ($($t:ty),*) => {$(
        impl Checked for $t {
            fn check(&self) -> Option<String> {
                if let Ok(cmd) = self.command() {
                    assert_eq!(cmd.document_id, self.document_id);
                    assert_eq!(cmd.text.trim(), cmd.text, "command text is not trimmed");
                    for a in &cmd.attachments {
                        assert!(a.len() == 64 && a.bytes().all(|b| b.is_ascii_hexdigit()), "{a:?}");
                    }
                }
                Some(self.unit_id.clone())
            }
        }
    )*};
}
delivery_checked!(pb::Acknowledge, pb::ReturnDelivery, pb::StartHandling, pb::SubmitReport, pb::Complete, pb::Remind);

fn check_draft(d: &crate::app::statements::Draft) {
    assert!(validate_prefix(&d.prefix).is_ok(), "{:?}", d.prefix);
    assert!((1949..=2999).contains(&d.year), "{}", d.year);
    assert!(!d.title.chars().any(|c| c.is_whitespace() || c.is_control()), "{:?}", d.title);
}

/// Opens `env` as an `M` statement the way the server does, checks it, and compares with the offline verifier.
fn open_statement<M: Checked>(env: &pb::SignedEnvelope) {
    match open_envelope::<M>(env) {
        Ok(signed) => {
            assert_eq!(env.payload_type, M::TYPE, "an envelope opened as another type");
            let digest: [u8; 32] = Sha256::digest(seal::pae(&env.payload_type, &env.payload)).into();
            assert_eq!(signed.digest, digest);
            if let Some(actor) = signed.statement.check() {
                // The verifier reads the same acting unit from the same bytes.
                assert_eq!(verify::statement_actor(env), Ok(actor), "{}", M::TYPE);
            }
        }
        Err(e) => {
            assert!(matches!(e, AppError::Invalid(_)), "{e:?}");
            if env.payload_type == M::TYPE {
                assert!(verify::statement_actor(env).is_err(), "the verifier reads a payload the server refuses");
            }
        }
    }
}

/// A registry change against an empty registry and the bundled one; one that is accepted (and changes no keys)
/// must be accepted again on the result, adding nothing.
fn check_registry_change(change: &pb::RegistryChange) {
    let empty = Registry::default();
    for current in [&empty, base_registry()] {
        let Ok(add) = registry::check_change(current, change.clone(), Utc::now()) else { continue };
        for u in &add.units {
            assert!(add.next.regions.contains_key(&u.region), "unit {} in an unknown region", u.id);
        }
        if change.key_changes.is_empty() {
            match registry::check_change(&add.next, change.clone(), Utc::now()) {
                Ok(again) => assert!(
                    again.regions.is_empty() && again.units.is_empty() && again.groups.is_empty(),
                    "a change applied twice adds something the second time"
                ),
                Err(e) => panic!("a change accepted once is refused the second time: {e}"),
            }
        }
    }
}

/// The offline verifier on a hostile bundle.
fn bundle(b: u8, rest: &[u8]) {
    let Ok(mut bundle) = pb::AuditBundle::decode(rest) else { return };
    let (log, operator) = (log_signer(), operator_signer());
    let mut trust = verify::Trust::default();
    if b & 0x04 != 0 {
        // Registry changes signed by an operator key the harness holds.
        bundle.operator_public_key = operator.public_key().to_vec();
        bundle.operator_key_id = operator.key_id.clone();
        for e in &mut bundle.entries {
            if let Ok(mut entry) = pb::LogEntry::decode(e.entry.as_slice())
                && let Some(env) = entry.envelope.as_mut()
                && env.payload_type == pb::RegistryChange::TYPE
            {
                env.key_id = operator.key_id.clone();
                env.signature = operator.sign_raw(&env.payload_type, &env.payload);
                e.entry = entry.encode_to_vec();
            }
        }
    }
    let leaves: Vec<Hash> = bundle.entries.iter().map(|e| merkle::leaf_hash(&e.entry)).collect();
    if b & 0x08 != 0 {
        // A checkpoint signed by a log key the harness holds (and, with 0x10, over exactly these entries).
        let mut cp = bundle
            .checkpoint
            .as_ref()
            .and_then(|c| pb::Checkpoint::decode(c.checkpoint.as_slice()).ok())
            .unwrap_or_default();
        if b & 0x10 != 0 {
            cp.tree_size = leaves.len() as u64;
            cp.root_hash = merkle::reference_root(&leaves).to_vec();
            cp.origin = crate::app::log::origin(&log.public_key());
        }
        let bytes = cp.encode_to_vec();
        let signature = log.sign_raw(crate::app::log::CHECKPOINT_TYPE, &bytes);
        bundle.checkpoint = Some(pb::SignedCheckpoint { checkpoint: bytes, key_id: log.key_id.clone(), signature });
        bundle.log_public_key = log.public_key().to_vec();
    }
    if b & 0x20 != 0 {
        trust.log_public_key = Some(log.public_key().to_vec());
        trust.operator_public_key = Some(operator.public_key().to_vec());
    }
    if b & 0x40 != 0 {
        // An earlier checkpoint the auditor kept, of a prefix of these entries.
        let old = bundle.consistency.as_ref().map_or(0, |c| c.old_size);
        let prefix = usize::try_from(old).unwrap_or(usize::MAX).min(leaves.len());
        let root = merkle::reference_root(&leaves[..prefix]);
        trust.previous_checkpoint = Some(crate::app::log::sign_checkpoint(&log, old, root, Utc::now()));
    }
    let report = verify::verify_bundle(&bundle, &trust);
    assert_eq!(report.entries, bundle.entries.len());
    if report.ok() {
        let mut previous = 0;
        for e in &bundle.entries {
            assert!(e.event_seq > previous && e.event_seq <= report.tree_size, "an out-of-order bundle passes");
            previous = e.event_seq;
        }
        assert_eq!(report.signatures_ok, bundle.entries.len(), "a bundle passes with unchecked signatures");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// request_token

fn fresh_nonce() -> Vec<u8> {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    [n.to_be_bytes(), *b"fuzz-nce"].concat()
}

fn now_timestamp() -> prost_types::Timestamp {
    crate::grpc::convert::timestamp(Utc::now())
}

fn base64(bytes: &[u8], padded: bool) -> String {
    use base64::Engine;
    let e = base64::engine::general_purpose::STANDARD;
    if padded { e.encode(bytes) } else { base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes) }
}

/// Fuzz target `request_token`: byte 0 selects (low 2 bits) the raw `gongwen-auth-bin` value, an `AuthToken`
/// message, a `RequestToken` the harness signs after fixing up the fields the high bits name, or good token bytes
/// followed by the rest (later fields override earlier ones), signed. Every token goes through the server's
/// `App::authenticate`.
pub fn request_token(data: &[u8]) {
    let (b, rest) = head(data);
    let app = fuzz_app();
    let digest = Sha256::digest(b"").to_vec();
    match b % 4 {
        0 => {
            if let Some(token) = auth::decode_header(rest) {
                header_round_trip(&token);
                authenticate(&app, &token, &digest);
            }
        }
        1 => {
            if let Ok(token) = pb::AuthToken::decode(rest) {
                header_round_trip(&token);
                authenticate(&app, &token, &digest);
            }
        }
        mode => {
            let operator = b & 0x80 != 0;
            let (signer, unit) = if operator { (operator_signer(), "operator") } else { (unit_signer(), UNIT) };
            let bytes = if mode == 2 {
                let Ok(mut t) = pb::RequestToken::decode(rest) else { return };
                let all = b & 0x78 == 0x78;
                if b & 0x08 != 0 {
                    t.unit_id = unit.into();
                }
                if b & 0x10 != 0 {
                    t.time = Some(now_timestamp());
                }
                if b & 0x20 != 0 {
                    t.nonce = fresh_nonce();
                }
                if b & 0x40 != 0 {
                    t.method = METHOD.into();
                    t.body_sha256 = digest.clone();
                }
                let bytes = t.encode_to_vec();
                if all {
                    let token = signed_token(&signer, bytes.clone());
                    let caller = block_on(app.authenticate(&token, METHOD, &digest));
                    let want = if operator { Caller::Operator } else { Caller::Unit(UNIT.into()) };
                    assert_eq!(caller.ok(), Some(want), "a good token is refused");
                    assert!(
                        block_on(app.authenticate(&token, METHOD, &digest)).is_err(),
                        "a replayed token is accepted"
                    );
                    return;
                }
                bytes
            } else {
                let good = pb::RequestToken {
                    unit_id: unit.into(),
                    method: METHOD.into(),
                    time: Some(now_timestamp()),
                    nonce: fresh_nonce(),
                    body_sha256: digest.clone(),
                };
                [good.encode_to_vec(), rest.to_vec()].concat()
            };
            let token = signed_token(&signer, bytes);
            if authenticate(&app, &token, &digest) {
                assert!(block_on(app.authenticate(&token, METHOD, &digest)).is_err(), "a replayed token is accepted");
            }
            // Any change to the signed bytes or the signature is refused.
            let mut tampered = token.clone();
            let at = usize::from(b) % tampered.token.len().max(1);
            match tampered.token.get_mut(at) {
                Some(byte) => *byte ^= 0x01,
                None => tampered.token.push(0),
            }
            assert!(block_on(app.authenticate(&tampered, METHOD, &digest)).is_err(), "a tampered token is accepted");
            let mut forged = token;
            if let Some(byte) = forged.signature.get_mut(usize::from(b) % 64) {
                *byte ^= 0x40;
            }
            assert!(block_on(app.authenticate(&forged, METHOD, &digest)).is_err(), "a forged signature is accepted");
        }
    }
}

fn signed_token(signer: &Signer, token: Vec<u8>) -> pb::AuthToken {
    let signature = signer.sign_raw(auth::TOKEN_TYPE, &token);
    pb::AuthToken { token, key_id: signer.key_id.clone(), signature }
}

/// The metadata value carries a token exactly, padded or not.
fn header_round_trip(token: &pb::AuthToken) {
    let bytes = token.encode_to_vec();
    for padded in [false, true] {
        assert_eq!(auth::decode_header(base64(&bytes, padded).as_bytes()).as_ref(), Some(token), "padded: {padded}");
    }
}

/// Runs the server's check; when it accepts, the token must say what the server relied on. True when accepted.
fn authenticate(app: &App, token: &pb::AuthToken, digest: &[u8]) -> bool {
    let Ok(caller) = block_on(app.authenticate(token, METHOD, digest)) else { return false };
    let t = match pb::RequestToken::decode(token.token.as_slice()) {
        Ok(t) => t,
        Err(e) => panic!("an accepted token does not decode: {e}"),
    };
    assert_eq!(t.method, METHOD);
    assert_eq!(t.body_sha256, digest);
    assert_eq!(t.nonce.len(), 16);
    let at = t.time.map_or(0, |ts| ts.seconds);
    assert!((at - Utc::now().timestamp()).abs() <= 301, "a token from {at} is accepted");
    match caller {
        Caller::Operator => assert_eq!((t.unit_id.as_str(), token.key_id.as_str()), ("operator", "fuzz-operator")),
        Caller::Unit(u) => assert_eq!((u.as_str(), token.key_id.as_str()), (UNIT, "fuzz-unit"), "{}", t.unit_id),
    }
    true
}

// ---------------------------------------------------------------------------------------------------------------
// requests

/// A request check: the state byte (log size, caller) and the message bytes.
type Check = fn(u8, &[u8]);

/// Every gRPC request type, by method, with what the server does to it before (or instead of) the store.
pub const REQUESTS: &[(&str, Check)] = &[
    ("AdminService/Backup", |_, b| plain::<pb::BackupRequest>(b)),
    ("AuditService/GetCheckpoint", |_, b| plain::<pb::GetCheckpointRequest>(b)),
    ("AuditService/GetInclusionProof", inclusion),
    ("AuditService/GetConsistencyProof", consistency),
    ("AuditService/StreamLog", |_, b| {
        if let Some(r) = decoded::<pb::StreamLogRequest>(b) {
            let (from, limit) = grpc::audit::log_window(&r);
            assert!(from >= 1 && limit >= 1);
        }
    }),
    ("AuditService/ExportBundle", |s, b| {
        if let Some(r) = decoded::<pb::ExportRequest>(b)
            && let Ok(ExportScope::Range { .. }) = grpc::audit::export_scope(r.scope)
        {
            let _ = fuzz_app().may_read_log(&caller(s));
        }
    }),
    ("PublicService/GetPublicDocument", |_, b| get_document(b)),
    ("PublicService/DownloadPublicAttachment", |_, b| {
        if let Some(r) = decoded::<pb::PublicAttachmentRequest>(b) {
            sha(&r.sha256);
        }
    }),
    ("DeliveryService/Acknowledge", |_, b| signed::<pb::Acknowledge>(b)),
    ("DeliveryService/Return", |_, b| signed::<pb::ReturnDelivery>(b)),
    ("DeliveryService/StartHandling", |_, b| signed::<pb::StartHandling>(b)),
    ("DeliveryService/Report", |_, b| signed::<pb::SubmitReport>(b)),
    ("DeliveryService/Complete", |_, b| signed::<pb::Complete>(b)),
    ("DeliveryService/Remind", |_, b| signed::<pb::Remind>(b)),
    ("DeliveryService/GetDelivery", |_, b| plain::<pb::GetDeliveryRequest>(b)),
    ("DeliveryService/ListInbox", |s, b| {
        if let Some(r) = decoded::<pb::ListInboxRequest>(b) {
            let app = fuzz_app();
            let _ = app.unit(&r.unit_id);
            let _ = app.may_see_unit(&caller(s), &r.unit_id);
            if let Ok(states) = grpc::deliveries::inbox_states(&r.states) {
                assert_eq!(states.len(), r.states.len());
            }
            paged(&r.unit_id, r.page, schema::inbox);
        }
    }),
    ("DeliveryService/WatchInbox", |s, b| {
        if let Some(r) = decoded::<pb::WatchInboxRequest>(b) {
            see_unit(s, &r.unit_id);
        }
    }),
    ("DocumentService/UploadAttachment", |_, b| {
        if let Some(r) = decoded::<pb::UploadChunk>(b) {
            if let Ok(Some(expected)) = grpc::documents::upload_meta(r.clone()) {
                sha(&expected);
            }
            let _ = grpc::documents::upload_chunk(r);
        }
    }),
    ("DocumentService/DownloadAttachment", |_, b| {
        if let Some(r) = decoded::<pb::DownloadRequest>(b) {
            sha(&r.sha256);
        }
    }),
    ("DocumentService/IssueDocument", |_, b| signed::<pb::IssueDocument>(b)),
    ("DocumentService/ForwardDocument", |_, b| signed::<pb::ForwardDocument>(b)),
    ("DocumentService/GetDocument", |_, b| get_document(b)),
    ("DocumentService/ListIssued", |s, b| {
        if let Some(r) = decoded::<pb::ListIssuedRequest>(b) {
            let _ = fuzz_app().may_see_unit(&caller(s), &r.unit_id);
            paged(&r.unit_id, r.page, schema::issued);
        }
    }),
    ("RegistryService/GetServerInfo", |_, b| plain::<pb::GetServerInfoRequest>(b)),
    ("RegistryService/ApplyRegistryChange", |_, b| signed::<pb::RegistryChange>(b)),
    ("RegistryService/GetRegion", |_, b| {
        if let Some(r) = decoded::<pb::GetRegionRequest>(b)
            && let Ok(region) = fuzz_app().region(&r.code)
        {
            assert_eq!(region.code, r.code);
        }
    }),
    ("RegistryService/ListRegions", |_, b| {
        if let Some(r) = decoded::<pb::ListRegionsRequest>(b) {
            let _ = fuzz_app().regions(&r.subtree_of);
        }
    }),
    ("RegistryService/GetUnit", |_, b| {
        if let Some(r) = decoded::<pb::GetUnitRequest>(b)
            && let Ok(unit) = fuzz_app().unit(&r.id)
        {
            assert_eq!(unit.id, r.id);
        }
    }),
    ("RegistryService/ListUnits", |_, b| {
        if let Some(r) = decoded::<pb::ListUnitsRequest>(b) {
            list_units(r);
        }
    }),
    ("RegistryService/ListGroups", |_, b| plain::<pb::ListGroupsRequest>(b)),
    ("RegistryService/ExpandGroup", |_, b| {
        if let Some(r) = decoded::<pb::ExpandGroupRequest>(b) {
            let _ = fuzz_app().expand_group(&r.group, &r.issuer_unit_id);
        }
    }),
    ("SupervisionService/ListOverdue", |s, b| {
        if let Some(r) = decoded::<pb::OverdueRequest>(b) {
            if let Ok(crate::app::supervision::OverdueScope::Region(code)) = grpc::supervision::overdue_scope(r.scope) {
                let _ = fuzz_app().region(&code);
                let _ = fuzz_app().may_see_region(&caller(s), &code);
            }
            let _ = grpc::supervision::overdue_order(r.order);
        }
    }),
    ("SupervisionService/StatusMatrix", |_, b| plain::<pb::MatrixRequest>(b)),
    ("SupervisionService/UnitView", |s, b| {
        if let Some(r) = decoded::<pb::UnitViewRequest>(b) {
            see_unit(s, &r.unit_id);
        }
    }),
    ("SupervisionService/ExportReport", |s, b| {
        if let Some(r) = decoded::<pb::ReportRequest>(b) {
            if r.document_id.is_empty() {
                let _ = fuzz_app().region(&r.region_code);
                let _ = fuzz_app().may_see_region(&caller(s), &r.region_code);
            }
            let _ = grpc::supervision::report_choice(r.kind, r.format);
        }
    }),
    ("TraceService/Trace", |_, b| plain::<pb::TraceRequest>(b)),
    ("TraceService/ListNotActed", |_, b| plain::<pb::ListNotActedRequest>(b)),
    ("DocumentService/ImportDocument", |_, b| signed::<pb::ImportDocument>(b)),
    ("RegistryService/ChangeUnitKeys", |_, b| signed::<pb::ChangeUnitKeys>(b)),
    ("DeliveryService/Act", |_, b| {
        // Each message on the stream is opened as the statement its payload type names, or refused.
        if let Some(env) = decoded::<pb::SignedEnvelope>(b) {
            match env.payload_type.as_str() {
                pb::Acknowledge::TYPE => open_statement::<pb::Acknowledge>(&env),
                pb::ReturnDelivery::TYPE => open_statement::<pb::ReturnDelivery>(&env),
                pb::StartHandling::TYPE => open_statement::<pb::StartHandling>(&env),
                pb::SubmitReport::TYPE => open_statement::<pb::SubmitReport>(&env),
                pb::Complete::TYPE => open_statement::<pb::Complete>(&env),
                pb::Remind::TYPE => open_statement::<pb::Remind>(&env),
                _ => {}
            }
        }
    }),
];

/// Fuzz target `requests`: byte 0 picks the request type from [`REQUESTS`], byte 1 is state (log size for
/// proofs, which caller asks), the rest is the message.
pub fn requests(data: &[u8]) {
    let (pick, rest) = head(data);
    let (state, message) = head(rest);
    let (_, check) = REQUESTS[usize::from(pick) % REQUESTS.len()];
    check(state, message);
}

/// Decodes a message; what decodes must encode and decode to itself.
fn decoded<M: Message + Default + PartialEq>(bytes: &[u8]) -> Option<M> {
    let m = M::decode(bytes).ok()?;
    let again = M::decode(m.encode_to_vec().as_slice()).ok();
    assert!(again.as_ref() == Some(&m), "re-encoding a decoded {} changes it", std::any::type_name::<M>());
    Some(m)
}

/// A request whose handler reads no field before the store or the caller check.
fn plain<M: Message + Default + PartialEq>(bytes: &[u8]) {
    decoded::<M>(bytes);
}

fn caller(s: u8) -> Caller {
    match s % 3 {
        0 => Caller::Operator,
        1 => Caller::Unit(UNIT.into()),
        _ => Caller::Unit(OTHER_UNIT.into()),
    }
}

fn see_unit(s: u8, unit: &str) {
    let app = fuzz_app();
    let _ = app.unit(unit);
    let _ = app.may_see_unit(&caller(s), unit);
}

fn sha(value: &str) {
    if let Ok(s) = crate::app::statements::sha256("sha256", value) {
        assert_eq!(s, value);
        assert!(s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "{s:?}");
    }
}

fn paged(unit: &str, page: Option<pb::PageRequest>, key: fn(&str, u64) -> Vec<u8>) {
    let (size, token) = grpc::page(page);
    assert!((1..=1000).contains(&size), "page size {size}");
    if let Ok(Some(start)) = documents::page_start(unit, &token, key) {
        assert_eq!(Ok(documents::seq_of(&start)), token.parse::<u64>(), "{token:?}");
    }
}

fn get_document(b: &[u8]) {
    if let Some(r) = decoded::<pb::GetDocumentRequest>(b)
        && let Some(pb::get_document_request::Key::Number(text)) = r.key
        && let Ok(n) = DocNumber::parse(&text)
    {
        check_number(&n, &text);
    }
}

/// A write RPC: the envelope, opened as the RPC's statement type and checked.
fn signed<M: Checked>(b: &[u8]) {
    if let Some(env) = decoded::<pb::SignedEnvelope>(b) {
        open_statement::<M>(&env);
    }
}

/// The filter and page of a unit listing over the bundled registry; what comes back must match it.
fn list_units(mut r: pb::ListUnitsRequest) {
    let (size, token) = grpc::page(r.page.take());
    let Ok(filter) = grpc::registry::unit_filter(r) else { return };
    let Ok((units, next)) = fuzz_app().units(&filter, &token, size) else { return };
    assert!(units.len() <= size);
    for w in units.windows(2) {
        assert!(w[0].id < w[1].id, "units out of order");
    }
    for u in &units {
        assert!(token.is_empty() || u.id > token);
        assert!(filter.level.is_none_or(|l| u.level == l) && filter.kind.is_none_or(|k| u.kind == k));
        assert!(filter.tag.is_empty() || u.tags.contains(&filter.tag));
    }
    if let Some(next) = next {
        assert_eq!(units.last().map(|u| u.id.as_str()), Some(next.as_str()));
    }
}

fn leaves(n: u8) -> Vec<Hash> {
    (0..u64::from(n)).map(|i| merkle::leaf_hash(&i.to_be_bytes())).collect()
}

fn prefix(leaves: &[Hash], size: u64) -> &[Hash] {
    &leaves[..usize::try_from(size).unwrap_or(usize::MAX).min(leaves.len())]
}

/// The server's bounds for an inclusion proof, over a log of `s` events; a proof it makes must verify.
fn inclusion(s: u8, b: &[u8]) {
    let Some(r) = decoded::<pb::InclusionProofRequest>(b) else { return };
    let Ok(size) = crate::app::log::inclusion_size(r.event_seq, r.tree_size, u64::from(s)) else { return };
    assert!(r.event_seq >= 1 && r.event_seq <= size && size <= u64::from(s));
    let leaves = leaves(s);
    let nodes = Leaves(&leaves);
    let index = r.event_seq - 1;
    let Ok(proof) = merkle::inclusion_proof(&nodes, index, size);
    let Ok(root) = merkle::root(&nodes, size);
    assert_eq!(root, merkle::reference_root(prefix(&leaves, size)));
    let leaf = prefix(&leaves, size)[usize::try_from(index).unwrap_or(0)];
    assert!(merkle::verify_inclusion(index, size, &leaf, &proof, &root), "a proof the server makes fails");
    if let Some(mut bad) = proof.first().copied() {
        bad[0] ^= 1;
        let tampered: Vec<Hash> = std::iter::once(bad).chain(proof.iter().skip(1).copied()).collect();
        assert!(!merkle::verify_inclusion(index, size, &leaf, &tampered, &root), "a tampered proof passes");
    }
}

/// The server's bounds for a consistency proof, over a log of `s` events; a proof it makes must verify.
fn consistency(s: u8, b: &[u8]) {
    let Some(r) = decoded::<pb::ConsistencyProofRequest>(b) else { return };
    let Ok(new) = crate::app::log::consistency_size(r.old_size, r.new_size, u64::from(s)) else { return };
    let old = r.old_size;
    assert!(old >= 1 && old <= new && new <= u64::from(s));
    let leaves = leaves(s);
    let nodes = Leaves(&leaves);
    let Ok(proof) = merkle::consistency_proof(&nodes, old, new);
    let (old_root, new_root) =
        (merkle::reference_root(prefix(&leaves, old)), merkle::reference_root(prefix(&leaves, new)));
    assert!(merkle::verify_consistency(old, new, &old_root, &new_root, &proof), "{old} → {new}: the proof fails");
}

// ---------------------------------------------------------------------------------------------------------------
// parse

/// Fuzz target `parse`: byte 0 picks the source kind (0 .docx, 1 bytes of unknown encoding, else UTF-8 text), the
/// rest is the file. PDF is left out: pdf-extract panics on some damaged files, which `pdf_text` catches, but
/// libFuzzer's panic hook aborts first, so every such file would be reported as ours. The parser must never panic, and what it returns must hang together: line ranges
/// inside the text, chain links that point forwards to real documents, warnings about documents that exist.
pub fn parse(data: &[u8]) {
    use crate::parse::{parse_text, source};
    let (kind, rest) = head(data);
    let text = match kind {
        0 => source::text_from_bytes("fuzz.docx", rest).ok(),
        1 => source::text_from_bytes("fuzz.txt", rest).ok(),
        _ => Some(String::from_utf8_lossy(rest).into_owned()),
    };
    let Some(text) = text else { return };
    let parsed = parse_text(&text);
    // Every line break the parser may count (\n, \r\n, a lone \r, U+2028) at most adds a line.
    let max_line = text.chars().filter(|c| matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}')).count() + 1;
    let n = parsed.documents.len();
    for (k, d) in parsed.documents.iter().enumerate() {
        assert!(d.lines.0 >= 1 && d.lines.0 <= d.lines.1 && d.lines.1 <= max_line, "[{k}] lines {:?}", d.lines);
        assert!(d.forwards.is_none_or(|f| f > k && f < n), "[{k}] forwards {:?} of {n}", d.forwards);
        assert!(d.attached_to.is_none_or(|a| a < k), "[{k}] attached to {:?}", d.attached_to);
        if let Some(f) = d.forwards {
            assert_eq!(parsed.documents[f].depth, d.depth + 1, "[{k}] forwards [{f}] at the wrong depth");
        }
        if let Some(number) = &d.number {
            check_number(&number.value, &text);
        }
        if let Some(t) = &d.title {
            assert!(!t.value.contains('\n'), "[{k}] a title keeps a line break: {:?}", t.value);
        }
    }
    for w in &parsed.warnings {
        assert!(w.document.is_none_or(|d| d < n), "a warning about document {:?} of {n}", w.document);
        assert!(w.line.is_none_or(|l| l >= 1 && l <= max_line), "a warning at line {:?}", w.line);
    }
    let chain = parsed.chain(0);
    assert!(chain.len() <= n);
}
