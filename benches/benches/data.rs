//! Benches of oai-data. Before criterion runs, prints two side-by-side reports:
//! - import throughput of 100 MB (`OAI_BENCH_MB` to change) next to plain SHA-256 and BLAKE3
//!   of the same bytes, measured in the same run, with the import/SHA-256 ratio;
//! - fork cost: a 100 MB dataset, forked, 1% of its records replaced spread over it: the new
//!   bytes the fork needs, next to what fixed 256 KiB chunking of the same bytes would store.
//!
//! Run: `cargo bench -p oai-benches --bench data`

use bytes::Bytes;
use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use oai_benches::report::{self, Row, Side};
use oai_benches::runtime;
use oai_core::seed::RngCore;
use oai_core::Cid;
use oai_core::Seed;
use oai_data::dataset::{Builder, ChangeSet, Chunking, DType, Record, Sampler, Tensor, Version};
use oai_data::store::Block;
use oai_data::{gc, unixfs, BlockStore, MemStore};
use sha2::Digest as _;
use std::hint::black_box;
use std::time::{Duration, Instant};

fn megabytes() -> usize {
    std::env::var("OAI_BENCH_MB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100)
}

fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; n];
    Seed::from_u64(seed).rng().fill_bytes(&mut v);
    v
}

fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            black_box(f());
            t.elapsed()
        })
        .min()
        .expect("at least one run")
}

fn import_report() {
    let rt = runtime();
    let data = random_bytes(megabytes() << 20, 1);
    let mb = data.len() as f64 / 1e6;
    let sha = best_of(3, || sha2::Sha256::digest(&data));
    let b3 = best_of(3, || blake3::hash(&data));
    let import = |p: unixfs::Profile| {
        best_of(3, || {
            rt.block_on(unixfs::import_bytes(&MemStore::new(), &data, p))
                .expect("import")
        })
    };
    let discard = |p: unixfs::Profile| {
        best_of(3, || {
            rt.block_on(unixfs::import_bytes(&Discard, &data, p))
                .expect("import")
        })
    };
    let rows = [
        ("sha2-256 (plain)", sha),
        ("blake3 (plain)", b3),
        ("kubo-cidv1 (default)", import(unixfs::Profile::KuboCidV1)),
        ("unixfs-v0-2015", import(unixfs::Profile::UnixfsV0_2015)),
        ("unixfs-v1-2025", import(unixfs::Profile::UnixfsV1_2025)),
        (
            "kubo-cidv1, blocks discarded",
            discard(unixfs::Profile::KuboCidV1),
        ),
        (
            "unixfs-v1-2025, blocks discarded",
            discard(unixfs::Profile::UnixfsV1_2025),
        ),
    ];
    println!("\n== import throughput, {mb:.0} MB of random bytes (best of 3) ==");
    println!("(imports keep every block in a MemStore unless discarded; the gap is page faults)");
    for (name, d) in rows {
        println!(
            "{name:<30} {:>8.0} MB/s   {:>5.1}% of sha2-256",
            mb / d.as_secs_f64(),
            100.0 * sha.as_secs_f64() / d.as_secs_f64()
        );
        if !name.ends_with("(plain)") {
            report::record(Row::new(
                "data",
                format!("import of {mb:.0} MB of random bytes (best of 3)"),
                Side::new(format!("import, {name}"), mb / d.as_secs_f64(), "MB/s"),
                Side::new("sha2-256 of the bytes", mb / sha.as_secs_f64(), "MB/s"),
                true,
            ));
        }
    }
}

/// A store that drops what it is given: measures the importer alone (hashing, DAG building).
#[derive(Debug, Clone, Copy)]
struct Discard;

#[async_trait::async_trait]
impl BlockStore for Discard {
    async fn put_block(&self, block: Block) -> oai_data::Result<()> {
        black_box(block);
        Ok(())
    }
    async fn get(&self, cid: &Cid) -> oai_data::Result<Bytes> {
        Err(oai_data::Error::NotFound(*cid))
    }
    async fn has(&self, _: &Cid) -> oai_data::Result<bool> {
        Ok(false)
    }
    async fn delete(&self, _: &Cid) -> oai_data::Result<()> {
        Ok(())
    }
    async fn list(&self) -> oai_data::Result<Vec<Cid>> {
        Ok(vec![])
    }
}

fn tensor_record(size: usize, seed: u64) -> Record {
    Record::Tensor(
        Tensor::new(DType::U8, vec![size as u64], random_bytes(size, seed)).expect("tensor"),
    )
}

fn stream_of(records: &[Record]) -> Vec<u8> {
    records.iter().flat_map(|r| r.encode()).collect()
}

fn fork_cost_report() {
    let rt = runtime();
    let total = megabytes() << 20;
    println!(
        "\n== fork cost: {} MB dataset, 1% of records replaced (every 100th) ==",
        total >> 20
    );
    println!(
        "{:>12} {:>10} {:>8} {:>8} {:>14} {:>9} {:>16} {:>9} {:>8}",
        "record size",
        "chunk avg",
        "records",
        "chunks",
        "oai new bytes",
        "% of data",
        "fixed-256K new",
        "% of data",
        "apply"
    );
    let small_chunks = Chunking {
        min: 256,
        avg: 1 << 10,
        max: 16 << 10,
    };
    for (size, chunking) in [
        (1 << 10, Chunking::default()),
        (1 << 10, small_chunks),
        (4 << 10, Chunking::default()),
        (16 << 10, Chunking::default()),
    ] {
        let n = total / size;
        let base: Vec<Record> = (0..n).map(|i| tensor_record(size, i as u64)).collect();
        let store = MemStore::new();
        let (v1, v2, edited, apply_time) = rt.block_on(async {
            let mut b = Builder::new(&store).chunking(chunking);
            for r in &base {
                b.push(r.clone()).await.expect("push");
            }
            let v1 = b.finish().await.expect("finish");
            let mut changes = ChangeSet::default();
            let mut edited = base.clone();
            for i in (0..n).step_by(100) {
                let r = tensor_record(size, (n + i) as u64);
                edited[i] = r.clone();
                changes.replace(&store, i as u64, r).await.expect("replace");
            }
            let t = Instant::now();
            let v2 = v1.apply(&store, &changes).await.expect("apply");
            (v1, v2, edited, t.elapsed())
        });
        let sum = |v: &Version| -> u64 {
            rt.block_on(gc::reachable(&store, &[v.cid()]))
                .expect("reachable")
                .iter()
                .map(|(_, s)| s)
                .sum()
        };
        let new_bytes = sum(&v2) - sum(&v1);
        let data_bytes = v1.manifest().bytes as f64;

        let fixed = MemStore::new();
        rt.block_on(unixfs::import_bytes(
            &fixed,
            &stream_of(&base),
            Default::default(),
        ))
        .expect("import");
        let before = fixed.total_bytes();
        rt.block_on(unixfs::import_bytes(
            &fixed,
            &stream_of(&edited),
            Default::default(),
        ))
        .expect("import");
        let fixed_new = fixed.total_bytes() - before;
        println!(
            "{:>10} B {:>8} B {:>8} {:>8} {:>14} {:>8.2}% {:>16} {:>8.2}% {:>7.0?}",
            size,
            chunking.avg,
            n,
            v1.chunks().len(),
            new_bytes,
            100.0 * new_bytes as f64 / data_bytes,
            fixed_new,
            100.0 * fixed_new as f64 / data_bytes,
            apply_time
        );
        report::record(Row::new(
            "data",
            format!(
                "fork of a {} MB dataset, 1% of its {size} B records replaced (chunk avg {} B)",
                total >> 20,
                chunking.avg
            ),
            Side::new("new bytes the fork stores", new_bytes as f64, "bytes"),
            Side::new("fixed 256 KiB chunks, new bytes", fixed_new as f64, "bytes"),
            false,
        ));
    }
    println!("(oai new bytes = blocks reachable from the fork's head and not from its parent; default chunking min 512 B / avg 4 KiB / max 64 KiB; the 1 KiB avg row uses min 256 B / max 16 KiB)\n");
}

fn import_benches(c: &mut Criterion) {
    let rt = runtime();
    let data = random_bytes(16 << 20, 2);
    let mut g = c.benchmark_group("hash_vs_import_16MiB");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(10);
    g.bench_function("sha2-256", |b| b.iter(|| sha2::Sha256::digest(&data)));
    g.bench_function("blake3", |b| b.iter(|| blake3::hash(&data)));
    for p in [unixfs::Profile::KuboCidV1, unixfs::Profile::UnixfsV1_2025] {
        g.bench_with_input(BenchmarkId::new("import", format!("{p:?}")), &p, |b, p| {
            b.iter(|| {
                rt.block_on(unixfs::import_bytes(&MemStore::new(), &data, *p))
                    .expect("import")
            })
        });
    }
    g.finish();
}

fn dataset_benches(c: &mut Criterion) {
    let rt = runtime();
    let store = MemStore::new();
    let v = rt.block_on(async {
        let mut b = Builder::new(&store);
        for i in 0..20_000 {
            b.push(tensor_record(256, i)).await.expect("push");
        }
        b.finish().await.expect("finish")
    });
    let (_, cid, proof) = rt.block_on(v.prove(&store, 12_345)).expect("prove");
    let mut g = c.benchmark_group("dataset_20k_records");
    g.bench_function("prove", |b| {
        b.iter(|| {
            rt.block_on(v.prove(&store, black_box(12_345)))
                .expect("prove")
        })
    });
    g.bench_function("verify_proof", |b| {
        b.iter(|| proof.verify_cid(&cid, &v.root()))
    });
    let mut sampler = Sampler::for_version(&v, Seed::from_u64(1), 64).expect("sampler");
    g.bench_function("sampler_new_epoch_indices", |b| {
        let mut epoch = 0;
        b.iter(|| {
            epoch += 1;
            sampler.indices(epoch, 0).expect("indices")
        })
    });
    g.finish();
}

criterion_group!(benches, import_benches, dataset_benches);

fn main() {
    import_report();
    fork_cost_report();
    if report::recording() {
        return; // the report needs the side-by-side figures only
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
