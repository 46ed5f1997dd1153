//! The domain's records. Plain data with serde, no I/O; the store keeps them, the gRPC layer converts them.
use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::number::DocNumber;
use super::state::DeliveryState;

/// 行政级别: administrative level, province (highest) to township.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Level {
    /// 省级.
    Province,
    /// 市级.
    City,
    /// 县级.
    County,
    /// 乡级.
    Township,
}

impl Level {
    /// 0 for a province, 3 for a township: the difference of two depths is the number of levels between them.
    pub fn depth(self) -> u8 {
        match self {
            Level::Province => 0,
            Level::City => 1,
            Level::County => 2,
            Level::Township => 3,
        }
    }

    /// The Chinese name of the level.
    pub fn name(self) -> &'static str {
        match self {
            Level::Province => "省级",
            Level::City => "市级",
            Level::County => "县级",
            Level::Township => "乡级",
        }
    }

    /// The level with the given depth.
    pub fn from_depth(depth: u8) -> Option<Level> {
        [Level::Province, Level::City, Level::County, Level::Township].get(usize::from(depth)).copied()
    }
}

/// What sort of office a unit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum UnitKind {
    /// 财政厅 / 财政局.
    FinanceBureau,
    /// 部门.
    Department,
    /// 事业单位.
    Institution,
    /// 财政所.
    FinanceOffice,
    /// 审计局.
    AuditBureau,
    /// 办公室.
    Office,
}

/// 行政区划, identified by its GB/T 2260 code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Region {
    /// GB/T 2260 code (6 digits) or a 9-digit township code.
    pub code: String,
    /// Name, e.g. 淄博市博山区.
    pub name: String,
    /// Parent region; `None` only for a root.
    pub parent: Option<String>,
    /// Level of the region.
    pub level: Level,
}

/// Signature algorithm of a seal key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyAlgorithm {
    /// Ed25519 (RFC 8032).
    Ed25519,
    /// SM2 signatures with SM3 digests (GB/T 32918.2, GB/T 32905), distinguishing id `1234567812345678`.
    Sm2,
}

impl KeyAlgorithm {
    /// The name used on the wire and in files.
    pub fn name(self) -> &'static str {
        match self {
            KeyAlgorithm::Ed25519 => "ed25519",
            KeyAlgorithm::Sm2 => "sm2",
        }
    }

    /// Parses the wire name; an empty name means the default, Ed25519.
    pub fn parse(name: &str) -> Option<KeyAlgorithm> {
        match name {
            "ed25519" | "" => Some(KeyAlgorithm::Ed25519),
            "sm2" => Some(KeyAlgorithm::Sm2),
            _ => None,
        }
    }
}

/// 电子印章: a unit's signing key and its validity window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealKey {
    /// Key id, unique in the registry.
    pub key_id: String,
    /// Algorithm.
    pub algorithm: KeyAlgorithm,
    /// Raw public key bytes.
    pub public_key: Vec<u8>,
    /// Signs nothing before this time (`None`: no lower bound).
    pub valid_from: Option<DateTime<Utc>>,
    /// Signs nothing after this time (`None`: not revoked).
    pub revoked_at: Option<DateTime<Utc>>,
}

/// 单位 / 机关.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unit {
    /// Stable id.
    pub id: String,
    /// Full name, used in titles (淄博市博山区财政局).
    pub full_name: String,
    /// Short name (博山区财政局).
    pub short_name: String,
    /// Region code.
    pub region: String,
    /// Administrative level.
    pub level: Level,
    /// Kind of office.
    pub kind: UnitKind,
    /// Tags that groups select on.
    pub tags: Vec<String>,
    /// 机关代字 the unit may issue under.
    pub prefixes: Vec<String>,
    /// Seal keys, current and past.
    pub keys: Vec<SealKey>,
}

/// How a group picks regions relative to the issuer's region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupScope {
    /// The issuer's own region.
    SameRegion,
    /// Regions directly below the issuer's region.
    ChildRegions,
    /// Every region below the issuer's region.
    Subtree,
}

/// 收文单位组: a named selector expanded at issue time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// Name as written, e.g. 各市财政局.
    pub name: String,
    /// Region scope relative to the issuer.
    pub scope: GroupScope,
    /// Only this level (`None`: any).
    pub level: Option<Level>,
    /// Only these kinds (empty: any).
    pub kinds: Vec<UnitKind>,
    /// Units must carry all these tags.
    pub tags: Vec<String>,
    /// Description for listings.
    pub description: String,
}

/// The whole registry in memory: small enough to hold, and every issue reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registry {
    /// Regions by code.
    pub regions: BTreeMap<String, Region>,
    /// Units by id.
    pub units: BTreeMap<String, Unit>,
    /// Groups by name.
    pub groups: BTreeMap<String, Group>,
    /// Auditor unit id → the regions whose subtrees it may read.
    pub auditors: BTreeMap<String, Vec<String>>,
}

impl Registry {
    /// Why something `unit` signed with `key_id` at `at` is suspect: the key was revoked at or before `at`.
    pub fn suspect_key(&self, unit: &str, key_id: &str, at: DateTime<Utc>) -> Option<String> {
        let unit = self.units.get(unit)?;
        let key = unit.keys.iter().find(|k| k.key_id == key_id)?;
        let revoked = key.revoked_at?;
        (revoked <= at)
            .then(|| format!("signed by {} with key {} after its revocation at {revoked}", unit.full_name, key.key_id))
    }
}

/// A recipient as written: a group or a unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecipientSpec {
    /// A group name.
    Group(String),
    /// A unit id.
    Unit(String),
}

/// Whether a recipient is asked to act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// 主送.
    Main,
    /// 抄送.
    Cc,
}

/// The concrete recipients of a document after group expansion, in unit id order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expansion {
    /// Main recipients.
    pub main: Vec<String>,
    /// Cc recipients (never also main).
    pub cc: Vec<String>,
}

/// 文种.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Genre {
    Resolution,
    Decision,
    Order,
    Communique,
    Announcement,
    PublicNotice,
    Opinion,
    Notice,
    Bulletin,
    Report,
    Request,
    Reply,
    Motion,
    Letter,
    Minutes,
}

/// 紧急程度.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Urgency {
    None,
    Urgent,
    ExtraUrgent,
    Flash,
    Priority,
}

/// 密级.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Classification {
    None,
    Secret,
    Confidential,
    TopSecret,
}

/// 信息公开选项.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Disclosure {
    Public,
    OnRequest,
    NotPublic,
}

/// An attachment as stored with a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// 1, 2, …
    pub ordinal: u32,
    /// Title in the attachment list.
    pub title: String,
    /// Media type.
    pub media_type: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256, lower-case hex.
    pub sha256: String,
    /// The forwarded document, when this attachment is one.
    pub document_id: Option<String>,
}

/// A per-recipient deadline as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientDeadline {
    /// Who it applies to.
    pub recipient: RecipientSpec,
    /// Due date (end of day, China Standard Time).
    pub due: NaiveDate,
}

/// An issued, immutable document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    /// Server-assigned id.
    pub id: String,
    /// 发文字号.
    pub number: DocNumber,
    /// 标题.
    pub title: String,
    /// 文种.
    pub genre: Genre,
    /// Issuing unit id.
    pub issuer: String,
    /// Issuer's full name at issue time.
    pub issuer_name: String,
    /// 签发人.
    pub signer: String,
    /// 主送 as written.
    pub main_written: Vec<RecipientSpec>,
    /// 抄送 as written.
    pub cc_written: Vec<RecipientSpec>,
    /// Recipients after expansion.
    pub expansion: Expansion,
    /// 正文.
    pub body: String,
    /// 附件.
    pub attachments: Vec<Attachment>,
    /// The document this one forwards.
    pub forwards: Option<String>,
    /// 成文日期.
    pub dated: NaiveDate,
    /// 印发机关.
    pub printed_by: String,
    /// 印发日期.
    pub printed_on: Option<NaiveDate>,
    /// Deadline for main recipients.
    pub deadline: Option<NaiveDate>,
    /// Per-recipient deadlines.
    pub recipient_deadlines: Vec<RecipientDeadline>,
    /// 紧急程度.
    pub urgency: Urgency,
    /// 密级.
    pub classification: Classification,
    /// 保密期限.
    pub classification_term: String,
    /// 份号.
    pub copy_number: String,
    /// 信息公开选项.
    pub disclosure: Disclosure,
    /// 联系人及电话.
    pub contact: String,
    /// 附注.
    pub note: String,
    /// When the server stored it.
    pub issued_at: DateTime<Utc>,
    /// Sequence number of the issue event.
    pub event_seq: u64,
    /// Set when the operator imported it rather than the issuer issuing it here.
    pub imported: Option<ImportSource>,
}

/// Where an imported document came from (the importer's record, signed by the operator).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportSource {
    /// SHA-256 of the source file, which is stored as a blob.
    pub source_sha256: String,
    /// The source file's name.
    pub source_name: String,
    /// Position in the file's forwarding chain, 0 = outermost.
    pub position: u32,
    /// The operator key that signed the import.
    pub operator_key_id: String,
    /// The source printed no 成文日期: `dated` is its 印发日期, not a date the document states.
    pub dated_from_printing: bool,
    /// Media type of the source file.
    pub source_media_type: String,
}

/// The few fields of a document that every delivery view shows, stored apart so that acting on one delivery of a
/// directive to 100,000 units does not read 100,000 recipient ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocHead {
    /// Document id.
    pub id: String,
    /// 发文字号 as printed.
    pub number: String,
    /// 标题.
    pub title: String,
    /// Issuing unit id.
    pub issuer: String,
}

impl From<&Document> for DocHead {
    fn from(d: &Document) -> DocHead {
        DocHead { id: d.id.clone(), number: d.number.to_string(), title: d.title.clone(), issuer: d.issuer.clone() }
    }
}

/// What a step in a delivery's history records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StepKind {
    Delivered,
    Acknowledged,
    Returned,
    HandlingStarted,
    Reported,
    Forwarded,
    Completed,
    Reminded,
}

/// One step in a delivery's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// Event sequence number.
    pub event_seq: u64,
    /// What happened.
    pub kind: StepKind,
    /// When the server recorded it.
    pub at: DateTime<Utc>,
    /// Who acted.
    pub actor: String,
    /// Free text (registration number, reason, note, report text, reminder message).
    pub text: String,
    /// Report attachments.
    pub attachments: Vec<String>,
    /// For a forward: the new document's id and number.
    pub forward: Option<(String, String)>,
    /// The key that signed the statement behind the step.
    pub key_id: String,
}

/// One document at one recipient: a projection of its steps, kept beside the events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The document.
    pub document_id: String,
    /// The recipient unit.
    pub recipient: String,
    /// 主送 / 抄送.
    pub role: Role,
    /// Current state (always equal to replaying `steps`).
    pub state: DeliveryState,
    /// Report-by date.
    pub deadline: Option<NaiveDate>,
    /// Every step, oldest first.
    pub steps: Vec<Step>,
}

impl Delivery {
    /// Reminders received.
    pub fn reminders(&self) -> u32 {
        let n = self.steps.iter().filter(|s| s.kind == StepKind::Reminded).count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// When the first step of this kind happened.
    pub fn first(&self, kind: StepKind) -> Option<DateTime<Utc>> {
        self.steps.iter().find(|s| s.kind == kind).map(|s| s.at)
    }
}

/// What an event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    RegistryChanged,
    Issued,
    Forwarded,
    Acknowledged,
    Returned,
    HandlingStarted,
    Reported,
    Completed,
    Reminded,
    /// The operator imported an existing document.
    Imported,
    /// A parent unit or the operator changed a unit's seal keys.
    KeysChanged,
}
