//! UnixFS files and CAR archives, against real IPFS tools; crafted DAGs a peer could send.

use bytes::Bytes;
use oai_core::ids;
use oai_data::dataset::{ChangeSet, Record, Version};
use oai_data::{car, gc, unixfs, BlockStore, Error, MemStore};

use super::{pattern, skip_without, text_records};

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
