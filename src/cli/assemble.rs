//! Puts a streamed trace (`StreamTrace`) back together as the tree `Trace` answers: pure, chunks in, a reply out.
use crate::pb;

/// The tree of a streamed trace's chunks, read in order, with the via documents the stream left out filled in; an
/// error for a stream that does not describe one (a parent position at or after its child's, a first node without
/// its via document, or no chunk at all).
pub fn assemble_trace(chunks: impl IntoIterator<Item = pb::TraceChunk>) -> Result<pb::TraceReply, String> {
    let mut reply = pb::TraceReply::default();
    let mut flat: Vec<Option<pb::TraceNode>> = vec![];
    let mut any = false;
    // A node whose via document is left out was reached through the same one as the node before it.
    let mut via: Option<(String, String)> = None;
    for c in chunks {
        if !any {
            (reply.document_id, reply.document_number, reply.document_title) =
                (c.document_id, c.document_number, c.document_title);
        }
        any = true;
        for mut node in c.nodes {
            if node.via_document_id.is_empty() {
                let Some((id, number)) = &via else {
                    return Err(format!("node {} of the streamed trace has no via document to carry over", flat.len()));
                };
                (node.via_document_id, node.via_document_number) = (id.clone(), number.clone());
            } else {
                via = Some((node.via_document_id.clone(), node.via_document_number.clone()));
            }
            flat.push(Some(node));
        }
        if c.totals.is_some() {
            reply.totals = c.totals;
        }
    }
    if !any {
        return Err("the streamed trace ended without a chunk".into());
    }
    // A parent comes before its children, so from the end each node is complete when it is hung under its
    // parent; children are pushed last first, hence the reverse.
    for i in (0..flat.len()).rev() {
        let Some(mut node) = flat.get_mut(i).and_then(Option::take) else {
            return Err(format!("node {i} of the streamed trace is missing"));
        };
        node.children.reverse();
        let parent = std::mem::take(&mut node.parent) as usize;
        if parent == 0 {
            reply.nodes.push(node);
            continue;
        }
        match flat.get_mut(parent - 1) {
            Some(Some(p)) if parent - 1 < i => p.children.push(node),
            _ => return Err(format!("node {i} of the streamed trace names parent {parent}, not a node before it")),
        }
    }
    reply.nodes.reverse();
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(unit: &str, parent: u32) -> pb::TraceNode {
        pb::TraceNode { unit_id: unit.into(), parent, via_document_id: format!("via-{unit}"), ..Default::default() }
    }

    /// A node reached through the same document as the node before it, as the stream sends it.
    fn same_via(unit: &str, parent: u32) -> pb::TraceNode {
        pb::TraceNode { via_document_id: String::new(), ..node(unit, parent) }
    }

    #[test]
    fn left_out_via_documents_are_carried_over_across_chunks() {
        let mut first = node("a", 0);
        first.via_document_number = "鲁财采〔2022〕14号".into();
        let head = pb::TraceChunk { nodes: vec![first, same_via("b", 0)], ..Default::default() };
        let tail =
            pb::TraceChunk { nodes: vec![same_via("c", 0), node("b1", 2), same_via("b2", 2)], ..Default::default() };
        let tree = assemble_trace([head, tail]).unwrap_or_else(|e| panic!("{e}"));
        let via = |n: &pb::TraceNode| (n.via_document_id.clone(), n.via_document_number.clone());
        let a = ("via-a".to_owned(), "鲁财采〔2022〕14号".to_owned());
        assert_eq!(tree.nodes.iter().map(via).collect::<Vec<_>>(), [a.clone(), a.clone(), a]);
        let b1 = ("via-b1".to_owned(), String::new());
        assert_eq!(tree.nodes[1].children.iter().map(via).collect::<Vec<_>>(), [b1.clone(), b1]);
        let orphan = pb::TraceChunk { nodes: vec![same_via("a", 0)], ..Default::default() };
        assert!(assemble_trace([orphan]).is_err(), "nothing to carry over to the first node");
    }

    #[test]
    fn parents_across_chunks_make_the_tree_and_bad_ones_are_refused() {
        let head =
            pb::TraceChunk { document_id: "d".into(), nodes: vec![node("a", 0), node("a1", 1)], ..Default::default() };
        let tail = pb::TraceChunk {
            nodes: vec![node("a1x", 2), node("a2", 1), node("b", 0)],
            totals: Some(pb::TraceCounts { delivered: 5, ..Default::default() }),
            ..Default::default()
        };
        let tree = assemble_trace([head, tail]).unwrap_or_else(|e| panic!("{e}"));
        let shape: Vec<(String, Vec<String>)> = tree
            .nodes
            .iter()
            .map(|n| (n.unit_id.clone(), n.children.iter().map(|c| c.unit_id.clone()).collect()))
            .collect();
        assert_eq!(shape, [("a".into(), vec!["a1".into(), "a2".into()]), ("b".into(), vec![])]);
        assert_eq!(tree.nodes[0].children[0].children[0].unit_id, "a1x");
        assert_eq!((tree.document_id.as_str(), tree.totals.map(|t| t.delivered)), ("d", Some(5)));
        assert!(tree.nodes.iter().all(|n| n.parent == 0));
        for bad in [vec![node("a", 1)], vec![node("a", 0), node("b", 3)], vec![node("a", 2), node("b", 0)]] {
            let chunk = pb::TraceChunk { nodes: bad, ..Default::default() };
            assert!(assemble_trace([chunk]).is_err());
        }
        assert!(assemble_trace([]).is_err());
    }
}
