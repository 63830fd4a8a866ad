//! A binary Merkle tree over 32-byte items with inclusion proofs of log2(n) hashes.
//!
//! Hashing rules (stable; the on-chain verifier and the training log rely on them):
//! - leaf = SHA-256(`0x00` || item), inner node = SHA-256(`0x01` || left || right);
//! - a level with an odd number of nodes promotes its last node unchanged (no duplication, so
//!   no two different item lists share a root);
//! - the root of the empty tree is SHA-256 of nothing.
//!
//! A [`MerkleProof`] carries the leaf index, the leaf count and the siblings on the path; it is
//! checked against a root alone, without the data.

use serde::{Deserialize, Serialize};

use crate::Digest;

const LEAF: u8 = 0x00;
const NODE: u8 = 0x01;

/// Hash of one leaf item.
pub fn leaf_hash(item: &Digest) -> Digest {
    Digest::of_parts(&[&[LEAF], item.as_bytes()])
}

/// Hash of an inner node from its two children.
pub fn node_hash(left: &Digest, right: &Digest) -> Digest {
    Digest::of_parts(&[&[NODE], left.as_bytes(), right.as_bytes()])
}

/// A Merkle tree with all levels kept, to hand out proofs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleTree {
    levels: Vec<Vec<Digest>>,
}

impl MerkleTree {
    /// Build the tree over `items` in the given order.
    pub fn new(items: &[Digest]) -> Self {
        let mut levels = vec![items.iter().map(leaf_hash).collect::<Vec<_>>()];
        while levels.last().map_or(0, Vec::len) > 1 {
            let prev = levels.last().expect("at least one level");
            let next = prev.chunks(2).map(parent).collect();
            levels.push(next);
        }
        Self { levels }
    }

    /// The root over `items` without keeping the tree: what [`MerkleTree::new`]`(items).root()`
    /// gives, holding one level (32 bytes an item) instead of all of them.
    pub fn root_of(items: &[Digest]) -> Digest {
        let mut level: Vec<Digest> = items.iter().map(leaf_hash).collect();
        while level.len() > 1 {
            let n = level.len().div_ceil(2);
            for i in 0..n {
                level[i] = parent(&level[2 * i..(2 * i + 2).min(level.len())]);
            }
            level.truncate(n);
        }
        level.first().copied().unwrap_or_else(|| Digest::of(&[]))
    }

    /// Number of items.
    pub fn len(&self) -> u64 {
        self.levels[0].len() as u64
    }

    /// Whether the tree has no items.
    pub fn is_empty(&self) -> bool {
        self.levels[0].is_empty()
    }

    /// The root. For no items: SHA-256 of the empty string.
    pub fn root(&self) -> Digest {
        match self.levels.last().and_then(|l| l.first()) {
            Some(d) => *d,
            None => Digest::of(&[]),
        }
    }

    /// The inclusion proof of the item at `index`, or `None` if out of range.
    pub fn proof(&self, index: u64) -> Option<MerkleProof> {
        if index >= self.len() {
            return None;
        }
        let mut siblings = Vec::new();
        let mut i = index as usize;
        for level in &self.levels[..self.levels.len() - 1] {
            let sib = i ^ 1;
            if sib < level.len() {
                siblings.push(level[sib]);
            }
            i >>= 1;
        }
        Some(MerkleProof {
            index,
            leaf_count: self.len(),
            siblings,
        })
    }
}

/// The node above one pair of a level (an odd level's last node is promoted unchanged).
fn parent(pair: &[Digest]) -> Digest {
    match pair {
        [l, r] => node_hash(l, r),
        [only] => *only,
        _ => unreachable!("a level is read in pairs"),
    }
}

/// Proof that an item sits at `index` among `leaf_count` items under a root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerkleProof {
    /// Position of the item.
    pub index: u64,
    /// Number of items in the tree.
    pub leaf_count: u64,
    /// Sibling hashes from the leaf level upwards (levels where the node is promoted have none).
    pub siblings: Vec<Digest>,
}

impl MerkleProof {
    /// The root this proof gives for `item`, or `None` if the proof is malformed (index out of
    /// range, too many or too few siblings).
    pub fn compute_root(&self, item: &Digest) -> Option<Digest> {
        if self.index >= self.leaf_count {
            return None;
        }
        let mut acc = leaf_hash(item);
        let mut i = self.index;
        let mut width = self.leaf_count;
        let mut sibs = self.siblings.iter();
        while width > 1 {
            let sib = i ^ 1;
            if sib < width {
                let s = sibs.next()?;
                acc = if i & 1 == 0 {
                    node_hash(&acc, s)
                } else {
                    node_hash(s, &acc)
                };
            }
            i >>= 1;
            width = width.div_ceil(2);
        }
        if sibs.next().is_some() {
            return None;
        }
        Some(acc)
    }

    /// Whether `item` is at `self.index` under `root`.
    pub fn verify(&self, item: &Digest, root: &Digest) -> bool {
        self.compute_root(item).as_ref() == Some(root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn items(n: usize) -> Vec<Digest> {
        (0..n)
            .map(|i| Digest::of(&(i as u64).to_le_bytes()))
            .collect()
    }

    #[test]
    fn small_trees_have_expected_shape() {
        let it = items(3);
        let t = MerkleTree::new(&it);
        let l: Vec<_> = it.iter().map(leaf_hash).collect();
        assert_eq!(t.root(), node_hash(&node_hash(&l[0], &l[1]), &l[2]));
        assert_eq!(MerkleTree::new(&[]).root(), Digest::of(&[]));
        assert_eq!(MerkleTree::new(&it[..1]).root(), l[0]);
        assert!(t.proof(3).is_none());
        assert_eq!(t.proof(2).unwrap().siblings.len(), 1);
    }

    #[test]
    fn the_root_alone_is_the_trees_root() {
        for n in (0..70).chain([1023, 1024, 1025, 4097]) {
            let it = items(n);
            assert_eq!(
                MerkleTree::root_of(&it),
                MerkleTree::new(&it).root(),
                "{n} items"
            );
        }
    }

    proptest! {
        #[test]
        fn every_proof_verifies_and_any_flipped_bit_fails(n in 1usize..300, pick in any::<u64>(), bit in 0usize..256) {
            let it = items(n);
            let t = MerkleTree::new(&it);
            let idx = pick % n as u64;
            let p = t.proof(idx).unwrap();
            prop_assert!(p.verify(&it[idx as usize], &t.root()));
            prop_assert!(p.siblings.len() <= 64 - (n as u64).leading_zeros() as usize);

            // a flipped bit in the item, the root or any sibling fails
            let mut bad_item = it[idx as usize];
            bad_item.0[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(!p.verify(&bad_item, &t.root()));
            let mut bad_root = t.root();
            bad_root.0[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(!p.verify(&it[idx as usize], &bad_root));
            if !p.siblings.is_empty() {
                let mut q = p.clone();
                let s = (pick as usize / 7) % q.siblings.len();
                q.siblings[s].0[bit / 8] ^= 1 << (bit % 8);
                prop_assert!(!q.verify(&it[idx as usize], &t.root()));
            }
            // the wrong index, a wrong count or an extra sibling fails
            if n > 1 {
                let mut q = p.clone();
                q.index = (idx + 1) % n as u64;
                prop_assert!(!q.verify(&it[idx as usize], &t.root()));
            }
            let mut q = p.clone();
            q.siblings.push(Digest::default());
            prop_assert!(!q.verify(&it[idx as usize], &t.root()));
        }
    }
}
