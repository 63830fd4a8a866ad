//! Integration tests of oai-data: store conformance, UnixFS/CAR against real IPFS tools,
//! datasets (fork/diff/apply laws, proofs, sampler, proposals, GC) and bad input.
//!
//! Real components: set `OAI_IPFS_API` (e.g. `http://127.0.0.1:5801`, a js-ipfs or kubo RPC
//! API) and `OAI_IPFS_CAR` (path of npm `ipfs-car`'s CLI) to run the tests that need them;
//! `.ci/run` starts both. Without them those tests print why they skip, unless
//! `OAI_REQUIRE_REAL` is set (as `.ci/run` does), which turns a missing component into a failure.

use bytes::Bytes;
use oai_core::{ids, Seed};
use oai_data::dataset::{ChangeSet, Chunking, Proposal, Record, Repo, Sampler, Tensor, Version};
use oai_data::store::conformance;
use oai_data::{car, gc, unixfs, BlockStore, Error, FsStore, MemStore, RefStore};
use proptest::prelude::*;

/// Skip (with a message) when a real component is not configured, or fail under
/// `OAI_REQUIRE_REAL`.
fn skip_without(var: &str, what: &str) {
    assert!(
        std::env::var_os("OAI_REQUIRE_REAL").is_none(),
        "{var} is not set but OAI_REQUIRE_REAL is ({what})"
    );
    eprintln!("SKIP: {var} is not set ({what})");
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

fn text_records(n: usize, salt: &str) -> Vec<Record> {
    (0..n)
        .map(|i| Record::Text(format!("{salt} record {i} {}", "x".repeat(i % 300))))
        .collect()
}

/// A version of `records` with the given chunking.
async fn build(s: &MemStore, chunking: Chunking, records: Vec<Record>) -> Version {
    let mut b = oai_data::dataset::Builder::new(s).chunking(chunking);
    for r in records {
        b.push(r).await.unwrap();
    }
    b.finish().await.unwrap()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

// ---------- stores ----------

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
    use oai_data::store::IpfsStore;
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

// ---------- UnixFS and CAR ----------

/// A reader that yields `len` bytes of the `i % 251` pattern without holding them.
struct PatternReader {
    pos: u64,
    len: u64,
}

impl tokio::io::AsyncRead for PatternReader {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        // copy from a table holding the pattern twice, at most 251 bytes at a time
        static TABLE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        let table = TABLE.get_or_init(|| pattern(502));
        let n = (buf.remaining() as u64).min(self.len - self.pos).min(251) as usize;
        let off = (self.pos % 251) as usize;
        buf.put_slice(&table[off..off + n]);
        self.pos += n as u64;
        std::task::Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn streaming_import_equals_in_memory_import_and_reads_back() {
    let s = MemStore::new();
    let n = 5 * (1 << 20) + 3;
    let streamed = unixfs::import(&s, PatternReader { pos: 0, len: n }, Default::default())
        .await
        .unwrap();
    let whole = unixfs::import_bytes(&MemStore::new(), &pattern(n as usize), Default::default())
        .await
        .unwrap();
    assert_eq!(streamed, whole);
    assert_eq!(
        unixfs::read_to_vec(&s, &streamed.root).await.unwrap(),
        pattern(n as usize)
    );
}

/// A store that only counts what it is given: the importer's own memory is all that remains.
#[derive(Debug, Clone, Default)]
struct CountingStore(std::sync::Arc<std::sync::atomic::AtomicU64>);

#[async_trait::async_trait]
impl BlockStore for CountingStore {
    async fn put_block(&self, block: oai_data::store::Block) -> oai_data::Result<()> {
        self.0.fetch_add(
            block.data().len() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        Ok(())
    }
    async fn get(&self, cid: &cid::Cid) -> oai_data::Result<Bytes> {
        Err(Error::NotFound(*cid))
    }
    async fn has(&self, _: &cid::Cid) -> oai_data::Result<bool> {
        Ok(false)
    }
    async fn delete(&self, _: &cid::Cid) -> oai_data::Result<()> {
        Ok(())
    }
    async fn list(&self) -> oai_data::Result<Vec<cid::Cid>> {
        Ok(vec![])
    }
}

/// A store that fails every put after the first `ok` ones, like a disk filling up.
#[derive(Debug, Clone)]
struct FailingStore {
    inner: MemStore,
    ok: u64,
    puts: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

#[async_trait::async_trait]
impl BlockStore for FailingStore {
    async fn put_block(&self, block: oai_data::store::Block) -> oai_data::Result<()> {
        if self.puts.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= self.ok {
            return Err(Error::Io(std::io::Error::other("disk full")));
        }
        self.inner.put_block(block).await
    }
    async fn get(&self, cid: &cid::Cid) -> oai_data::Result<Bytes> {
        self.inner.get(cid).await
    }
    async fn has(&self, cid: &cid::Cid) -> oai_data::Result<bool> {
        self.inner.has(cid).await
    }
    async fn delete(&self, cid: &cid::Cid) -> oai_data::Result<()> {
        self.inner.delete(cid).await
    }
    async fn list(&self) -> oai_data::Result<Vec<cid::Cid>> {
        self.inner.list().await
    }
}

#[tokio::test]
async fn a_failing_store_fails_the_build_and_no_manifest_is_written() {
    let inner = MemStore::new();
    let s = FailingStore {
        inner: inner.clone(),
        ok: 20,
        puts: Default::default(),
    };
    let err = Version::from_records(&s, text_records(3000, "fail"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Io(_)), "{err}");
    for cid in inner.list().await.unwrap() {
        let block = inner.get(&cid).await.unwrap();
        assert!(
            oai_data::dataset::Manifest::decode(&block).is_err(),
            "a manifest was written although its chunks were not all stored"
        );
    }
    let s = FailingStore {
        inner: MemStore::new(),
        ok: 3,
        puts: Default::default(),
    };
    let err = unixfs::import_bytes(&s, &pattern(3 << 20), Default::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Io(_)), "{err}");
}

fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[tokio::test]
async fn importing_more_than_fits_in_the_budget_keeps_memory_bounded() {
    // 1 GiB streamed through the importer must not raise the process's peak RSS by more than
    // 256 MiB (it holds a few 256 KiB chunks and the link lists). The peak is a high-water
    // mark shared with other tests, so this can only under-report growth, never fail falsely.
    let Some(before) = peak_rss_bytes() else {
        eprintln!("SKIP: no /proc/self/status on this platform");
        return;
    };
    let len = 1u64 << 30;
    let store = CountingStore::default();
    let r = unixfs::import(&store, PatternReader { pos: 0, len }, Default::default())
        .await
        .unwrap();
    assert_eq!(r.size, len);
    assert!(store.0.load(std::sync::atomic::Ordering::Relaxed) > len);
    let growth = peak_rss_bytes().unwrap().saturating_sub(before);
    assert!(growth < 256 << 20, "peak RSS grew by {} MiB", growth >> 20);
}

#[tokio::test]
async fn missing_or_tampered_file_blocks_are_typed_errors() {
    let s = MemStore::new();
    let r = unixfs::import_bytes(&s, &pattern(600_000), Default::default())
        .await
        .unwrap();
    let root = s.get(&r.root).await.unwrap();
    let kids = car::links(&r.root, &root).unwrap();
    s.delete(&kids[1]).await.unwrap();
    assert!(
        matches!(unixfs::read_to_vec(&s, &r.root).await, Err(Error::NotFound(c)) if c == kids[1])
    );

    // a node that claims another size for a child is a truncated file
    let mut node = unixfs::pb::PbNode::decode(&root).unwrap();
    let mut data = unixfs::pb::UnixFsData::decode(node.data.as_ref().unwrap()).unwrap();
    data.blocksizes[0] += 1;
    node.data = Some(data.encode());
    let fake = s
        .put(ids::DAG_PB, Bytes::from(node.encode()))
        .await
        .unwrap();
    assert!(matches!(
        unixfs::read_to_vec(&s, &fake).await,
        Err(Error::Truncated { .. })
    ));

    // an unknown codec
    let odd = cid::Cid::new_v1(0x300, ids::multihash(&oai_core::Digest::of(b"x")));
    assert!(matches!(
        unixfs::read_to_vec(&s, &odd).await,
        Err(Error::UnknownCodec(0x300)) | Err(Error::NotFound(_))
    ));
}

#[tokio::test]
async fn car_round_trip_and_bad_cars() {
    let s = MemStore::new();
    let data = pattern(1 << 20);
    let r = unixfs::import_bytes(&s, &data, Default::default())
        .await
        .unwrap();
    let mut buf = Vec::new();
    let n = car::export(&s, &r.root, &mut buf).await.unwrap();
    assert_eq!(n, 5); // root + 4 raw leaves

    let t = MemStore::new();
    assert_eq!(car::import(&t, &buf[..]).await.unwrap(), vec![r.root]);
    assert_eq!(unixfs::read_to_vec(&t, &r.root).await.unwrap(), data);

    // truncated
    let cut = &buf[..buf.len() - 10];
    assert!(matches!(
        car::import(&MemStore::new(), cut).await,
        Err(Error::Truncated { .. })
    ));
    // a flipped byte inside a block
    let mut bad = buf.clone();
    let at = bad.len() - 100;
    bad[at] ^= 0xff;
    assert!(matches!(
        car::import(&MemStore::new(), &bad[..]).await,
        Err(Error::CorruptBlock { .. })
    ));
    // garbage header
    assert!(matches!(
        car::import(&MemStore::new(), &[3u8, 1, 2, 3][..]).await,
        Err(Error::Malformed { .. })
    ));
}

fn ipfs_car() -> Option<String> {
    let p = std::env::var("OAI_IPFS_CAR").ok();
    if p.is_none() {
        skip_without("OAI_IPFS_CAR", "npm ipfs-car's CLI; .ci/run sets it");
    }
    p
}

#[tokio::test]
async fn ipfs_car_unpacks_our_cars_and_we_import_its_cars() {
    let Some(bin) = ipfs_car() else { return };
    let dir = tempfile::tempdir().unwrap();
    let s = MemStore::new();
    for n in [100usize, 300_000, 2_500_000] {
        let data = pattern(n);
        let r = unixfs::import_bytes(&s, &data, Default::default())
            .await
            .unwrap();
        let car_path = dir.path().join(format!("ours-{n}.car"));
        let mut f = tokio::fs::File::create(&car_path).await.unwrap();
        car::export(&s, &r.root, &mut f).await.unwrap();
        drop(f);
        let out = dir.path().join(format!("unpacked-{n}"));
        let st = std::process::Command::new(&bin)
            .args([
                "unpack",
                car_path.to_str().unwrap(),
                "--output",
                out.to_str().unwrap(),
            ])
            .status()
            .unwrap();
        assert!(st.success(), "ipfs-car unpack failed for {n} bytes");
        assert_eq!(
            std::fs::read(&out).unwrap(),
            data,
            "ipfs-car unpacked other bytes"
        );
        let roots = std::process::Command::new(&bin)
            .args(["roots", car_path.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&roots.stdout).trim(),
            r.root.to_string()
        );

        // and the other way round: a CAR packed by ipfs-car imports and reads back
        let src = dir.path().join(format!("src-{n}.bin"));
        std::fs::write(&src, &data).unwrap();
        let theirs = dir.path().join(format!("theirs-{n}.car"));
        let st = std::process::Command::new(&bin)
            .args([
                "pack",
                src.to_str().unwrap(),
                "--no-wrap",
                "--output",
                theirs.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(st.status.success(), "ipfs-car pack failed");
        let t = MemStore::new();
        let roots = car::import(&t, tokio::fs::File::open(&theirs).await.unwrap())
            .await
            .unwrap();
        assert_eq!(roots.len(), 1);
        assert_eq!(unixfs::read_to_vec(&t, &roots[0]).await.unwrap(), data);
        if n <= 256 * 1024 {
            assert_eq!(
                roots[0], r.root,
                "same CID as ipfs-car for files within one chunk"
            );
        }
    }

    // a dataset version (dag-cbor blocks): ipfs-car lists exactly the blocks we wrote
    let v = Version::from_records(&s, text_records(400, "car"))
        .await
        .unwrap();
    let car_path = dir.path().join("dataset.car");
    let mut f = tokio::fs::File::create(&car_path).await.unwrap();
    let written = car::export(&s, &v.cid(), &mut f).await.unwrap();
    drop(f);
    let out = std::process::Command::new(&bin)
        .args(["blocks", car_path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut listed: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    listed.sort();
    let mut ours: Vec<String> = gc::reachable(&s, &[v.cid()])
        .await
        .unwrap()
        .into_iter()
        .map(|(c, _)| c.to_string())
        .collect();
    ours.sort();
    assert_eq!(listed.len() as u64, written);
    assert_eq!(listed, ours);
}

#[tokio::test]
async fn dataset_versions_round_trip_through_car() {
    let s = MemStore::new();
    let v = Version::from_records(&s, text_records(300, "rt"))
        .await
        .unwrap();
    let mut ch = ChangeSet::default();
    ch.replace(&s, 7, Record::Bytes(vec![1, 2, 3]))
        .await
        .unwrap();
    let v2 = v.apply(&s, &ch).await.unwrap();
    let mut buf = Vec::new();
    car::export(&s, &v2.cid(), &mut buf).await.unwrap();
    let t = MemStore::new();
    assert_eq!(car::import(&t, &buf[..]).await.unwrap(), vec![v2.cid()]);
    let back = Version::open(&t, &v2.cid()).await.unwrap();
    assert_eq!(
        back.records(&t).await.unwrap(),
        v2.records(&s).await.unwrap()
    );
    // history travels with it
    assert_eq!(Version::open(&t, &v.cid()).await.unwrap().root(), v.root());
}

// ---------- datasets ----------

#[tokio::test]
async fn build_open_read_and_prove() {
    let s = MemStore::new();
    let recs = text_records(500, "a");
    let v = Version::from_records(&s, recs.clone()).await.unwrap();
    assert_eq!(v.len(), 500);
    assert!(
        v.chunks().len() > 3,
        "content-defined chunks: {}",
        v.chunks().len()
    );
    let opened = Version::open(&s, &v.cid()).await.unwrap();
    assert_eq!(opened, v);
    assert_eq!(opened.records(&s).await.unwrap(), recs);
    for i in [0u64, 1, 250, 499] {
        let (r, cid, proof) = v.prove(&s, i).await.unwrap();
        assert_eq!(r, recs[i as usize]);
        assert_eq!(cid, r.cid());
        assert!(proof.verify_cid(&cid, &v.root()));
        assert!(!proof.verify_cid(&Record::Text("other".into()).cid(), &v.root()));
        let mut wrong_index = proof.clone();
        wrong_index.index += 1;
        assert!(!wrong_index.verify_cid(&cid, &v.root()));
        assert!(proof.in_chunk.siblings.len() + proof.in_version.siblings.len() <= 2 * 9 + 2);
    }
    assert!(matches!(
        v.record(&s, 500).await,
        Err(Error::IndexOutOfRange { .. })
    ));
}

#[tokio::test]
async fn large_datasets_get_index_pages_and_behave_the_same() {
    // tiny chunks make thousands of pages, so the manifest needs two index levels
    let s = MemStore::new();
    let tiny = Chunking {
        min: 8,
        avg: 24,
        max: 64,
    };
    let recs: Vec<Record> = (0..12_000).map(|i| Record::Text(format!("r{i}"))).collect();
    let v = build(&s, tiny, recs.clone()).await;
    let m = v.manifest();
    assert!(
        m.depth >= 1,
        "depth {} with {} chunks",
        m.depth,
        v.chunks().len()
    );
    assert!(m.pages.len() <= oai_data::dataset::manifest::MAX_TOP_PAGES);
    let opened = Version::open(&s, &v.cid()).await.unwrap();
    assert_eq!(opened, v);
    assert_eq!(opened.records(&s).await.unwrap(), recs);
    let (_, cid, proof) = v.prove(&s, 11_111).await.unwrap();
    assert!(proof.verify_cid(&cid, &v.root()));

    // an edit rewrites one path of pages, not the index
    let before = s.total_bytes();
    let mut ch = ChangeSet::default();
    ch.replace(&s, 6000, Record::Text("edited".into()))
        .await
        .unwrap();
    let v2 = v.apply(&s, &ch).await.unwrap();
    let added = s.total_bytes() - before;
    assert!(added < 4096, "one edit cost {added} bytes");
    assert_eq!(
        v2.record(&s, 6000).await.unwrap(),
        Record::Text("edited".into())
    );

    // a CAR carries the index pages too
    let mut buf = Vec::new();
    car::export(&s, &v2.cid(), &mut buf).await.unwrap();
    let t = MemStore::new();
    car::import(&t, &buf[..]).await.unwrap();
    assert_eq!(
        Version::open(&t, &v2.cid()).await.unwrap().root(),
        v2.root()
    );

    // an index page that lies about its chunk count is caught
    let mut lying = m.clone();
    lying.pages[0].chunks += 1;
    let bad = s
        .put(ids::DAG_CBOR, Bytes::from(lying.encode()))
        .await
        .unwrap();
    assert!(matches!(
        Version::open(&s, &bad).await,
        Err(Error::Malformed { .. })
    ));
}

#[tokio::test]
async fn tensors_are_checked() {
    assert!(Tensor::from_f32(vec![2, 2], &[1.0, 2.0, 3.0]).is_err());
    let t = Tensor::from_f32(vec![2, 2], &[1.0, 2.0, 3.0, 4.0]).unwrap();
    let r = Record::Labeled { input: t, label: 3 };
    assert_eq!(Record::decode(&r.encode()).unwrap(), r);
}

#[tokio::test]
async fn malformed_manifest_and_tampered_chunk_are_typed_errors() {
    let s = MemStore::new();
    let v = Version::from_records(&s, text_records(50, "m"))
        .await
        .unwrap();
    let garbage = s
        .put(ids::DAG_CBOR, Bytes::from_static(&[0xa1, 0x61, 0x78, 0x01]))
        .await
        .unwrap();
    assert!(matches!(
        Version::open(&s, &garbage).await,
        Err(Error::Malformed { .. })
    ));
    let raw = s.put(ids::RAW, Bytes::from_static(b"x")).await.unwrap();
    assert!(matches!(
        Version::open(&s, &raw).await,
        Err(Error::Malformed { .. })
    ));

    // a manifest whose root lies about its pages
    let mut m = v.manifest().clone();
    m.root = oai_core::Digest::of(b"lie");
    let lying = s.put(ids::DAG_CBOR, Bytes::from(m.encode())).await.unwrap();
    assert!(matches!(
        Version::open(&s, &lying).await,
        Err(Error::Malformed { .. })
    ));

    // a chunk replaced in the store is caught
    let c = v.chunks()[0].cid;
    s.corrupt_for_test(&c, Bytes::from_static(b"\x80"));
    assert!(matches!(
        v.record(&s, 0).await,
        Err(Error::CorruptBlock { .. })
    ));
}

#[tokio::test]
async fn forks_share_chunks_and_cas_protects_heads() {
    let s = MemStore::new();
    let repo = Repo::new(s.clone(), s.clone());
    let v = Version::from_records(&s, text_records(2000, "f"))
        .await
        .unwrap();
    repo.set_head("wiki", None, &v).await.unwrap();
    let before = s.total_bytes();
    let forked = repo.fork("wiki", "wiki-es").await.unwrap();
    assert_eq!(forked.cid(), v.cid());
    assert_eq!(s.total_bytes(), before, "a fork costs no bytes");

    let mut ch = ChangeSet::default();
    ch.replace(&s, 1000, Record::Text("edited".into()))
        .await
        .unwrap();
    let next = repo.commit("wiki-es", &ch).await.unwrap();
    let added = s.total_bytes() - before;
    assert!(
        added < v.manifest().bytes / 10,
        "one edit added {added} bytes"
    );
    assert_eq!(next.manifest().parent, Some(v.cid()));
    let d = v.diff(&s, &next).await.unwrap();
    assert_eq!(d.removed.len(), 1);
    assert_eq!(d.added, vec![(1000, Record::Text("edited".into()).cid())]);

    // a stale writer loses the CAS and nothing is overwritten
    match repo.set_head("wiki-es", Some(v.cid()), &v).await {
        Err(Error::CasConflict(c)) => assert_eq!(c.actual, Some(next.cid())),
        other => panic!("expected CAS conflict, got {other:?}"),
    }
    assert!(matches!(
        repo.fork("wiki", "wiki-es").await,
        Err(Error::CasConflict(_))
    ));
    assert_eq!(repo.list().await.unwrap().len(), 2);

    // GC after dropping the original head keeps everything the fork needs
    s.compare_and_swap("datasets/wiki", Some(v.cid()), None)
        .await
        .unwrap();
    let orphan = s
        .put(ids::RAW, Bytes::from_static(b"orphan"))
        .await
        .unwrap();
    let report = gc::collect_refs(&s, &s).await.unwrap();
    assert!(report.deleted >= 1);
    assert!(!s.has(&orphan).await.unwrap());
    let head = repo.head("wiki-es").await.unwrap().unwrap();
    assert_eq!(head.records(&s).await.unwrap().len(), 2000);
    // the parent is still reachable through the fork's history
    assert_eq!(Version::open(&s, &v.cid()).await.unwrap().len(), 2000);
}

#[tokio::test]
async fn malformed_change_sets_are_refused() {
    let s = MemStore::new();
    let v = Version::from_records(&s, text_records(10, "cs"))
        .await
        .unwrap();
    let unsorted = ChangeSet {
        removed: vec![3, 3],
        inserted: vec![],
    };
    assert!(matches!(
        v.apply(&s, &unsorted).await,
        Err(Error::InvalidArgument(_))
    ));
    let past_end = ChangeSet {
        removed: vec![10],
        inserted: vec![],
    };
    assert!(matches!(
        v.apply(&s, &past_end).await,
        Err(Error::IndexOutOfRange { index: 10, len: 10 })
    ));
    let mut far_insert = ChangeSet::default();
    far_insert
        .insert(&s, 12, Record::Text("x".into()))
        .await
        .unwrap();
    assert!(matches!(
        v.apply(&s, &far_insert).await,
        Err(Error::InvalidArgument(_))
    ));
}

#[tokio::test]
async fn proposals_verify_and_tampering_is_caught() {
    let s = MemStore::new();
    let v = Version::from_records(&s, text_records(300, "p"))
        .await
        .unwrap();
    let mut ch = ChangeSet::default();
    ch.remove(3);
    ch.insert(&s, 10, Record::Text("new".into())).await.unwrap();
    let (p, pcid, result) = Proposal::create(&s, &v, &ch, "add a record").await.unwrap();
    let loaded = Proposal::load(&s, &pcid).await.unwrap();
    assert_eq!(loaded, p);
    assert_eq!(loaded.verify(&s).await.unwrap().cid(), result.cid());
    let mut lie = p.clone();
    lie.result_root = v.root();
    assert!(matches!(lie.verify(&s).await, Err(Error::Verification(_))));
}

#[tokio::test]
async fn sampler_is_deterministic_and_batches_verify() {
    let s = MemStore::new();
    let v = Version::from_records(&s, text_records(103, "s"))
        .await
        .unwrap();
    let mut a = Sampler::for_version(&v, Seed::from_u64(42), 10).unwrap();
    let mut b = Sampler::for_version(&v, Seed::from_u64(42), 10).unwrap();
    assert_eq!(a.steps_per_epoch(), 10);
    let mut seen = std::collections::BTreeSet::new();
    for step in 0..10 {
        let i = a.indices(0, step).unwrap();
        assert_eq!(i, b.indices(0, step).unwrap());
        seen.extend(i);
    }
    assert_eq!(seen.len(), 100, "an epoch draws each index at most once");
    assert_ne!(a.indices(1, 0).unwrap(), a.indices(0, 0).unwrap());
    let mut c = Sampler::for_version(&v, Seed::from_u64(43), 10).unwrap();
    assert_ne!(c.indices(0, 0).unwrap(), a.indices(0, 0).unwrap());
    // pinned: the permutation is part of the log format and must never change silently
    let pinned = Sampler::new(oai_core::Digest::of(b"root"), 10, Seed::from_u64(1), 3)
        .unwrap()
        .permutation(0);
    assert_eq!(pinned, vec![8, 4, 9, 1, 6, 2, 7, 3, 5, 0]);

    let batch = a.batch(&s, &v, 2, 3).await.unwrap();
    batch.verify(&v.root(), &mut b).unwrap();
    // the batch carries its records: those its CIDs name, as one proof at a time gives them
    assert_eq!(batch.data.len(), batch.indices.len());
    for (i, (record, cid)) in batch
        .indices
        .iter()
        .zip(batch.data.iter().zip(&batch.records))
    {
        let (one, one_cid, one_proof) = v.prove(&s, *i).await.unwrap();
        assert_eq!((record, cid), (&one, &one_cid));
        assert!(batch.proofs.contains(&one_proof));
    }
    let mut bad = batch.clone();
    bad.records.swap(0, 1);
    assert!(matches!(
        bad.verify(&v.root(), &mut b),
        Err(Error::Verification(_))
    ));
    assert!(Sampler::for_version(&v, Seed::from_u64(1), 0).is_err());
}

// ---------- laws (proptest) ----------

#[derive(Debug, Clone)]
enum Edit {
    Remove(usize),
    Insert(usize, String),
    Replace(usize, String),
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    prop::collection::vec(
        prop_oneof![
            any::<usize>().prop_map(Edit::Remove),
            (any::<usize>(), "[a-z]{0,40}").prop_map(|(i, s)| Edit::Insert(i, s)),
            (any::<usize>(), "[a-z]{0,40}").prop_map(|(i, s)| Edit::Replace(i, s)),
        ],
        0..12,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn diff_then_apply_gives_the_other_version(n in 0usize..400, es in edits()) {
        rt().block_on(async {
            let s = MemStore::new();
            let small = Chunking { min: 64, avg: 512, max: 4096 };
            let base_recs = text_records(n, "law");
            let a = build(&s, small, base_recs.clone()).await;

            let mut recs = base_recs;
            for e in es {
                match e {
                    Edit::Remove(i) if !recs.is_empty() => { let i = i % recs.len(); recs.remove(i); }
                    Edit::Insert(i, t) => { let i = i % (recs.len() + 1); recs.insert(i, Record::Text(t)); }
                    Edit::Replace(i, t) if !recs.is_empty() => { let i = i % recs.len(); recs[i] = Record::Text(t); }
                    _ => {}
                }
            }
            let target = build(&s, small, recs.clone()).await;

            let changes = a.changes_to(&s, &target).await.unwrap();
            let applied = a.apply(&s, &changes).await.unwrap();
            prop_assert_eq!(applied.root(), target.root());
            prop_assert_eq!(applied.records(&s).await.unwrap(), recs);
            prop_assert!(a.diff(&s, &a).await.unwrap() == Default::default());
            // the same records always give the same root (parents aside)
            let again = Version::from_records(&s, Vec::<Record>::new()).await.unwrap();
            prop_assert_eq!(again.len(), 0);
            Ok(())
        })?;
    }

    #[test]
    fn import_export_round_trip(len in 0usize..700_000, profile in prop_oneof![
        Just(unixfs::Profile::KuboCidV1), Just(unixfs::Profile::UnixfsV0_2015), Just(unixfs::Profile::UnixfsV1_2025)]) {
        rt().block_on(async {
            let s = MemStore::new();
            let data: Vec<u8> = (0..len).map(|i| (i * 7 % 256) as u8).collect();
            let r = unixfs::import_bytes(&s, &data, profile).await.unwrap();
            prop_assert_eq!(r.size, len as u64);
            let mut buf = Vec::new();
            car::export(&s, &r.root, &mut buf).await.unwrap();
            let t = MemStore::new();
            prop_assert_eq!(car::import(&t, &buf[..]).await.unwrap(), vec![r.root]);
            prop_assert_eq!(unixfs::read_to_vec(&t, &r.root).await.unwrap(), data);
            Ok(())
        })?;
    }

    #[test]
    fn proving_many_gives_what_proving_each_gives(n in 1usize..400, picks in proptest::collection::vec(any::<u64>(), 1..40)) {
        rt().block_on(async {
            let s = MemStore::new();
            let small = Chunking { min: 64, avg: 256, max: 1024 };
            let v = build(&s, small, text_records(n, "pm")).await;
            let indices: Vec<u64> = picks.iter().map(|p| p % n as u64).collect();
            let many = v.prove_many(&s, &indices).await.unwrap();
            prop_assert_eq!(many.len(), indices.len());
            for (i, got) in indices.iter().zip(many) {
                prop_assert_eq!(got, v.prove(&s, *i).await.unwrap());
            }
            prop_assert!(v.prove_many(&s, &[n as u64]).await.is_err());
            prop_assert!(n < 100 || v.chunks().len() > 2, "indices over several chunks");
            Ok(())
        })?;
    }

    #[test]
    fn record_proofs_verify_and_any_flipped_bit_fails(n in 1usize..300, pick in any::<u64>(), bit in 0usize..256) {
        rt().block_on(async {
            let s = MemStore::new();
            let v = Version::from_records(&s, text_records(n, "pf")).await.unwrap();
            let i = pick % n as u64;
            let (r, cid, proof) = v.prove(&s, i).await.unwrap();
            prop_assert!(proof.verify_cid(&cid, &v.root()));
            let d = ids::digest_of(&r.cid()).unwrap();
            let mut root = v.root();
            root.0[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(!proof.verify(&d, &root));
            let mut p = proof.clone();
            p.chunk_root.0[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(!p.verify(&d, &v.root()));
            let mut dd = d;
            dd.0[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(!proof.verify(&dd, &v.root()));
            Ok(())
        })?;
    }
}

/// A UnixFS node whose children's block sizes add up past `u64::MAX` (a peer's crafted DAG):
/// reading it is a typed error, not an overflow (a panic in debug builds).
#[tokio::test]
async fn a_unixfs_node_whose_sizes_overflow_is_refused() {
    use oai_data::unixfs::pb::{DataType, PbLink, PbNode, UnixFsData};
    let s = MemStore::new();
    let leaf = s.put(ids::RAW, Bytes::from_static(b"x")).await.unwrap();
    let node = PbNode {
        links: vec![
            PbLink {
                hash: leaf.to_bytes(),
                name: String::new(),
                tsize: 1,
            };
            2
        ],
        data: Some(
            UnixFsData {
                kind: DataType::File,
                data: None,
                filesize: Some(u64::MAX),
                blocksizes: vec![u64::MAX, 1],
            }
            .encode(),
        ),
    };
    let root = s.put(ids::DAG_PB, node.encode().into()).await.unwrap();
    let read = unixfs::read_to_vec(&s, &root).await;
    assert!(matches!(read, Err(Error::Malformed { .. })), "{read:?}");
}

/// A DAG bomb: `levels` nodes over one 1 KiB leaf, each linking the node below twice; the file
/// it declares doubles with every level (2^levels KiB from levels + 1 small blocks).
async fn dag_bomb(s: &MemStore, levels: u32) -> oai_core::Cid {
    let mut below = s.put(ids::RAW, Bytes::from(vec![7u8; 1024])).await.unwrap();
    let mut size = 1024u64;
    for _ in 0..levels {
        let node = unixfs::pb::file_node(&[(below, size, size), (below, size, size)]);
        below = s.put(ids::DAG_PB, node.into()).await.unwrap();
        size *= 2;
    }
    below
}

/// A peer's file that links one child many times expands exponentially (here 40 levels over a
/// 1 KiB leaf: a 1 PiB file from 41 blocks); reading it whole would never end. A bounded read
/// refuses it from its root block, and reads a file within its limit as before.
#[tokio::test]
async fn a_dag_bomb_is_refused_from_its_root_block() {
    let s = MemStore::new();
    let bomb = dag_bomb(&s, 40).await;
    assert_eq!(unixfs::declared_size(&s, &bomb).await.unwrap(), 1 << 50);
    let read = unixfs::read_to_vec_within(&s, &bomb, "checkpoint", 1 << 20).await;
    assert!(
        matches!(
            read,
            Err(Error::TooLarge {
                what: "checkpoint",
                size: 1_125_899_906_842_624,
                limit: 1_048_576
            })
        ),
        "{read:?}"
    );
    // a small bomb within the limit reads as the file it declares
    let small = dag_bomb(&s, 3).await;
    let bytes = unixfs::read_to_vec_within(&s, &small, "file", 8 * 1024)
        .await
        .unwrap();
    assert_eq!(bytes, vec![7u8; 8 * 1024]);
    let read = unixfs::read_to_vec_within(&s, &small, "file", 8 * 1024 - 1).await;
    assert!(matches!(read, Err(Error::TooLarge { .. })), "{read:?}");
}

/// Links to empty children cost visits without bytes: a DAG of them could keep a reader busy
/// for any time reading nothing. No importer writes them; they are refused.
#[tokio::test]
async fn a_unixfs_node_that_links_empty_children_is_refused() {
    use oai_data::unixfs::pb::{DataType, PbLink, PbNode, UnixFsData};
    let s = MemStore::new();
    let empty = s.put(ids::RAW, Bytes::new()).await.unwrap();
    let node = PbNode {
        links: vec![
            PbLink {
                hash: empty.to_bytes(),
                name: String::new(),
                tsize: 0,
            };
            1_000
        ],
        data: Some(
            UnixFsData {
                kind: DataType::File,
                data: None,
                filesize: Some(0),
                blocksizes: vec![0; 1_000],
            }
            .encode(),
        ),
    };
    let root = s.put(ids::DAG_PB, node.encode().into()).await.unwrap();
    let read = unixfs::read_to_vec(&s, &root).await;
    assert!(
        matches!(&read, Err(Error::Malformed { reason, .. }) if reason.contains("0 bytes")),
        "{read:?}"
    );
}
