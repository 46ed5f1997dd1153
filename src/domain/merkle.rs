//! The event log's Merkle tree: RFC 6962 / RFC 9162 hashing, inclusion and consistency proofs, and their
//! verification. Pure: node hashes come from a [`NodeSource`] (the store in the server, a map in tests, the
//! leaves themselves in the offline verifier).
use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// `SHA-256(0x00 || leaf)`: the leaf prefix keeps a leaf from ever passing for an interior node.
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(leaf);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Hashes of complete subtrees: `node(level, index)` covers leaves `index·2^level .. (index+1)·2^level`.
pub trait NodeSource {
    /// Why a node could not be read.
    type Error;
    /// The hash of a complete subtree that exists in the tree.
    fn node(&self, level: u32, index: u64) -> Result<Hash, Self::Error>;
}

/// The largest power of two strictly smaller than `n` (n ≥ 2).
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// MTH(D[start..end]) for a range whose `start` is a multiple of the largest power of two not above its length,
/// as every range in RFC 6962's recursion is: folds the complete subtrees it decomposes into.
pub fn subtree_root<S: NodeSource>(src: &S, start: u64, end: u64) -> Result<Hash, S::Error> {
    let mut parts = vec![];
    let mut at = start;
    while at < end {
        let level = 63 - (end - at).leading_zeros();
        let width = 1u64 << level;
        parts.push(src.node(level, at >> level)?);
        at += width;
    }
    let mut acc = parts.pop().unwrap_or_else(empty_root);
    while let Some(left) = parts.pop() {
        acc = node_hash(&left, &acc);
    }
    Ok(acc)
}

/// The root of the tree of the first `size` leaves.
pub fn root<S: NodeSource>(src: &S, size: u64) -> Result<Hash, S::Error> {
    if size == 0 { Ok(empty_root()) } else { subtree_root(src, 0, size) }
}

/// The audit path for leaf `index` in the tree of `size` leaves (RFC 6962 §2.1.1), leaf-side first.
/// The caller checks `index < size`.
pub fn inclusion_proof<S: NodeSource>(src: &S, index: u64, size: u64) -> Result<Vec<Hash>, S::Error> {
    let mut path = vec![];
    let (mut lo, mut hi, mut m) = (0u64, size, index);
    // Walk down from the root, collecting the sibling subtree at each split; reverse at the end.
    while hi - lo > 1 {
        let k = split(hi - lo);
        if m - lo < k {
            path.push(subtree_root(src, lo + k, hi)?);
            hi = lo + k;
        } else {
            path.push(subtree_root(src, lo, lo + k)?);
            lo += k;
        }
        m = index;
    }
    path.reverse();
    Ok(path)
}

/// The consistency proof between trees of `old` and `new` leaves (RFC 6962 §2.1.2), 0 < old ≤ new.
pub fn consistency_proof<S: NodeSource>(src: &S, old: u64, new: u64) -> Result<Vec<Hash>, S::Error> {
    let mut proof = vec![];
    if old == 0 || old >= new {
        return Ok(proof);
    }
    subproof(src, old, 0, new, true, &mut proof)?;
    Ok(proof)
}

fn subproof<S: NodeSource>(
    src: &S,
    m: u64,
    lo: u64,
    hi: u64,
    whole: bool,
    out: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    let n = hi - lo;
    if m == n {
        if !whole {
            out.push(subtree_root(src, lo, hi)?);
        }
        return Ok(());
    }
    let k = split(n);
    if m <= k {
        subproof(src, m, lo, lo + k, whole, out)?;
        out.push(subtree_root(src, lo + k, hi)?);
    } else {
        subproof(src, m - k, lo + k, hi, false, out)?;
        out.push(subtree_root(src, lo, lo + k)?);
    }
    Ok(())
}

/// Checks an inclusion proof (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && r == *root
}

/// Checks a consistency proof (RFC 9162 §2.1.4.2).
pub fn verify_consistency(old: u64, new: u64, old_root: &Hash, new_root: &Hash, proof: &[Hash]) -> bool {
    if old > new {
        return false;
    }
    if old == new {
        return proof.is_empty() && old_root == new_root;
    }
    if old == 0 {
        return proof.is_empty();
    }
    let mut path: Vec<Hash> = proof.to_vec();
    if old.is_power_of_two() {
        path.insert(0, *old_root);
    }
    let Some((first, rest)) = path.split_first() else { return false };
    let (mut fnode, mut snode) = (old - 1, new - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && fr == *old_root && sr == *new_root
}

/// The complete-subtree nodes that appending leaf `index` (0-based) with hash `leaf` completes, lowest first:
/// `(level, index, hash)`. `left(level, index)` reads an existing left sibling. O(log n) per append.
pub fn append<S: NodeSource>(src: &S, index: u64, leaf: Hash) -> Result<Vec<(u32, u64, Hash)>, S::Error> {
    let mut out = vec![(0, index, leaf)];
    let (mut level, mut i, mut h) = (0u32, index, leaf);
    while i & 1 == 1 {
        let left = src.node(level, i - 1)?;
        h = node_hash(&left, &h);
        level += 1;
        i >>= 1;
        out.push((level, i, h));
    }
    Ok(out)
}

/// Node hashes computed from a list of leaf hashes: what an offline verifier holding the whole log uses.
pub struct Leaves<'a>(pub &'a [Hash]);

impl NodeSource for Leaves<'_> {
    type Error = std::convert::Infallible;
    fn node(&self, level: u32, index: u64) -> Result<Hash, Self::Error> {
        let width = 1usize << level;
        let start = usize::try_from(index).unwrap_or(usize::MAX).saturating_mul(width);
        let slice = self.0.get(start..start.saturating_add(width)).unwrap_or_default();
        Ok(reference_root(slice))
    }
}

/// MTH straight from RFC 6962's definition, recursive over the leaves: the reference the rest is tested against.
pub fn reference_root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = usize::try_from(split(n as u64)).unwrap_or(n / 2);
            node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// Nodes stored the way the server stores them: only what `append` produced.
    #[derive(Default)]
    struct Stored(HashMap<(u32, u64), Hash>);

    impl NodeSource for Stored {
        type Error = String;
        fn node(&self, level: u32, index: u64) -> Result<Hash, String> {
            self.0.get(&(level, index)).copied().ok_or_else(|| format!("missing node {level}/{index}"))
        }
    }

    fn build(n: u64) -> (Stored, Vec<Hash>) {
        let mut s = Stored::default();
        let mut leaves = vec![];
        for i in 0..n {
            let l = leaf_hash(format!("event {i}").as_bytes());
            leaves.push(l);
            for (level, idx, h) in append(&s, i, l).expect("append") {
                s.0.insert((level, idx), h);
            }
        }
        (s, leaves)
    }

    #[test]
    fn rfc6962_known_answers() {
        // The empty tree and the leaf/node prefixes, from RFC 6962's test vectors (certificate-transparency-go).
        assert_eq!(hex::encode(empty_root()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(hex::encode(leaf_hash(b"")), "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
        let inputs: [&[u8]; 8] = [
            b"",
            b"\x00",
            b"\x10",
            b"\x20\x21",
            b"\x30\x31",
            b"\x40\x41\x42\x43",
            b"\x50\x51\x52\x53\x54\x55\x56\x57",
            b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
        ];
        let leaves: Vec<Hash> = inputs.iter().map(|l| leaf_hash(l)).collect();
        assert_eq!(
            hex::encode(reference_root(&leaves[..2])),
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"
        );
        assert_eq!(
            hex::encode(reference_root(&leaves[..3])),
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"
        );
        assert_eq!(
            hex::encode(reference_root(&leaves)),
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
        );
    }

    #[test]
    fn roots_match_the_reference_for_sizes_1_to_64_and_some_large() {
        let (s, leaves) = build(1100);
        for n in (1..=64).chain([127, 128, 129, 1000, 1023, 1024, 1025, 1100]) {
            assert_eq!(root(&s, n), Ok(reference_root(&leaves[..n as usize])), "size {n}");
        }
    }

    #[test]
    fn every_inclusion_proof_up_to_64_verifies_and_wrong_ones_fail() {
        let (s, leaves) = build(64);
        for n in 1..=64u64 {
            let r = reference_root(&leaves[..n as usize]);
            for i in 0..n {
                let p = inclusion_proof(&s, i, n).expect("proof");
                assert!(verify_inclusion(i, n, &leaves[i as usize], &p, &r), "leaf {i} of {n}");
                if n > 1 {
                    let other = (i + 1) % n;
                    assert!(!verify_inclusion(other, n, &leaves[i as usize], &p, &r), "leaf {i} at {other} of {n}");
                    assert!(!verify_inclusion(i, n, &leaf_hash(b"forged"), &p, &r));
                }
            }
        }
    }

    #[test]
    fn every_consistency_proof_up_to_64_verifies_and_forks_fail() {
        let (s, leaves) = build(64);
        for new in 1..=64u64 {
            let new_root = reference_root(&leaves[..new as usize]);
            for old in 1..=new {
                let old_root = reference_root(&leaves[..old as usize]);
                let p = consistency_proof(&s, old, new).expect("proof");
                assert!(verify_consistency(old, new, &old_root, &new_root, &p), "{old} → {new}");
                let forked = leaf_hash(b"fork");
                if old < new {
                    assert!(!verify_consistency(old, new, &forked, &new_root, &p), "forked old root {old} → {new}");
                    assert!(!verify_consistency(old, new, &old_root, &forked, &p), "forked new root {old} → {new}");
                }
            }
        }
    }

    #[test]
    fn large_sizes_prove_too() {
        let (s, leaves) = build(5000);
        let r = reference_root(&leaves);
        for i in [0u64, 1, 2047, 2048, 4095, 4999] {
            let p = inclusion_proof(&s, i, 5000).expect("proof");
            assert!(verify_inclusion(i, 5000, &leaves[i as usize], &p, &r));
        }
        for old in [1u64, 1000, 2048, 4096, 4999] {
            let p = consistency_proof(&s, old, 5000).expect("proof");
            assert!(verify_consistency(old, 5000, &reference_root(&leaves[..old as usize]), &r, &p));
        }
    }

    #[test]
    fn leaves_source_agrees_with_stored_nodes() {
        let (s, leaves) = build(37);
        let l = Leaves(&leaves);
        for i in 0..37 {
            assert_eq!(inclusion_proof(&l, i, 37).ok(), inclusion_proof(&s, i, 37).ok());
        }
    }
}
