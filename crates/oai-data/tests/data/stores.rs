//! The block stores: the conformance suite, corruption, torn writes, a real IPFS node.

use bytes::Bytes;
use oai_core::ids;
use oai_data::store::conformance;
use oai_data::{BlockStore, Error, FsStore, MemStore, RefStore};

use super::pattern;

#[tokio::test]
async fn mem_store_conformance() {
    let s = MemStore::new();
    conformance::block_store(&s).await;
    conformance::ref_store(&s).await;
}

#[tokio::test]
async fn fs_store_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let s = FsStore::open(dir.path()).await.unwrap();
    conformance::block_store(&s).await;
    conformance::ref_store(&s).await;
}

#[tokio::test]
async fn fs_store_detects_corruption_and_survives_torn_writes() {
    let dir = tempfile::tempdir().unwrap();
    let s = FsStore::open(dir.path()).await.unwrap();
    let data = Bytes::from(pattern(5000));
    let cid = s.put(ids::RAW, data.clone()).await.unwrap();

    // a torn write left in tmp/ (crash before rename) does not affect the store
    std::fs::write(dir.path().join("tmp/123-0.tmp"), &data[..100]).unwrap();
    let s2 = FsStore::open(dir.path()).await.unwrap();
    assert_eq!(s2.get(&cid).await.unwrap(), data);

    // a bit flipped on disk is caught on read
    let path = s.block_path(&cid);
    let mut raw = std::fs::read(&path).unwrap();
    raw[10] ^= 1;
    std::fs::write(&path, &raw).unwrap();
    assert!(matches!(s.get(&cid).await, Err(Error::CorruptBlock { .. })));

    // a garbage ref file is a typed error, not a panic
    std::fs::write(dir.path().join("refs/bad"), "not a cid").unwrap();
    assert!(matches!(
        s.get_ref("bad").await,
        Err(Error::Malformed { .. })
    ));
}

#[tokio::test]
async fn mem_store_detects_corruption() {
    let s = MemStore::new();
    let cid = s.put(ids::RAW, Bytes::from_static(b"hello")).await.unwrap();
    s.corrupt_for_test(&cid, Bytes::from_static(b"hellO"));
    assert!(matches!(s.get(&cid).await, Err(Error::CorruptBlock { .. })));
}

#[cfg(feature = "ipfs")]
mod ipfs {
    use super::*;
    use crate::{skip_without, text_records};
    use oai_data::dataset::Version;
    use oai_data::store::IpfsStore;
    use oai_data::unixfs;
    use oai_data::unixfs::Profile;

    fn node() -> Option<IpfsStore> {
        match std::env::var("OAI_IPFS_API") {
            Ok(url) => Some(IpfsStore::new(&url).unwrap()),
            Err(_) => {
                skip_without("OAI_IPFS_API", "start a node with .ci/ipfs-daemon.sh");
                None
            }
        }
    }

    #[tokio::test]
    async fn ipfs_store_conformance() {
        let Some(s) = node() else { return };
        conformance::block_store(&s).await;
    }

    #[tokio::test]
    async fn import_matches_a_real_ipfs_node_for_every_profile() {
        let Some(s) = node() else { return };
        let k = 256 * 1024;
        let mut sizes = vec![0, 1, k - 1, k, k + 1, 3 * (1 << 20) + 17];
        sizes.push(174 * k + 1); // forces a second tree level in the 256 KiB profiles
        for profile in [
            Profile::KuboCidV1,
            Profile::UnixfsV0_2015,
            Profile::UnixfsV1_2025,
        ] {
            for &n in &sizes {
                let data = pattern(n);
                let ours = unixfs::import_bytes(&MemStore::new(), &data, profile)
                    .await
                    .unwrap();
                let theirs = s.add(Bytes::from(data.clone()), profile).await.unwrap();
                assert_eq!(ours.root, theirs, "{profile:?}, {n} bytes");
                if n < (1 << 20) {
                    assert_eq!(s.cat(&theirs, profile).await.unwrap(), data);
                }
            }
        }
    }

    #[tokio::test]
    async fn blocks_put_by_us_read_back_as_a_file_by_the_node() {
        let Some(s) = node() else { return };
        let data = pattern(700_000);
        let r = unixfs::import_bytes(&s, &data, Profile::default())
            .await
            .unwrap();
        assert_eq!(unixfs::read_to_vec(&s, &r.root).await.unwrap(), data);
        s.pin(&r.root).await.unwrap();
    }

    /// Named heads stay pinned on the node while a name holds them: a swap pins the new head
    /// and unpins the old, a head two names hold stays pinned until the last name goes.
    #[tokio::test]
    async fn pinned_refs_pin_what_is_named_and_unpin_what_is_not() {
        use oai_data::store::PinnedRefs;
        let Some(s) = node() else { return };
        let refs = PinnedRefs::new(MemStore::new(), s.clone());
        let a = unixfs::import_bytes(&s, &pattern(1_000), Profile::default())
            .await
            .unwrap()
            .root;
        let b = unixfs::import_bytes(&s, &pattern(2_000), Profile::default())
            .await
            .unwrap()
            .root;
        for c in [a, b] {
            s.unpin(&c).await.unwrap(); // a pin left by another run
            assert!(!s.is_pinned(&c).await.unwrap());
        }
        refs.compare_and_swap("jobs/x/1", None, Some(a))
            .await
            .unwrap();
        refs.compare_and_swap("jobs/x/2", None, Some(a))
            .await
            .unwrap();
        assert!(s.is_pinned(&a).await.unwrap());
        refs.compare_and_swap("jobs/x/1", Some(a), Some(b))
            .await
            .unwrap();
        assert!(s.is_pinned(&a).await.unwrap(), "jobs/x/2 still holds it");
        assert!(s.is_pinned(&b).await.unwrap());
        refs.compare_and_swap("jobs/x/2", Some(a), None)
            .await
            .unwrap();
        assert!(!s.is_pinned(&a).await.unwrap(), "no name holds it");
        refs.compare_and_swap("jobs/x/1", Some(b), None)
            .await
            .unwrap();
        assert!(!s.is_pinned(&b).await.unwrap());
        assert!(refs.list_refs().await.unwrap().is_empty());
        // a swap that loses its race changes no pin it should not
        refs.compare_and_swap("jobs/x/1", None, Some(a))
            .await
            .unwrap();
        assert!(refs
            .compare_and_swap("jobs/x/1", Some(b), None)
            .await
            .is_err());
        assert!(refs
            .compare_and_swap("jobs/x/3", Some(a), Some(b))
            .await
            .is_err());
        assert!(s.is_pinned(&a).await.unwrap());
        assert!(
            !s.is_pinned(&b).await.unwrap(),
            "the losing swap's pin is taken back"
        );
        refs.compare_and_swap("jobs/x/1", Some(a), None)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn datasets_live_on_ipfs_under_the_same_cids() {
        let Some(s) = node() else { return };
        let recs = text_records(500, "on-ipfs");
        let local = Version::from_records(&MemStore::new(), recs.clone())
            .await
            .unwrap();
        let v = Version::from_records(&s, recs.clone()).await.unwrap();
        assert_eq!(
            v.cid(),
            local.cid(),
            "the node stores our blocks under our CIDs"
        );
        let reopened = Version::open(
            &IpfsStore::new(&std::env::var("OAI_IPFS_API").unwrap()).unwrap(),
            &v.cid(),
        )
        .await
        .unwrap();
        assert_eq!(reopened.records(&s).await.unwrap(), recs);
        let (_, cid, proof) = reopened.prove(&s, 321).await.unwrap();
        assert!(proof.verify_cid(&cid, &local.root()));
    }

    #[tokio::test]
    async fn cat_with_the_wrong_profile_fails_verification() {
        let Some(s) = node() else { return };
        let data = pattern(300_000);
        let cid = s
            .add(Bytes::from(data), Profile::UnixfsV1_2025)
            .await
            .unwrap();
        assert!(matches!(
            s.cat(&cid, Profile::KuboCidV1).await,
            Err(Error::Verification(_))
        ));
    }

    #[tokio::test]
    async fn unreachable_node_is_a_typed_error() {
        // a port that was free a moment ago: nothing listens there (port 9 may have a server)
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let s = IpfsStore::new(&format!("http://127.0.0.1:{port}")).unwrap();
        let cid = ids::cid_v1(ids::RAW, b"x");
        assert!(matches!(
            s.get(&cid).await,
            Err(Error::IpfsUnreachable { .. })
        ));
        assert!(matches!(
            s.put(ids::RAW, Bytes::from_static(b"x")).await,
            Err(Error::IpfsUnreachable { .. })
        ));
    }
}
