//! BLAKE3 of several large buffers at once, spread over the pool: each buffer is cut along
//! BLAKE3's own tree into subtrees of at most [`PIECE`] bytes, the subtrees are hashed on the
//! pool's threads, and their chaining values are merged up to the root. The result is exactly
//! [`blake3::hash`] of each buffer (unit tests compare them for lengths around every edge).

use blake3::hazmat::{
    left_subtree_len, merge_subtrees_non_root, merge_subtrees_root, ChainingValue, HasherExt, Mode,
};

/// The largest subtree one thread hashes (a power of two, a multiple of BLAKE3's chunk).
const PIECE: u64 = 256 * 1024;

/// One subtree to hash: input `input`, bytes `offset..offset + len`.
#[derive(Debug, Clone, Copy)]
struct Piece {
    input: usize,
    offset: u64,
    len: u64,
}

/// The shape of one input's tree down to its pieces.
#[derive(Debug)]
enum Node {
    /// The piece with this index.
    Leaf(usize),
    /// Two subtrees.
    Parent(Box<Node>, Box<Node>),
}

/// What hashing a piece gives: the root itself when the piece is the whole input.
#[derive(Debug, Clone, Copy)]
enum Digest {
    Root(blake3::Hash),
    Subtree(ChainingValue),
}

/// `blake3::hash` of every input, computed on the pool.
#[cfg(test)]
fn hash_all(inputs: &[&[u8]]) -> Vec<blake3::Hash> {
    hash_all_beside(|| (), inputs).1
}

/// `first()` on the calling thread while the pool's other threads start hashing (see
/// [`oai_kernels::pool::map_beside`]), and `blake3::hash` of every input.
pub(crate) fn hash_all_beside<A: Send>(
    first: impl FnOnce() -> A + Send,
    inputs: &[&[u8]],
) -> (A, Vec<blake3::Hash>) {
    let mut pieces = Vec::new();
    let trees: Vec<Node> = inputs
        .iter()
        .enumerate()
        .map(|(input, data)| split(input, 0, data.len() as u64, &mut pieces))
        .collect();
    let (first, digests) = oai_kernels::pool::map_beside(first, pieces.len(), |i| {
        let Piece { input, offset, len } = pieces[i];
        let bytes = &inputs[input][offset as usize..(offset + len) as usize];
        if len == inputs[input].len() as u64 {
            Digest::Root(blake3::hash(bytes))
        } else {
            let mut hasher = blake3::Hasher::new();
            hasher.set_input_offset(offset).update(bytes);
            Digest::Subtree(hasher.finalize_non_root())
        }
    });
    let roots = trees.iter().map(|tree| root(tree, &digests)).collect();
    (first, roots)
}

/// The tree of `len` bytes at `offset` (a subtree's start, or 0), its pieces appended.
fn split(input: usize, offset: u64, len: u64, pieces: &mut Vec<Piece>) -> Node {
    if len <= PIECE {
        pieces.push(Piece { input, offset, len });
        return Node::Leaf(pieces.len() - 1);
    }
    let left = left_subtree_len(len);
    Node::Parent(
        Box::new(split(input, offset, left, pieces)),
        Box::new(split(input, offset + left, len - left, pieces)),
    )
}

fn root(tree: &Node, digests: &[Digest]) -> blake3::Hash {
    match tree {
        Node::Leaf(i) => match digests[*i] {
            Digest::Root(h) => h,
            Digest::Subtree(_) => unreachable!("a whole input is hashed as a root"),
        },
        Node::Parent(l, r) => {
            merge_subtrees_root(&subtree(l, digests), &subtree(r, digests), Mode::Hash)
        }
    }
}

fn subtree(tree: &Node, digests: &[Digest]) -> ChainingValue {
    match tree {
        Node::Leaf(i) => match digests[*i] {
            Digest::Subtree(cv) => cv,
            Digest::Root(_) => unreachable!("a part of an input is hashed as a subtree"),
        },
        Node::Parent(l, r) => {
            merge_subtrees_non_root(&subtree(l, digests), &subtree(r, digests), Mode::Hash)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equals_blake3_for_lengths_around_every_edge() {
        let chunk = blake3::CHUNK_LEN;
        let piece = PIECE as usize;
        let lens = [
            0,
            1,
            chunk - 1,
            chunk,
            chunk + 1,
            3 * chunk + 5,
            piece - 1,
            piece,
            piece + 1,
            2 * piece,
            2 * piece + chunk,
            3 * piece + 7,
            784 * 1024 * 4,
            1024 * 1024 * 4 + 40,
        ];
        let data: Vec<Vec<u8>> = lens
            .iter()
            .enumerate()
            .map(|(s, n)| (0..*n).map(|i| (i * 31 + s * 7) as u8).collect())
            .collect();
        let inputs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        let got = hash_all(&inputs);
        for (input, hash) in inputs.iter().zip(got) {
            assert_eq!(hash, blake3::hash(input), "{} bytes", input.len());
        }
        assert!(hash_all(&[]).is_empty());
    }
}
