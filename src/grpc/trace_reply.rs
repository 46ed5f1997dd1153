//! Trace replies put into their wire form where the tree is walked.
//!
//! A trace over a 200,000-delivery tree is some 27 MB of nodes. Converted to generated messages and encoded after
//! the walk on the one task that sends it, it took about as long as the walk itself: prost computes a nested
//! message's length again at every level above it (a leaf four levels down was measured five times), and every
//! node's strings were copied into a `pb::TraceNode` first. Here each node is written straight from the domain
//! (`trace_wire`), its length computed once: for `Trace`, each subtree under the root's recipients on the walk
//! thread that grew it; for `StreamTrace`, each chunk on the thread that cuts the stream. The bytes decode to
//! exactly what the generated code sends for the same tree (tested below and in `tests/integration/chain.rs`); the build
//! generates the servers with [`Encoded`] as these two RPCs' replies (see `build.rs`), clients with `TraceReply`
//! and `TraceChunk`.
use prost::Message;
use prost::bytes::{Buf, BufMut};
use prost::encoding::{DecodeContext, WireType, encode_key, encode_varint, encoded_len_varint, key_len};

use super::trace_wire::{Len, Nested, Shown, node_fields};
use crate::app::trace::{Chunk, Node, Tree};
use crate::pb;

/// `TraceReply.nodes` and `TraceChunk.nodes`.
const NODES: u32 = 4;
/// `TraceReply.totals` and `TraceChunk.totals`.
const TOTALS: u32 = 5;

/// A message in wire form, in parts sent one after another.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Encoded {
    parts: Vec<Vec<u8>>,
    len: usize,
}

impl Encoded {
    fn new(parts: Vec<Vec<u8>>) -> Self {
        Encoded { len: parts.iter().map(Vec::len).sum(), parts }
    }
}

impl Message for Encoded {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        for part in &self.parts {
            buf.put_slice(part);
        }
    }

    fn merge_field(
        &mut self,
        _: u32,
        _: WireType,
        _: &mut impl Buf,
        _: DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        // Only the server holds this type, and only to send it; a client decodes the generated message.
        #[allow(deprecated)]
        Err(prost::DecodeError::new("an encoded trace is sent, never decoded; decode a TraceReply or TraceChunk"))
    }

    fn encoded_len(&self) -> usize {
        self.len
    }

    fn clear(&mut self) {
        *self = Encoded::default();
    }
}

/// One element of `TraceReply.nodes` in wire form, with its key and length: a node and every node under it.
#[derive(Debug)]
pub struct ReplyNode(Vec<u8>);

/// `node` and every node under it as one element of `TraceReply.nodes`.
pub fn reply_node(node: Node) -> ReplyNode {
    let nested = Nested::measure(&node);
    let len = nested.len();
    let total = key_len(NODES) + encoded_len_varint(len as u64) + len;
    let mut buf = Vec::with_capacity(total);
    encode_key(NODES, WireType::LengthDelimited, &mut buf);
    encode_varint(len as u64, &mut buf);
    nested.write(node, &mut buf);
    debug_assert_eq!(buf.len(), total, "the node's bytes are the length measured");
    ReplyNode(buf)
}

impl From<Tree<ReplyNode>> for Encoded {
    /// A `TraceReply`.
    fn from(t: Tree<ReplyNode>) -> Self {
        reply(super::convert::reply_head(t.document, t.totals), t.nodes)
    }
}

/// `head` (a reply without nodes) with `nodes`, the fields in the generated code's order: the document, the nodes,
/// the totals.
fn reply(mut head: pb::TraceReply, nodes: Vec<ReplyNode>) -> Encoded {
    let mut tail = vec![];
    if let Some(totals) = head.totals.take() {
        prost::encoding::message::encode(TOTALS, &totals, &mut tail);
    }
    let nodes = nodes.into_iter().map(|n| n.0);
    Encoded::new(std::iter::once(head.encode_to_vec()).chain(nodes).chain([tail]).collect())
}

impl From<Chunk> for Encoded {
    /// A `TraceChunk`, its fields in the generated code's order.
    fn from(c: Chunk) -> Self {
        let head = c.document.map(|d| pb::TraceChunk {
            document_id: d.id,
            document_number: d.number,
            document_title: d.title,
            ..Default::default()
        });
        let shown = |f: &crate::app::trace::FlatNode| Shown { with_via: !f.same_via, parent: f.parent };
        let sizes: Vec<usize> = c
            .nodes
            .iter()
            .map(|f| {
                let mut len = Len::default();
                node_fields(&f.node, shown(f), &mut len);
                len.0
            })
            .collect();
        let totals = c.totals.map(pb::TraceCounts::from);
        let len = head.as_ref().map_or(0, Message::encoded_len)
            + sizes.iter().map(|n| key_len(NODES) + encoded_len_varint(*n as u64) + n).sum::<usize>()
            + totals.as_ref().map_or(0, |t| prost::encoding::message::encoded_len(TOTALS, t));
        let mut buf = Vec::with_capacity(len);
        if let Some(head) = head {
            head.encode_raw(&mut buf);
        }
        for (f, size) in c.nodes.iter().zip(sizes) {
            encode_key(NODES, WireType::LengthDelimited, &mut buf);
            encode_varint(size as u64, &mut buf);
            node_fields(&f.node, shown(f), &mut buf);
        }
        if let Some(totals) = totals {
            prost::encoding::message::encode(TOTALS, &totals, &mut buf);
        }
        debug_assert_eq!(buf.len(), len, "the chunk's bytes are the length measured");
        Encoded::new(vec![buf])
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::{DateTime, NaiveDate, Utc};

    use super::*;
    use crate::app::trace::{Counts, FlatNode, Progress};
    use crate::domain::model::{DocHead, Level, Role, StepKind};
    use crate::domain::state::DeliveryState;

    fn at(seconds: i64, nanos: u32) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, nanos).unwrap_or_default()
    }

    /// A node with every field set (`rich`) or almost none.
    fn node(id: &str, depth: u32, rich: bool) -> Node {
        let steps = [
            (StepKind::Delivered, at(1_660_000_000, 5)),
            (StepKind::Reminded, at(1_660_000_050, 0)),
            (StepKind::Acknowledged, at(1_660_000_100, 0)),
            (StepKind::Reminded, at(1_660_000_150, 0)),
            (StepKind::HandlingStarted, at(1_660_000_200, 999_999_999)),
            (StepKind::Reported, at(1_660_000_300, 0)),
            (StepKind::Forwarded, at(1_660_000_400, 0)),
            (StepKind::Completed, at(1_660_000_500, 0)),
            (StepKind::Returned, at(1_660_000_600, 0)),
        ];
        let (state, deadline) = match rich {
            true => (DeliveryState::Completed, NaiveDate::from_ymd_opt(2022, 9, 30)),
            false => (DeliveryState::Pending, None),
        };
        Node {
            unit_id: id.into(),
            unit_name: if rich { format!("{id} 财政所") } else { String::new() },
            region: if rich { "370303001".into() } else { String::new() },
            level: rich.then_some(Level::Township),
            depth,
            via_document_id: Arc::from("doc-2"),
            via_document_number: Arc::from(if rich { "博财采〔2022〕19号" } else { "" }),
            delivery: Progress::from_steps(Role::Cc, state, deadline, if rich { &steps } else { &steps[..1] }),
            overdue: rich,
            forwarded_as: if rich { vec!["淄财采〔2022〕20号".into(), String::new()] } else { vec![] },
            counts: Counts { delivered: 3, acknowledged: u32::from(rich), ..Default::default() },
            children: vec![],
            flags: if rich { vec!["signed with a revoked key".into()] } else { vec![] },
            collapsed: rich && depth == 3,
            on_record: rich || depth != 2,
        }
    }

    /// A tree with nodes of every size class, so lengths cross varint boundaries (127, 16,383 bytes).
    fn tree(id: &str, depth: u32, fan: usize) -> Node {
        let mut n = node(id, depth, depth % 2 == 1);
        if depth < 4 {
            n.children = (0..fan).map(|i| tree(&format!("{id}.{i}"), depth + 1, fan + 3)).collect();
        }
        n
    }

    #[test]
    fn a_reply_is_the_generated_code_s_bytes() {
        let nodes = vec![tree("a", 1, 2), node("b", 1, true), node("c", 2, false), tree("d", 2, 40)];
        let head = pb::TraceReply {
            document_id: "doc-1".into(),
            document_number: "鲁财采〔2022〕14号".into(),
            document_title: "山东省财政厅关于做好政府采购工作的通知".into(),
            nodes: vec![],
            totals: Some(pb::TraceCounts { delivered: 9, acknowledged: 4, ..Default::default() }),
        };
        let expected =
            pb::TraceReply { nodes: nodes.iter().cloned().map(pb::TraceNode::from).collect(), ..head.clone() };
        let encoded = reply(head, nodes.into_iter().map(reply_node).collect());
        let bytes = encoded.encode_to_vec();
        assert_eq!(bytes.len(), encoded.encoded_len());
        assert_eq!(bytes, expected.encode_to_vec());
    }

    #[test]
    fn a_node_part_is_the_nodes_field_of_a_reply() {
        let dated = |y, mut n: Node| {
            let steps = [(StepKind::Delivered, at(1_000, 0))];
            n.delivery =
                Progress::from_steps(Role::Main, DeliveryState::Pending, NaiveDate::from_ymd_opt(y, 1, 2), &steps);
            n
        };
        let nodes = [
            node("x", 1, false),
            node("y", 1, true),
            tree("z", 1, 1),
            tree("w", 2, 40),
            dated(33, node("early", 1, false)),
            dated(12_345, node("late", 1, false)),
        ];
        for n in nodes {
            let expected = pb::TraceReply { nodes: vec![n.clone().into()], ..Default::default() };
            assert_eq!(reply_node(n).0, expected.encode_to_vec());
        }
    }

    /// The field numbers of a node as it comes on the wire.
    fn tags_of(mut node: &[u8]) -> std::collections::BTreeSet<u32> {
        let mut tags = std::collections::BTreeSet::new();
        while !node.is_empty() {
            let (tag, wire_type) = prost::encoding::decode_key(&mut node).expect("a key");
            prost::encoding::skip_field(wire_type, tag, &mut node, DecodeContext::default()).expect("a field");
            tags.insert(tag);
        }
        tags
    }

    /// A new field in the contract must be written here too: a node with everything set shows every field.
    #[test]
    fn every_field_of_the_contract_s_trace_node_is_written() {
        let set = prost_types::FileDescriptorSet::decode(pb::FILE_DESCRIPTOR_SET).expect("descriptor set");
        let contract: std::collections::BTreeSet<u32> = set
            .file
            .iter()
            .flat_map(|f| &f.message_type)
            .filter(|m| m.name() == "TraceNode")
            .flat_map(|m| &m.field)
            .map(|f| u32::try_from(f.number()).expect("a field number"))
            .collect();
        assert!(contract.len() >= 25);
        let mut rich = node("a", 3, true);
        rich.children = vec![node("b", 4, true)];
        let mut part = reply_node(rich.clone()).0;
        let mut body = &part[..];
        prost::encoding::decode_key(&mut body).expect("the nodes key");
        prost::encoding::decode_varint(&mut body).expect("the length");
        let mut written = tags_of(body);
        let chunk = Chunk { nodes: vec![FlatNode { parent: 7, same_via: false, node: rich }], ..Chunk::default() };
        part = Encoded::from(chunk).encode_to_vec();
        let mut body = &part[..];
        prost::encoding::decode_key(&mut body).expect("the nodes key");
        prost::encoding::decode_varint(&mut body).expect("the length");
        written.extend(tags_of(body));
        assert_eq!(written, contract);
    }

    #[test]
    fn a_chunk_is_the_generated_code_s_bytes() {
        let flat = |parent, same_via, n| FlatNode { parent, same_via, node: n };
        let document = DocHead {
            id: "doc-1".into(),
            number: "鲁财采〔2022〕14号".into(),
            title: "山东省财政厅关于做好政府采购工作的通知".into(),
            issuer: "sd-czt".into(),
        };
        let chunks = [
            Chunk { document: Some(document), nodes: vec![], totals: None },
            Chunk {
                document: None,
                nodes: vec![flat(0, false, node("a", 1, true)), flat(1, true, node("b", 2, false))],
                totals: Some(Counts { delivered: 2, overdue: 1, ..Default::default() }),
            },
            Chunk {
                document: None,
                nodes: (0..300).map(|i| flat(i, i % 2 == 0, node("c", 3, true))).collect(),
                totals: None,
            },
            Chunk::default(),
        ];
        for chunk in chunks {
            let expected = pb::TraceChunk::from(Chunk {
                document: chunk.document.clone(),
                nodes: chunk.nodes.iter().map(|f| flat(f.parent, f.same_via, f.node.clone())).collect(),
                totals: chunk.totals,
            });
            let bytes = Encoded::from(chunk).encode_to_vec();
            assert_eq!(bytes, expected.encode_to_vec());
        }
    }

    #[test]
    fn decoding_one_is_refused() {
        assert!(Encoded::decode(&[0x0a, 0x01, b'x'][..]).is_err());
    }
}
