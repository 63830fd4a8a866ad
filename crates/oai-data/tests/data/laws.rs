//! The laws of fork, diff and apply, and of proofs (proptest).

use oai_core::ids;
use oai_data::dataset::{Chunking, Record, Version};
use oai_data::{car, unixfs, MemStore};
use proptest::prelude::*;

use super::{build, rt, text_records};

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
