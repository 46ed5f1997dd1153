//! What client commands print: plain structs that serialise to JSON (`--json`) and render as readable text.
use std::fmt::Write;

use chrono::{DateTime, FixedOffset};
use serde::Serialize;

use super::draft::{CLASSIFICATIONS, DISCLOSURES, GENRES, URGENCIES, name_of};
use crate::pb;

/// A timestamp in China Standard Time, where the documents live, marked as such for readers elsewhere:
/// `2022-12-20 10:31 +08:00`.
pub fn time(t: &Option<prost_types::Timestamp>) -> String {
    let Some(t) = t else { return String::new() };
    let (Some(dt), Some(cst)) =
        (DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0)), FixedOffset::east_opt(8 * 3600))
    else {
        return String::new();
    };
    dt.with_timezone(&cst).format("%Y-%m-%d %H:%M %:z").to_string()
}

pub fn state_name(s: i32) -> &'static str {
    match pb::DeliveryState::try_from(s) {
        Ok(pb::DeliveryState::Pending) => "待签收 pending",
        Ok(pb::DeliveryState::Acknowledged) => "已签收 acknowledged",
        Ok(pb::DeliveryState::Handling) => "办理中 handling",
        Ok(pb::DeliveryState::Reported) => "已报送 reported",
        Ok(pb::DeliveryState::Forwarded) => "已转发 forwarded",
        Ok(pb::DeliveryState::Completed) => "已办结 completed",
        Ok(pb::DeliveryState::Returned) => "已退回 returned",
        _ => "unknown",
    }
}

fn step_name(k: i32) -> &'static str {
    match pb::EventKind::try_from(k) {
        Ok(pb::EventKind::Delivered) => "送达 delivered",
        Ok(pb::EventKind::Acknowledged) => "签收 acknowledged",
        Ok(pb::EventKind::Returned) => "退回 returned",
        Ok(pb::EventKind::HandlingStarted) => "承办 handling",
        Ok(pb::EventKind::Reported) => "报送 reported",
        Ok(pb::EventKind::Forwarded) => "转发 forwarded",
        Ok(pb::EventKind::Completed) => "办结 completed",
        Ok(pb::EventKind::Reminded) => "催办 reminded",
        _ => "unknown",
    }
}

fn role_name(r: i32) -> &'static str {
    if r == pb::RecipientRole::Cc as i32 { "抄送" } else { "主送" }
}

/// A trace node's role: also a unit that forwarded the document without a delivery of it on record.
fn node_role_name(r: i32) -> &'static str {
    if r == pb::RecipientRole::Unspecified as i32 { "未登记收文" } else { role_name(r) }
}

fn recipient_text(r: &pb::Recipient) -> String {
    match &r.target {
        Some(pb::recipient::Target::Group(g)) => g.clone(),
        Some(pb::recipient::Target::UnitId(u)) => format!("unit:{u}"),
        None => String::new(),
    }
}

#[derive(Serialize)]
pub struct AttachmentOut {
    pub ordinal: u32,
    pub title: String,
    pub media_type: String,
    pub size: u64,
    pub sha256: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub document_id: String,
}

#[derive(Serialize)]
pub struct DeadlineOut {
    pub recipient: String,
    pub due: String,
}

/// Where an imported document came from.
#[derive(Serialize)]
pub struct ImportedOut {
    pub source_name: String,
    pub source_sha256: String,
    pub source_media_type: String,
    pub position: u32,
    pub operator_key_id: String,
    /// The source printed no 成文日期; `dated` is its 印发日期.
    pub dated_from_printing: bool,
}

#[derive(Serialize)]
pub struct DocumentOut {
    pub id: String,
    pub number: String,
    pub title: String,
    pub genre: String,
    pub issuer_unit_id: String,
    pub issuer_name: String,
    pub signer: String,
    pub urgency: String,
    pub classification: String,
    pub classification_term: String,
    pub copy_number: String,
    pub main_recipients: Vec<String>,
    pub cc_recipients: Vec<String>,
    pub main_units: Vec<String>,
    pub cc_units: Vec<String>,
    pub dated: String,
    pub printed_by: String,
    pub printed_on: String,
    pub deadline: String,
    pub recipient_deadlines: Vec<DeadlineOut>,
    pub disclosure: String,
    pub contact: String,
    pub note: String,
    pub forwards_document_id: String,
    /// Filled in by the client, which looks the forwarded document up.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub forwards_document_number: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub forwards_document_title: String,
    pub attachments: Vec<AttachmentOut>,
    pub issued_at: String,
    pub event_seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub imported: Option<ImportedOut>,
    pub body: String,
}

impl From<pb::Document> for DocumentOut {
    fn from(d: pb::Document) -> Self {
        let draft = d.draft.unwrap_or_default();
        DocumentOut {
            id: d.id,
            number: d.number,
            title: draft.title,
            genre: name_of(GENRES, draft.genre).into(),
            issuer_unit_id: d.issuer_unit_id,
            issuer_name: d.issuer_name,
            signer: draft.signer,
            urgency: name_of(URGENCIES, draft.urgency).into(),
            classification: name_of(CLASSIFICATIONS, draft.classification).into(),
            classification_term: draft.classification_term,
            copy_number: draft.copy_number,
            main_recipients: draft.main_recipients.iter().map(recipient_text).collect(),
            cc_recipients: draft.cc_recipients.iter().map(recipient_text).collect(),
            main_units: d.main_unit_ids,
            cc_units: d.cc_unit_ids,
            dated: draft.dated,
            printed_by: draft.printed_by,
            printed_on: draft.printed_on,
            deadline: draft.deadline,
            recipient_deadlines: draft
                .recipient_deadlines
                .iter()
                .map(|r| DeadlineOut {
                    recipient: r.recipient.as_ref().map(recipient_text).unwrap_or_default(),
                    due: r.due.clone(),
                })
                .collect(),
            disclosure: name_of(DISCLOSURES, draft.disclosure).into(),
            contact: draft.contact,
            note: draft.note,
            forwards_document_id: d.forwards_document_id,
            forwards_document_number: String::new(),
            forwards_document_title: String::new(),
            attachments: d
                .attachments
                .into_iter()
                .map(|a| AttachmentOut {
                    ordinal: a.ordinal,
                    title: a.title,
                    media_type: a.media_type,
                    size: a.size,
                    sha256: a.sha256,
                    document_id: a.document_id,
                })
                .collect(),
            issued_at: time(&d.issued_at),
            event_seq: d.event_seq,
            imported: d.imported.map(|i| ImportedOut {
                source_name: i.source_name,
                source_sha256: i.source_sha256,
                source_media_type: i.source_media_type,
                position: i.position,
                operator_key_id: i.operator_key_id,
                dated_from_printing: i.dated_from_printing,
            }),
            body: draft.body,
        }
    }
}

impl DocumentOut {
    /// Text with unit names resolved by `name`.
    pub fn text(&self, name: &dyn Fn(&str) -> String) -> String {
        let mut s = String::new();
        let mut field = |label: &str, value: &str| {
            if !value.is_empty() {
                let _ = writeln!(s, "  {label}{value}");
            }
        };
        field("id          ", &self.id);
        field("文种        ", &self.genre);
        field("发文机关    ", &format!("{} ({})", self.issuer_name, self.issuer_unit_id));
        field("签发人      ", &self.signer);
        field("紧急程度    ", &self.urgency);
        let secret = if self.classification_term.is_empty() {
            self.classification.clone()
        } else {
            format!("{}★{}", self.classification, self.classification_term)
        };
        field("密级        ", &secret);
        field("份号        ", &self.copy_number);
        field("主送        ", &self.main_recipients.join("，"));
        field("抄送        ", &self.cc_recipients.join("，"));
        if self.imported.as_ref().is_some_and(|i| i.dated_from_printing) {
            field("成文日期    ", &format!("{} (not printed in the source: its 印发日期)", self.dated));
        } else {
            field("成文日期    ", &self.dated);
        }
        field("印发        ", format!("{} {}", self.printed_by, self.printed_on).trim());
        field("办理时限    ", &self.deadline);
        for d in &self.recipient_deadlines {
            field("办理时限    ", &format!("{} {}", d.recipient, d.due));
        }
        field("信息公开    ", &self.disclosure);
        field("联系人      ", &self.contact);
        field("附注        ", &self.note);
        if !self.forwards_document_id.is_empty() {
            let source = if self.forwards_document_number.is_empty() {
                self.forwards_document_id.clone()
            } else {
                format!(
                    "{}  {} (id {})",
                    self.forwards_document_number, self.forwards_document_title, self.forwards_document_id
                )
            };
            field("转发        ", &source);
        }
        if let Some(i) = &self.imported {
            let media =
                if i.source_media_type.is_empty() { String::new() } else { format!(", {}", i.source_media_type) };
            let from = format!(
                "{} (document {} of its chain{media}, SHA-256 {}), signed by {}",
                i.source_name, i.position, i.source_sha256, i.operator_key_id
            );
            field("导入自      ", &from);
        }
        field("issued at   ", &format!("{} (event #{})", self.issued_at, self.event_seq));
        let mut out = format!("{}  {}\n{s}", self.number, self.title);
        for a in &self.attachments {
            let _ = writeln!(out, "  附件{}  {}", a.ordinal, a.title);
            let _ = writeln!(out, "         {}, {} bytes, sha256 {}", a.media_type, a.size, a.sha256);
        }
        let _ = writeln!(out, "  recipients  {} main, {} cc", self.main_units.len(), self.cc_units.len());
        for u in &self.main_units {
            let _ = writeln!(out, "    主送 {}", name(u));
        }
        for u in &self.cc_units {
            let _ = writeln!(out, "    抄送 {}", name(u));
        }
        if !self.body.is_empty() {
            let _ = writeln!(out, "  正文");
            for line in self.body.lines() {
                let _ = writeln!(out, "    {line}");
            }
        }
        out
    }
}

#[derive(Serialize)]
pub struct StepOut {
    pub event_seq: u64,
    pub kind: String,
    pub at: String,
    pub actor: String,
    pub text: String,
    pub attachments: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub forward_number: String,
}

#[derive(Serialize)]
pub struct DeliveryOut {
    pub document_id: String,
    pub document_number: String,
    pub document_title: String,
    pub recipient_unit_id: String,
    pub recipient_name: String,
    pub role: String,
    pub state: String,
    pub deadline: String,
    pub overdue: bool,
    pub reminders: u32,
    pub history: Vec<StepOut>,
}

impl From<pb::Delivery> for DeliveryOut {
    fn from(d: pb::Delivery) -> Self {
        DeliveryOut {
            document_id: d.document_id,
            document_number: d.document_number,
            document_title: d.document_title,
            recipient_unit_id: d.recipient_unit_id,
            recipient_name: d.recipient_name,
            role: role_name(d.role).into(),
            state: state_name(d.state).into(),
            deadline: d.deadline,
            overdue: d.overdue,
            reminders: d.reminders,
            history: d
                .history
                .into_iter()
                .map(|s| StepOut {
                    event_seq: s.event_seq,
                    kind: step_name(s.kind).into(),
                    at: time(&s.at),
                    actor: s.actor_unit_id,
                    text: s.text,
                    attachments: s.attachment_sha256,
                    forward_number: s.forward_document_number,
                })
                .collect(),
        }
    }
}

impl DeliveryOut {
    /// One line for lists.
    pub fn line(&self) -> String {
        let late = if self.overdue { "  逾期 OVERDUE" } else { "" };
        let due = if self.deadline.is_empty() { String::new() } else { format!("  due {}", self.deadline) };
        format!(
            "{}  {}  [{}] {}{due}{late}\n    id {}",
            self.document_number, self.document_title, self.role, self.state, self.document_id
        )
    }

    /// The delivery with its history.
    pub fn text(&self) -> String {
        let mut s = format!("{} → {} ({})\n", self.document_number, self.recipient_name, self.recipient_unit_id);
        let _ = writeln!(s, "  {}", self.document_title);
        let _ = writeln!(s, "  {} · {}{}", self.role, self.state, if self.overdue { " · 逾期 OVERDUE" } else { "" });
        if !self.deadline.is_empty() {
            let _ = writeln!(s, "  deadline {}", self.deadline);
        }
        if self.reminders > 0 {
            let _ = writeln!(s, "  reminders {}", self.reminders);
        }
        for h in &self.history {
            let mut extra = h.text.clone();
            if !h.forward_number.is_empty() {
                extra = format!("as {}", h.forward_number);
            }
            for sha in &h.attachments {
                let _ = write!(extra, "  附件 {sha}");
            }
            let _ = writeln!(s, "  #{:<5} {}  {:<18} by {}  {}", h.event_seq, h.at, h.kind, h.actor, extra);
        }
        s
    }
}

#[derive(Serialize, Clone, Copy, Default)]
pub struct CountsOut {
    pub delivered: u32,
    pub acknowledged: u32,
    pub acted: u32,
    pub completed: u32,
    pub overdue: u32,
    pub returned: u32,
}

impl From<Option<pb::TraceCounts>> for CountsOut {
    fn from(c: Option<pb::TraceCounts>) -> Self {
        let c = c.unwrap_or_default();
        CountsOut {
            delivered: c.delivered,
            acknowledged: c.acknowledged,
            acted: c.acted,
            completed: c.completed,
            overdue: c.overdue,
            returned: c.returned,
        }
    }
}

impl CountsOut {
    fn text(&self) -> String {
        let mut s = format!(
            "{} delivered · {} acknowledged · {} acted · {} completed · {} overdue",
            self.delivered, self.acknowledged, self.acted, self.completed, self.overdue
        );
        if self.returned > 0 {
            let _ = write!(s, " · {} returned", self.returned);
        }
        s
    }
}

#[derive(Serialize)]
pub struct NodeOut {
    pub unit_id: String,
    pub unit_name: String,
    pub depth: u32,
    pub via: String,
    pub role: String,
    pub state: String,
    pub deadline: String,
    pub overdue: bool,
    pub reminders: u32,
    pub delivered_at: String,
    pub acknowledged_at: String,
    pub handling_at: String,
    pub reported_at: String,
    pub forwarded_at: String,
    pub completed_at: String,
    pub returned_at: String,
    pub forwarded_as: Vec<String>,
    pub counts: CountsOut,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<NodeOut>,
    /// Recipients of its forwards are counted but not listed (`gongwen trace --depth`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub collapsed: bool,
}

impl From<pb::TraceNode> for NodeOut {
    fn from(n: pb::TraceNode) -> Self {
        NodeOut {
            unit_id: n.unit_id,
            unit_name: n.unit_name,
            depth: n.depth,
            via: n.via_document_number,
            role: node_role_name(n.role).into(),
            state: state_name(n.state).into(),
            deadline: n.deadline,
            overdue: n.overdue,
            reminders: n.reminders,
            delivered_at: time(&n.delivered_at),
            acknowledged_at: time(&n.acknowledged_at),
            handling_at: time(&n.handling_at),
            reported_at: time(&n.reported_at),
            forwarded_at: time(&n.forwarded_at),
            completed_at: time(&n.completed_at),
            returned_at: time(&n.returned_at),
            forwarded_as: n.forwarded_as_numbers,
            counts: n.counts.into(),
            children: n.children.into_iter().map(Into::into).collect(),
            collapsed: n.collapsed,
        }
    }
}

impl NodeOut {
    fn latest_step(&self) -> String {
        [
            ("办结", &self.completed_at),
            ("转发", &self.forwarded_at),
            ("报送", &self.reported_at),
            ("承办", &self.handling_at),
            ("签收", &self.acknowledged_at),
            ("退回", &self.returned_at),
            ("送达", &self.delivered_at),
        ]
        .iter()
        .find(|(_, t)| !t.is_empty())
        .map(|(k, t)| format!("{k} {t}"))
        .unwrap_or_default()
    }

    /// The receipt time and the latest step: an auditor asks first when a unit signed for it, then what it did.
    fn steps(&self) -> String {
        let latest = self.latest_step();
        let acked = format!("签收 {}", self.acknowledged_at);
        if self.acknowledged_at.is_empty() || latest == acked { latest } else { format!("{acked} · {latest}") }
    }

    /// One line for flat lists.
    pub fn line(&self) -> String {
        let late = if self.overdue { "  逾期 OVERDUE" } else { "" };
        format!("L{} {}  {}  via {}  {}{late}", self.depth, self.unit_name, self.state, self.via, self.latest_step())
    }

    fn render(&self, prefix: &str, last: bool, out: &mut String) {
        let branch = if last { "└─ " } else { "├─ " };
        let fwd = if self.forwarded_as.is_empty() {
            String::new()
        } else {
            format!(" → {}", self.forwarded_as.join("、"))
        };
        let late = if self.overdue { "  逾期 OVERDUE" } else { "" };
        let role = if self.role == "主送" { String::new() } else { format!(" ({})", self.role) };
        let _ = write!(out, "{prefix}{branch}{}{role}  {}{fwd}  {}{late}", self.unit_name, self.state, self.steps());
        if !self.children.is_empty() || self.collapsed {
            let _ = write!(out, "  [{}]", self.counts.text());
        }
        if self.collapsed {
            out.push_str("  (deeper levels not listed)");
        }
        out.push('\n');
        let child_prefix = format!("{prefix}{}", if last { "   " } else { "│  " });
        for (i, c) in self.children.iter().enumerate() {
            c.render(&child_prefix, i + 1 == self.children.len(), out);
        }
    }
}

#[derive(Serialize)]
pub struct TraceOut {
    pub document_id: String,
    pub document_number: String,
    pub document_title: String,
    pub totals: CountsOut,
    pub nodes: Vec<NodeOut>,
}

impl From<pb::TraceReply> for TraceOut {
    fn from(t: pb::TraceReply) -> Self {
        TraceOut {
            document_id: t.document_id,
            document_number: t.document_number,
            document_title: t.document_title,
            totals: t.totals.into(),
            nodes: t.nodes.into_iter().map(Into::into).collect(),
        }
    }
}

impl TraceOut {
    /// The tree as text.
    pub fn text(&self) -> String {
        let mut s = format!("{}  {}\n", self.document_number, self.document_title);
        for (i, n) in self.nodes.iter().enumerate() {
            n.render("", i + 1 == self.nodes.len(), &mut s);
        }
        let _ = writeln!(s, "total: {}", self.totals.text());
        s
    }
}

#[derive(Serialize)]
pub struct UnitOut {
    pub id: String,
    pub full_name: String,
    pub short_name: String,
    pub region: String,
    pub level: String,
    pub kind: String,
    pub tags: Vec<String>,
    pub prefixes: Vec<String>,
    pub keys: Vec<String>,
}

impl From<pb::Unit> for UnitOut {
    fn from(u: pb::Unit) -> Self {
        UnitOut {
            level: pb::Level::try_from(u.level).map(|l| l.as_str_name().to_lowercase()).unwrap_or_default(),
            kind: pb::UnitKind::try_from(u.kind).map(|k| k.as_str_name().to_lowercase()).unwrap_or_default(),
            id: u.id,
            full_name: u.full_name,
            short_name: u.short_name,
            region: u.region_code,
            tags: u.tags,
            prefixes: u.number_prefixes,
            keys: u.seal_keys.into_iter().map(|k| k.key_id).collect(),
        }
    }
}

impl UnitOut {
    pub fn line(&self) -> String {
        let prefixes = if self.prefixes.is_empty() { String::new() } else { format!("  {}", self.prefixes.join(" ")) };
        format!(
            "{:<22} {}  [{} {}]{prefixes}",
            self.id,
            self.full_name,
            self.region,
            self.level.trim_start_matches("level_")
        )
    }
}

#[derive(Serialize)]
pub struct OverdueOut {
    pub document_number: String,
    pub unit_id: String,
    pub unit_name: String,
    pub deadline: String,
    pub days_late: u32,
    pub state: String,
    pub reminders: u32,
}

impl From<pb::OverdueItem> for OverdueOut {
    fn from(i: pb::OverdueItem) -> Self {
        OverdueOut {
            document_number: i.document_number,
            unit_id: i.unit_id,
            unit_name: i.unit_name,
            deadline: i.deadline,
            days_late: i.days_late,
            state: state_name(i.state).into(),
            reminders: i.reminders,
        }
    }
}

#[derive(Serialize)]
pub struct MatrixRowOut {
    pub key: String,
    pub label: String,
    pub delivered: u32,
    pub acknowledged: u32,
    pub forwarded: u32,
    pub reported: u32,
    pub completed: u32,
    pub returned: u32,
    pub overdue: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub units: Option<serde_json::Value>,
}

impl From<pb::MatrixRow> for MatrixRowOut {
    fn from(r: pb::MatrixRow) -> Self {
        MatrixRowOut {
            units: r.units.map(|u| {
                serde_json::json!({
                    "delivered": u.delivered, "acknowledged": u.acknowledged, "forwarded": u.forwarded,
                    "reported": u.reported, "completed": u.completed, "returned": u.returned, "overdue": u.overdue,
                })
            }),
            key: r.key,
            label: r.label,
            delivered: r.delivered,
            acknowledged: r.acknowledged,
            forwarded: r.forwarded,
            reported: r.reported,
            completed: r.completed,
            returned: r.returned,
            overdue: r.overdue,
        }
    }
}

#[derive(Serialize)]
pub struct MatrixOut {
    pub document_number: String,
    pub by_level: Vec<MatrixRowOut>,
    pub by_region: Vec<MatrixRowOut>,
    pub total: Option<MatrixRowOut>,
}

impl From<pb::StatusMatrixReply> for MatrixOut {
    fn from(m: pb::StatusMatrixReply) -> Self {
        MatrixOut {
            document_number: m.document_number,
            by_level: m.by_level.into_iter().map(Into::into).collect(),
            by_region: m.by_region.into_iter().map(Into::into).collect(),
            total: m.total.map(Into::into),
        }
    }
}

impl MatrixOut {
    /// The matrix as a text table.
    pub fn text(&self) -> String {
        let mut s = format!(
            "{}\n{:<16} {:>5} {:>5} {:>5} {:>5} {:>5} {:>5} {:>5}\n",
            self.document_number, "", "送达", "签收", "转发", "报送", "办结", "退回", "逾期"
        );
        let mut line = |r: &MatrixRowOut| {
            let _ = writeln!(
                s,
                "{:<16} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7}",
                r.label, r.delivered, r.acknowledged, r.forwarded, r.reported, r.completed, r.returned, r.overdue
            );
            if let Some(u) = &r.units {
                for (field, label) in [
                    ("delivered", "送达"),
                    ("acknowledged", "签收"),
                    ("forwarded", "转发"),
                    ("reported", "报送"),
                    ("completed", "办结"),
                    ("returned", "退回"),
                    ("overdue", "逾期"),
                ] {
                    let ids: Vec<&str> =
                        u[field].as_array().into_iter().flatten().filter_map(serde_json::Value::as_str).collect();
                    if !ids.is_empty() {
                        let _ = writeln!(s, "    {label}: {}", ids.join(", "));
                    }
                }
            }
        };
        for r in &self.by_level {
            line(r);
        }
        for r in &self.by_region {
            line(r);
        }
        if let Some(t) = &self.total {
            line(t);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shown_in_china_standard_time_and_say_so() {
        let at = Some(prost_types::Timestamp { seconds: 1_671_503_460, nanos: 0 }); // 2022-12-20 02:31 UTC
        assert_eq!(time(&at), "2022-12-20 10:31 +08:00");
        assert_eq!(time(&None), "");
    }

    #[test]
    fn a_matrix_lists_the_units_behind_its_counts_by_name_of_count() {
        let row = pb::MatrixRow {
            label: "区县".into(),
            delivered: 2,
            acknowledged: 1,
            units: Some(pb::MatrixUnits {
                delivered: vec!["370303.czj".into(), "370304.czj".into()],
                acknowledged: vec!["370304.czj".into()],
                ..Default::default()
            }),
            ..Default::default()
        };
        let out = MatrixOut::from(pb::StatusMatrixReply { by_level: vec![row], ..Default::default() });
        let text = out.text();
        assert!(text.contains("    送达: 370303.czj, 370304.czj\n"), "{text}");
        assert!(text.contains("    签收: 370304.czj\n"), "{text}");
        assert!(!text.contains('{') && !text.contains("转发:"), "no JSON, no empty lists: {text}");
    }
}
