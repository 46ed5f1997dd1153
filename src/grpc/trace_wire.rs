//! A trace node's wire form (`TraceNode`), written straight from the domain's [`Node`]: no `pb::TraceNode` is
//! built, so a node costs no allocation on its way out (its strings are copied once, into the reply). One list of
//! fields serves both the length and the bytes, so the two cannot disagree; the field mapping is
//! `convert::trace_node`'s, and the tests compare what is written here with the generated code's bytes for it.
use chrono::{Datelike, NaiveDate};
use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};

use super::convert::{date, level, role, state, timestamp};
use crate::app::trace::Node;
use crate::domain::model::StepKind;
use crate::pb;

/// `TraceNode.children`.
pub(super) const CHILDREN: u32 = 22;

/// How a node is shown: with or without the document it was reached through, and its `parent` (0 for none).
#[derive(Debug, Clone, Copy)]
pub(super) struct Shown {
    pub with_via: bool,
    pub parent: u32,
}

/// Where [`fields`] puts each field: a length count or a buffer.
pub(super) trait Sink {
    fn bytes(&mut self, tag: u32, value: &[u8]);
    fn varint(&mut self, tag: u32, value: u64);
    fn message(&mut self, tag: u32, value: &impl Message);
}

/// Counts the encoded length.
#[derive(Default)]
pub(super) struct Len(pub usize);

impl Sink for Len {
    fn bytes(&mut self, tag: u32, value: &[u8]) {
        self.0 += key_len(tag) + encoded_len_varint(value.len() as u64) + value.len();
    }
    fn varint(&mut self, tag: u32, value: u64) {
        self.0 += key_len(tag) + encoded_len_varint(value);
    }
    fn message(&mut self, tag: u32, value: &impl Message) {
        self.0 += prost::encoding::message::encoded_len(tag, value);
    }
}

impl Sink for Vec<u8> {
    fn bytes(&mut self, tag: u32, value: &[u8]) {
        encode_key(tag, WireType::LengthDelimited, self);
        encode_varint(value.len() as u64, self);
        self.extend_from_slice(value);
    }
    fn varint(&mut self, tag: u32, value: u64) {
        encode_key(tag, WireType::Varint, self);
        encode_varint(value, self);
    }
    fn message(&mut self, tag: u32, value: &impl Message) {
        prost::encoding::message::encode(tag, value, self);
    }
}

/// Every field of the node but `children`, in tag order, as the generated code writes them when `children` is
/// empty (a streamed node).
pub(super) fn node_fields(n: &Node, shown: Shown, out: &mut impl Sink) {
    fields_before_children(n, shown, out);
    fields_after_children(n, shown, out);
}

/// Fields 1 to 21, each left out where the generated code leaves it out (proto3 defaults) and kept where it keeps
/// it (repeated elements, a set message).
fn fields_before_children(n: &Node, shown: Shown, out: &mut impl Sink) {
    string(out, 1, &n.unit_id);
    string(out, 2, &n.unit_name);
    string(out, 3, &n.region);
    number(out, 4, n.level.map(|l| level(l) as i32 as u64).unwrap_or(0));
    number(out, 5, u64::from(n.depth));
    if shown.with_via {
        string(out, 6, &n.via_document_id);
        string(out, 7, &n.via_document_number);
    }
    let role = if n.on_record { role(n.delivery.role) } else { pb::RecipientRole::Unspecified };
    number(out, 8, role as i32 as u64);
    number(out, 9, state(n.delivery.state) as i32 as u64);
    if let Some(deadline) = n.delivery.deadline {
        day(out, 10, deadline);
    }
    number(out, 11, u64::from(n.overdue));
    number(out, 12, u64::from(n.delivery.reminders()));
    let times = [
        (13, StepKind::Delivered),
        (14, StepKind::Acknowledged),
        (15, StepKind::HandlingStarted),
        (16, StepKind::Reported),
        (17, StepKind::Forwarded),
        (18, StepKind::Completed),
        (19, StepKind::Returned),
    ];
    for (tag, kind) in times {
        if let Some(at) = n.at(kind) {
            out.message(tag, &timestamp(at));
        }
    }
    for forward in &n.forwarded_as {
        out.bytes(20, forward.as_bytes());
    }
    out.message(21, &pb::TraceCounts::from(n.counts));
}

/// Fields 23 to 25.
fn fields_after_children(n: &Node, shown: Shown, out: &mut impl Sink) {
    for flag in &n.flags {
        out.bytes(23, flag.as_bytes());
    }
    number(out, 24, u64::from(n.collapsed));
    number(out, 25, u64::from(shown.parent));
}

/// A date as `convert::date` writes it, "YYYY-MM-DD", without allocating for years of four digits.
fn day(out: &mut impl Sink, tag: u32, d: NaiveDate) {
    let (y, m, dd) = (d.year(), d.month(), d.day());
    match u32::try_from(y) {
        Ok(y) if y <= 9999 => {
            let digit = |v: u32| b'0' + (v % 10) as u8;
            let text = [
                digit(y / 1000),
                digit(y / 100),
                digit(y / 10),
                digit(y),
                b'-',
                digit(m / 10),
                digit(m),
                b'-',
                digit(dd / 10),
                digit(dd),
            ];
            out.bytes(tag, &text);
        }
        _ => out.bytes(tag, date(Some(d)).as_bytes()),
    }
}

fn string(out: &mut impl Sink, tag: u32, value: &str) {
    if !value.is_empty() {
        out.bytes(tag, value.as_bytes());
    }
}

fn number(out: &mut impl Sink, tag: u32, value: u64) {
    if value != 0 {
        out.varint(tag, value);
    }
}

/// `node` and every node under it, each shown with its via document, as the message that one `TraceNode` field
/// holds (no key or length of its own).
pub(super) struct Nested {
    /// The encoded length of each node, parents before children: the order [`Nested::write`] takes them in.
    sizes: Vec<usize>,
}

impl Nested {
    const SHOWN: Shown = Shown { with_via: true, parent: 0 };

    /// Measures `node`'s subtree; [`Nested::len`] is then its length.
    pub(super) fn measure(node: &Node) -> Nested {
        let mut sizes = Vec::new();
        Self::sizes_of(node, &mut sizes);
        Nested { sizes }
    }

    pub(super) fn len(&self) -> usize {
        self.sizes.first().copied().unwrap_or_default()
    }

    fn sizes_of(node: &Node, sizes: &mut Vec<usize>) -> usize {
        let at = sizes.len();
        sizes.push(0);
        let mut len = Len::default();
        node_fields(node, Self::SHOWN, &mut len);
        let mut len = len.0;
        for child in &node.children {
            let n = Self::sizes_of(child, sizes);
            len += key_len(CHILDREN) + encoded_len_varint(n as u64) + n;
        }
        sizes[at] = len;
        len
    }

    /// Writes the node measured, its fields in tag order, dropping each node once written.
    pub(super) fn write(self, node: Node, buf: &mut Vec<u8>) {
        let mut sizes = self.sizes.into_iter().skip(1);
        Self::write_node(node, &mut sizes, buf);
        debug_assert!(sizes.next().is_none(), "every node measured was written");
    }

    fn write_node(mut node: Node, sizes: &mut impl Iterator<Item = usize>, buf: &mut Vec<u8>) {
        fields_before_children(&node, Self::SHOWN, buf);
        for child in std::mem::take(&mut node.children) {
            encode_key(CHILDREN, WireType::LengthDelimited, buf);
            encode_varint(sizes.next().unwrap_or_default() as u64, buf);
            Self::write_node(child, sizes, buf);
        }
        fields_after_children(&node, Self::SHOWN, buf);
    }
}
