//! Puts a streamed trace (`StreamTrace`) back together as the tree `Trace` answers: pure, chunks in, a reply out.
use crate::pb;

/// The tree of a streamed trace's chunks, read in order; an error for a stream that does not describe one (a parent
/// position at or after its child's, or no chunk at all).
pub fn assemble_trace(chunks: impl IntoIterator<Item = pb::TraceChunk>) -> Result<pb::TraceReply, String> {
    let mut reply = pb::TraceReply::default();
    let mut flat: Vec<Option<pb::TraceNode>> = vec![];
    let mut any = false;
    for c in chunks {
        if !any {
            (reply.document_id, reply.document_number, reply.document_title) =
                (c.document_id, c.document_number, c.document_title);
        }
        any = true;
        flat.extend(c.nodes.into_iter().map(Some));
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
        pb::TraceNode { unit_id: unit.into(), parent, ..Default::default() }
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
