//! The unary `Trace` reply, put into its wire form while the tree is walked.
//!
//! A reply over a 200,000-delivery tree is some 27 MB of nested messages. Encoded by the generated code after the
//! walk, on the one task that sends it, it took about as long as the walk itself: prost computes a nested
//! message's length again at every level above it, so a leaf four levels down was measured five times. Here each
//! subtree under the root's recipients is converted and encoded on the walk's own threads as soon as it is grown,
//! every node's length computed once, and the reply is those parts after a short head. The bytes decode to
//! exactly the `TraceReply` the generated code would send (tested below); the build generates the `Trace` server
//! with this type as its reply (see `build.rs`), clients with `TraceReply`.
use prost::Message;
use prost::bytes::{Buf, BufMut};
use prost::encoding::{DecodeContext, WireType, encode_key, encode_varint, encoded_len_varint, key_len};

use crate::app::trace::Tree;
use crate::pb;

/// `TraceReply.nodes`.
const REPLY_NODES: u32 = 4;
/// `TraceNode.children`.
const NODE_CHILDREN: u32 = 22;

/// A `TraceReply` in wire form: the head (document and totals) and one part per node of `nodes`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct EncodedTrace {
    parts: Vec<Vec<u8>>,
    len: usize,
}

impl EncodedTrace {
    /// `head`, then `nodes`, each one of [`reply_node`]'s parts.
    pub fn new(head: &pb::TraceReply, nodes: Vec<Vec<u8>>) -> Self {
        // Fields may come in any order, and a repeated field's elements keep theirs: `nodes` after the head
        // decodes as the same message.
        let parts: Vec<Vec<u8>> = std::iter::once(head.encode_to_vec()).chain(nodes).collect();
        EncodedTrace { len: parts.iter().map(Vec::len).sum(), parts }
    }
}

impl From<Tree<Vec<u8>>> for EncodedTrace {
    /// From a tree whose nodes are each [`reply_node`]'s part.
    fn from(t: Tree<Vec<u8>>) -> Self {
        EncodedTrace::new(&super::convert::reply_head(t.document, t.totals), t.nodes)
    }
}

impl Message for EncodedTrace {
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
        // Only the server holds this type, and only to send it; a client decodes a `TraceReply`.
        #[allow(deprecated)]
        Err(prost::DecodeError::new("an encoded trace reply is sent, never decoded; decode a TraceReply"))
    }

    fn encoded_len(&self) -> usize {
        self.len
    }

    fn clear(&mut self) {
        *self = EncodedTrace::default();
    }
}

/// One element of `TraceReply.nodes`, with its key and length: `node` and every node under it.
pub fn reply_node(mut node: pb::TraceNode) -> Vec<u8> {
    let mut sizes = Vec::new();
    let len = sizes_of(&mut node, &mut sizes);
    let mut buf = Vec::with_capacity(key_len(REPLY_NODES) + encoded_len_varint(len as u64) + len);
    encode_key(REPLY_NODES, WireType::LengthDelimited, &mut buf);
    encode_varint(len as u64, &mut buf);
    write(node, &mut sizes.into_iter().skip(1), &mut buf);
    buf
}

/// Pushes the encoded length of `node` and of each node under it, parents before children (the order [`write`]
/// takes them in); returns `node`'s.
fn sizes_of(node: &mut pb::TraceNode, sizes: &mut Vec<usize>) -> usize {
    let at = sizes.len();
    sizes.push(0);
    let mut children = std::mem::take(&mut node.children);
    let mut len = node.encoded_len();
    for child in &mut children {
        let n = sizes_of(child, sizes);
        len += key_len(NODE_CHILDREN) + encoded_len_varint(n as u64) + n;
    }
    node.children = children;
    sizes[at] = len;
    len
}

/// Encodes `node`: its own fields by the generated code, then each child with the length [`sizes_of`] found.
fn write(mut node: pb::TraceNode, sizes: &mut impl Iterator<Item = usize>, buf: &mut Vec<u8>) {
    let children = std::mem::take(&mut node.children);
    node.encode_raw(buf);
    drop(node);
    for child in children {
        encode_key(NODE_CHILDREN, WireType::LengthDelimited, buf);
        encode_varint(sizes.next().unwrap_or_default() as u64, buf);
        write(child, sizes, buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(id: &str, depth: u32) -> pb::TraceNode {
        pb::TraceNode {
            unit_id: id.into(),
            unit_name: format!("{id} 财政所"),
            region_code: "370303001".into(),
            level: pb::Level::Township as i32,
            depth,
            via_document_id: "doc-2".into(),
            via_document_number: "博财采〔2022〕19号".into(),
            role: pb::RecipientRole::Main as i32,
            state: pb::DeliveryState::Acknowledged as i32,
            deadline: "2022-09-30".into(),
            overdue: true,
            reminders: 2,
            delivered_at: Some(prost_types::Timestamp { seconds: 1_660_000_000, nanos: 5 }),
            acknowledged_at: Some(prost_types::Timestamp { seconds: 1_660_000_100, nanos: 0 }),
            forwarded_as_numbers: vec!["淄财采〔2022〕20号".into()],
            counts: Some(pb::TraceCounts { delivered: 1, acknowledged: 1, overdue: 1, ..Default::default() }),
            flags: vec!["signed with a revoked key".into()],
            collapsed: depth == 3,
            ..Default::default()
        }
    }

    /// A tree with nodes of every size class, so lengths cross varint boundaries (127, 16,383 bytes).
    fn tree(id: &str, depth: u32, fan: usize) -> pb::TraceNode {
        let mut node = leaf(id, depth);
        if depth < 4 {
            node.children = (0..fan).map(|i| tree(&format!("{id}.{i}"), depth + 1, fan + 3)).collect();
        }
        node
    }

    #[test]
    fn a_reply_decodes_to_what_the_generated_code_sends() {
        let nodes = vec![tree("a", 1, 2), leaf("b", 1), pb::TraceNode::default(), tree("c", 1, 5)];
        let head = pb::TraceReply {
            document_id: "doc-1".into(),
            document_number: "鲁财采〔2022〕14号".into(),
            document_title: "山东省财政厅关于做好政府采购工作的通知".into(),
            nodes: vec![],
            totals: Some(pb::TraceCounts { delivered: 9, acknowledged: 4, ..Default::default() }),
        };
        let expected = pb::TraceReply { nodes: nodes.clone(), ..head.clone() };
        let encoded = EncodedTrace::new(&head, nodes.into_iter().map(reply_node).collect());
        let bytes = encoded.encode_to_vec();
        assert_eq!(bytes.len(), encoded.encoded_len());
        assert_eq!(bytes.len(), expected.encoded_len(), "the same fields, only in another order");
        assert_eq!(pb::TraceReply::decode(bytes.as_slice()).expect("decodes"), expected);
    }

    #[test]
    fn a_node_part_is_the_nodes_field_of_a_reply() {
        for node in [pb::TraceNode::default(), leaf("x", 1), tree("y", 1, 1), tree("z", 2, 40)] {
            let part = reply_node(node.clone());
            let reply = pb::TraceReply::decode(part.as_slice()).expect("decodes");
            assert_eq!(reply.nodes, vec![node.clone()]);
            assert_eq!(part.len(), pb::TraceReply { nodes: vec![node], ..Default::default() }.encoded_len());
        }
    }

    #[test]
    fn decoding_one_is_refused() {
        assert!(EncodedTrace::decode(&[0x0a, 0x01, b'x'][..]).is_err());
    }
}
