//! CIDs as IPFS builds them: sha2-256 multihashes, CIDv1 (any known codec) or CIDv0 (dag-pb).
//!
//! Every read from a content-addressed store goes through [`verify`].

use cid::Cid;
use multihash::Multihash;

use crate::{Digest, Error, Result};

/// Multicodec of raw bytes (IPFS raw leaves).
pub const RAW: u64 = 0x55;
/// Multicodec of dag-pb (UnixFS nodes).
pub const DAG_PB: u64 = 0x70;
/// Multicodec of dag-cbor (oai manifests, chunks and logs).
pub const DAG_CBOR: u64 = 0x71;
/// Multihash code of sha2-256.
pub const SHA2_256: u64 = 0x12;

/// Whether oai knows how to handle blocks of this codec.
pub fn is_known_codec(codec: u64) -> bool {
    matches!(codec, RAW | DAG_PB | DAG_CBOR)
}

/// Wrap a SHA-256 digest in a multihash.
pub fn multihash(digest: &Digest) -> Multihash<64> {
    Multihash::wrap(SHA2_256, digest.as_bytes()).expect("32 bytes fit in 64")
}

/// The CIDv1 of `bytes` under `codec` (sha2-256).
pub fn cid_v1(codec: u64, bytes: &[u8]) -> Cid {
    Cid::new_v1(codec, multihash(&Digest::of(bytes)))
}

/// The CIDv1 for an already computed digest.
pub fn cid_v1_of_digest(codec: u64, digest: &Digest) -> Cid {
    Cid::new_v1(codec, multihash(digest))
}

/// The CIDv0 (base58 `Qm...`) of a dag-pb block.
pub fn cid_v0(bytes: &[u8]) -> Cid {
    Cid::new_v0(multihash(&Digest::of(bytes))).expect("sha2-256 multihash is a valid CIDv0")
}

/// The SHA-256 digest inside `cid`, or an error if it uses another hash function.
pub fn digest_of(cid: &Cid) -> Result<Digest> {
    let mh = cid.hash();
    if mh.code() != SHA2_256 {
        return Err(Error::UnsupportedHash(mh.code()));
    }
    let arr: [u8; 32] = mh
        .digest()
        .try_into()
        .map_err(|_| Error::InvalidCid(format!("{cid}: sha2-256 digest is not 32 bytes")))?;
    Ok(Digest(arr))
}

/// Check that `bytes` are the content `cid` names: known codec, sha2-256, matching digest.
pub fn verify(cid: &Cid, bytes: &[u8]) -> Result<()> {
    if !is_known_codec(cid.codec()) {
        return Err(Error::UnknownCodec(cid.codec()));
    }
    let expected = digest_of(cid)?;
    let actual = Digest::of(bytes);
    if actual != expected {
        return Err(Error::CidMismatch {
            cid: *cid,
            actual: actual.to_hex(),
        });
    }
    Ok(())
}

/// Parse a CID from its string form (base32 `b...`, base58 `Qm...`, ...).
pub fn parse(s: &str) -> Result<Cid> {
    Cid::try_from(s).map_err(|e| Error::InvalidCid(format!("{s:?}: {e}")))
}

/// Parse a CID from its binary form.
pub fn from_bytes(b: &[u8]) -> Result<Cid> {
    Cid::try_from(b).map_err(|e| Error::InvalidCid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_cid_of_100_bytes_matches_ipfs() {
        let data: Vec<u8> = (0..100u32).map(|i| (i % 251) as u8).collect();
        let cid = cid_v1(RAW, &data);
        assert_eq!(
            cid.to_string(),
            "bafkreif44cx7dhhvvjvhi2ndbvq5atsdo3slx5rycbjo5ht7gojfzfknki"
        );
        verify(&cid, &data).unwrap();
        assert_eq!(parse(&cid.to_string()).unwrap(), cid);
        assert_eq!(from_bytes(&cid.to_bytes()).unwrap(), cid);
    }

    #[test]
    fn verify_rejects_tampered_bytes_unknown_codec_and_other_hash() {
        let cid = cid_v1(RAW, b"hello");
        assert!(matches!(
            verify(&cid, b"hellp"),
            Err(Error::CidMismatch { .. })
        ));
        let odd = Cid::new_v1(0x300, multihash(&Digest::of(b"hello")));
        assert!(matches!(
            verify(&odd, b"hello"),
            Err(Error::UnknownCodec(0x300))
        ));
        let ident = Cid::new_v1(RAW, Multihash::wrap(0x00, b"hello").unwrap());
        assert!(matches!(
            verify(&ident, b"hello"),
            Err(Error::UnsupportedHash(0))
        ));
        assert!(parse("not-a-cid").is_err());
    }

    #[test]
    fn v0_cid_is_base58() {
        assert!(cid_v0(b"x").to_string().starts_with("Qm"));
    }
}
