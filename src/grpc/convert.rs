//! Domain → wire conversions for replies.
use chrono::{DateTime, NaiveDate, Utc};

use crate::app::deliveries::DeliveryView;
use crate::app::trace::{Chunk, Counts, FlatNode, Node, Tree};
use crate::domain::model::{
    Attachment, Classification, Disclosure, Document, Genre, Group, GroupScope, Level, RecipientSpec, Region, Role,
    SealKey, Step, StepKind, Unit, UnitKind, Urgency,
};
use crate::domain::state::DeliveryState;
use crate::pb;

pub fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: t.timestamp(), nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0) }
}

pub(super) fn date(d: Option<NaiveDate>) -> String {
    d.map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default()
}

pub fn level(l: Level) -> pb::Level {
    match l {
        Level::Province => pb::Level::Province,
        Level::City => pb::Level::City,
        Level::County => pb::Level::County,
        Level::Township => pb::Level::Township,
    }
}

pub fn kind(k: UnitKind) -> pb::UnitKind {
    match k {
        UnitKind::FinanceBureau => pb::UnitKind::FinanceBureau,
        UnitKind::Department => pb::UnitKind::Department,
        UnitKind::Institution => pb::UnitKind::Institution,
        UnitKind::FinanceOffice => pb::UnitKind::FinanceOffice,
        UnitKind::AuditBureau => pb::UnitKind::AuditBureau,
        UnitKind::Office => pb::UnitKind::Office,
    }
}

pub fn state(s: DeliveryState) -> pb::DeliveryState {
    match s {
        DeliveryState::Pending => pb::DeliveryState::Pending,
        DeliveryState::Acknowledged => pb::DeliveryState::Acknowledged,
        DeliveryState::Handling => pb::DeliveryState::Handling,
        DeliveryState::Reported => pb::DeliveryState::Reported,
        DeliveryState::Forwarded => pb::DeliveryState::Forwarded,
        DeliveryState::Completed => pb::DeliveryState::Completed,
        DeliveryState::Returned => pb::DeliveryState::Returned,
    }
}

/// Wire state → domain state; `None` for "unspecified" or unknown values.
pub fn state_from_wire(v: i32) -> Option<DeliveryState> {
    Some(match pb::DeliveryState::try_from(v).ok()? {
        pb::DeliveryState::Unspecified => return None,
        pb::DeliveryState::Pending => DeliveryState::Pending,
        pb::DeliveryState::Acknowledged => DeliveryState::Acknowledged,
        pb::DeliveryState::Handling => DeliveryState::Handling,
        pb::DeliveryState::Reported => DeliveryState::Reported,
        pb::DeliveryState::Forwarded => DeliveryState::Forwarded,
        pb::DeliveryState::Completed => DeliveryState::Completed,
        pb::DeliveryState::Returned => DeliveryState::Returned,
    })
}

pub(super) fn role(r: Role) -> pb::RecipientRole {
    match r {
        Role::Main => pb::RecipientRole::Main,
        Role::Cc => pb::RecipientRole::Cc,
    }
}

pub fn step_kind(k: StepKind) -> pb::EventKind {
    match k {
        StepKind::Delivered => pb::EventKind::Delivered,
        StepKind::Acknowledged => pb::EventKind::Acknowledged,
        StepKind::Returned => pb::EventKind::Returned,
        StepKind::HandlingStarted => pb::EventKind::HandlingStarted,
        StepKind::Reported => pb::EventKind::Reported,
        StepKind::Forwarded => pb::EventKind::Forwarded,
        StepKind::Completed => pb::EventKind::Completed,
        StepKind::Reminded => pb::EventKind::Reminded,
    }
}

impl From<Region> for pb::Region {
    fn from(r: Region) -> Self {
        pb::Region {
            code: r.code,
            name: r.name,
            parent_code: r.parent.unwrap_or_default(),
            level: level(r.level) as i32,
        }
    }
}

impl From<SealKey> for pb::SealKey {
    fn from(k: SealKey) -> Self {
        pb::SealKey {
            key_id: k.key_id,
            algorithm: k.algorithm.name().into(),
            public_key: k.public_key,
            valid_from: k.valid_from.map(timestamp),
            revoked_at: k.revoked_at.map(timestamp),
        }
    }
}

impl From<Unit> for pb::Unit {
    fn from(u: Unit) -> Self {
        pb::Unit {
            id: u.id,
            full_name: u.full_name,
            short_name: u.short_name,
            region_code: u.region,
            level: level(u.level) as i32,
            kind: kind(u.kind) as i32,
            tags: u.tags,
            number_prefixes: u.prefixes,
            seal_keys: u.keys.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<Group> for pb::RecipientGroup {
    fn from(g: Group) -> Self {
        let scope = match g.scope {
            GroupScope::SameRegion => pb::GroupScope::SameRegion,
            GroupScope::ChildRegions => pb::GroupScope::ChildRegions,
            GroupScope::Subtree => pb::GroupScope::Subtree,
        };
        pb::RecipientGroup {
            name: g.name,
            scope: scope as i32,
            level: g.level.map(|l| level(l) as i32).unwrap_or(0),
            kinds: g.kinds.into_iter().map(|k| kind(k) as i32).collect(),
            tags: g.tags,
            description: g.description,
        }
    }
}

fn recipient(r: &RecipientSpec) -> pb::Recipient {
    let target = match r {
        RecipientSpec::Group(g) => pb::recipient::Target::Group(g.clone()),
        RecipientSpec::Unit(u) => pb::recipient::Target::UnitId(u.clone()),
    };
    pb::Recipient { target: Some(target) }
}

fn genre(g: Genre) -> pb::Genre {
    use pb::Genre as G;
    match g {
        Genre::Resolution => G::Resolution,
        Genre::Decision => G::Decision,
        Genre::Order => G::Order,
        Genre::Communique => G::Communique,
        Genre::Announcement => G::Announcement,
        Genre::PublicNotice => G::PublicNotice,
        Genre::Opinion => G::Opinion,
        Genre::Notice => G::Notice,
        Genre::Bulletin => G::Bulletin,
        Genre::Report => G::Report,
        Genre::Request => G::Request,
        Genre::Reply => G::Reply,
        Genre::Motion => G::Motion,
        Genre::Letter => G::Letter,
        Genre::Minutes => G::Minutes,
    }
}

impl From<&Attachment> for pb::Attachment {
    fn from(a: &Attachment) -> Self {
        pb::Attachment {
            ordinal: a.ordinal,
            title: a.title.clone(),
            media_type: a.media_type.clone(),
            size: a.size,
            sha256: a.sha256.clone(),
            document_id: a.document_id.clone().unwrap_or_default(),
        }
    }
}

impl From<Document> for pb::Document {
    fn from(d: Document) -> Self {
        let urgency = match d.urgency {
            Urgency::None => pb::Urgency::None,
            Urgency::Urgent => pb::Urgency::Urgent,
            Urgency::ExtraUrgent => pb::Urgency::ExtraUrgent,
            Urgency::Flash => pb::Urgency::Flash,
            Urgency::Priority => pb::Urgency::Priority,
        };
        let classification = match d.classification {
            Classification::None => pb::Classification::None,
            Classification::Secret => pb::Classification::Secret,
            Classification::Confidential => pb::Classification::Confidential,
            Classification::TopSecret => pb::Classification::TopSecret,
        };
        let disclosure = match d.disclosure {
            Disclosure::Public => pb::Disclosure::Public,
            Disclosure::OnRequest => pb::Disclosure::OnRequest,
            Disclosure::NotPublic => pb::Disclosure::NotPublic,
        };
        let draft = pb::DocumentDraft {
            number_prefix: d.number.prefix.clone(),
            number_year: d.number.year,
            title: d.title.clone(),
            genre: genre(d.genre) as i32,
            signer: d.signer.clone(),
            main_recipients: d.main_written.iter().map(recipient).collect(),
            cc_recipients: d.cc_written.iter().map(recipient).collect(),
            body: d.body.clone(),
            attachments: d
                .attachments
                .iter()
                .map(|a| pb::AttachmentRef {
                    sha256: a.sha256.clone(),
                    title: a.title.clone(),
                    media_type: a.media_type.clone(),
                })
                .collect(),
            dated: date(Some(d.dated)),
            printed_by: d.printed_by.clone(),
            printed_on: date(d.printed_on),
            deadline: date(d.deadline),
            recipient_deadlines: d
                .recipient_deadlines
                .iter()
                .map(|rd| pb::RecipientDeadline { recipient: Some(recipient(&rd.recipient)), due: date(Some(rd.due)) })
                .collect(),
            urgency: urgency as i32,
            classification: classification as i32,
            classification_term: d.classification_term.clone(),
            copy_number: d.copy_number.clone(),
            disclosure: disclosure as i32,
            contact: d.contact.clone(),
            note: d.note.clone(),
        };
        pb::Document {
            id: d.id,
            number: d.number.to_string(),
            number_serial: d.number.serial,
            issuer_unit_id: d.issuer,
            issuer_name: d.issuer_name,
            draft: Some(draft),
            main_unit_ids: d.expansion.main,
            cc_unit_ids: d.expansion.cc,
            attachments: d.attachments.iter().map(Into::into).collect(),
            forwards_document_id: d.forwards.unwrap_or_default(),
            issued_at: Some(timestamp(d.issued_at)),
            event_seq: d.event_seq,
            imported: d.imported.map(|i| pb::ImportSource {
                source_sha256: i.source_sha256,
                source_name: i.source_name,
                position: i.position,
                operator_key_id: i.operator_key_id,
                dated_from_printing: i.dated_from_printing,
                source_media_type: i.source_media_type,
            }),
        }
    }
}

fn step(s: Step, flag: String) -> pb::DeliveryStep {
    let (fid, fnum) = s.forward.unwrap_or_default();
    pb::DeliveryStep {
        key_id: s.key_id,
        flag,
        event_seq: s.event_seq,
        kind: step_kind(s.kind) as i32,
        at: Some(timestamp(s.at)),
        actor_unit_id: s.actor,
        text: s.text,
        attachment_sha256: s.attachments,
        forward_document_id: fid,
        forward_document_number: fnum,
    }
}

impl From<DeliveryView> for pb::Delivery {
    fn from(v: DeliveryView) -> Self {
        let reminders = v.delivery.reminders();
        let d = v.delivery;
        pb::Delivery {
            document_id: d.document_id,
            document_number: v.document_number,
            document_title: v.document_title,
            issuer_unit_id: v.issuer,
            recipient_unit_id: d.recipient,
            recipient_name: v.recipient_name,
            role: role(d.role) as i32,
            state: state(d.state) as i32,
            deadline: date(d.deadline),
            overdue: v.overdue,
            reminders,
            history: d
                .steps
                .into_iter()
                .zip(v.step_flags.into_iter().chain(std::iter::repeat(String::new())))
                .map(|(s, f)| step(s, f))
                .collect(),
        }
    }
}

impl From<Counts> for pb::TraceCounts {
    fn from(c: Counts) -> Self {
        pb::TraceCounts {
            delivered: c.delivered,
            acknowledged: c.acknowledged,
            acted: c.acted,
            completed: c.completed,
            overdue: c.overdue,
            returned: c.returned,
        }
    }
}

impl From<Node> for pb::TraceNode {
    fn from(n: Node) -> Self {
        trace_node(n, true)
    }
}

/// A trace node on the wire; `with_via` false leaves out the document it was reached through (a streamed trace
/// does when it is the same as the node's before it).
fn trace_node(n: Node, with_via: bool) -> pb::TraceNode {
    let via = |s: &str| if with_via { s.to_owned() } else { String::new() };
    let at = |k: StepKind| n.at(k).map(timestamp);
    pb::TraceNode {
        delivered_at: at(StepKind::Delivered),
        acknowledged_at: at(StepKind::Acknowledged),
        handling_at: at(StepKind::HandlingStarted),
        reported_at: at(StepKind::Reported),
        forwarded_at: at(StepKind::Forwarded),
        completed_at: at(StepKind::Completed),
        returned_at: at(StepKind::Returned),
        reminders: n.delivery.reminders(),
        unit_id: n.unit_id,
        unit_name: n.unit_name,
        region_code: n.region,
        level: n.level.map(|l| level(l) as i32).unwrap_or(0),
        depth: n.depth,
        via_document_id: via(&n.via_document_id),
        via_document_number: via(&n.via_document_number),
        role: if n.on_record { role(n.delivery.role) as i32 } else { pb::RecipientRole::Unspecified as i32 },
        state: state(n.delivery.state) as i32,
        deadline: date(n.delivery.deadline),
        overdue: n.overdue,
        forwarded_as_numbers: n.forwarded_as,
        flags: n.flags,
        collapsed: n.collapsed,
        parent: 0,
        counts: Some(n.counts.into()),
        children: n.children.into_iter().map(Into::into).collect(),
    }
}

impl From<Tree> for pb::TraceReply {
    fn from(t: Tree) -> Self {
        pb::TraceReply { nodes: t.nodes.into_iter().map(Into::into).collect(), ..reply_head(t.document, t.totals) }
    }
}

/// A trace reply without its nodes.
pub(super) fn reply_head(document: Document, totals: Counts) -> pb::TraceReply {
    pb::TraceReply {
        document_id: document.id,
        document_number: document.number.to_string(),
        document_title: document.title,
        nodes: vec![],
        totals: Some(totals.into()),
    }
}

impl From<FlatNode> for pb::TraceNode {
    fn from(f: FlatNode) -> Self {
        pb::TraceNode { parent: f.parent, ..trace_node(f.node, !f.same_via) }
    }
}

impl From<Chunk> for pb::TraceChunk {
    fn from(c: Chunk) -> Self {
        let (document_id, document_number, document_title) =
            c.document.map(|d| (d.id, d.number, d.title)).unwrap_or_default();
        pb::TraceChunk {
            document_id,
            document_number,
            document_title,
            nodes: c.nodes.into_iter().map(Into::into).collect(),
            totals: c.totals.map(Into::into),
        }
    }
}
