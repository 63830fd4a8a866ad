//! Encodings: step records round trip (proptest), canonical state and specs, checkpoints
//! that Python's safetensors loads.

use super::*;

fn arb_digest() -> impl Strategy<Value = Digest> {
    any::<[u8; 32]>().prop_map(Digest)
}

fn arb_record() -> impl Strategy<Value = StepRecord> {
    (
        any::<u64>(),
        proptest::collection::vec(arb_digest(), 0..5),
        proptest::collection::vec(arb_digest(), 1..6),
        (arb_digest(), any::<[u8; 32]>()),
        (-1e6f32..1e6, 0f32..1e6, 0f64..10.0),
    )
        .prop_map(
            |(step, batch, tensors, (before, seed), (loss, grad_norm, lr))| StepRecord {
                step,
                prev: ids::cid_v1(ids::DAG_CBOR, &step.to_le_bytes()),
                epoch: step / 7,
                batch_step: step % 7,
                batch_root: log::batch_root(&batch),
                batch,
                dropout_seed: Seed(seed),
                lr,
                loss,
                grad_norm,
                weights_before: before,
                weights_after: MerkleTree::new(&tensors).root(),
                tensors,
                checkpoint: (step % 3 == 0).then(|| ids::cid_v1(ids::RAW, &step.to_le_bytes())),
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn log_records_round_trip_and_any_flipped_byte_is_detected(
        record in arb_record(),
        at in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let bytes = log::encode(&record).unwrap();
        let back: StepRecord = log::decode("step record", &bytes).unwrap();
        prop_assert_eq!(&back, &record);
        let cid = ids::cid_v1(ids::DAG_CBOR, &bytes);
        let mut flipped = bytes.clone();
        flipped[at.index(bytes.len())] ^= 1 << bit;
        // Either it no longer decodes, or it is another object with another CID: the
        // successor's `prev` link (or the summary's `head`) no longer names it.
        if let Ok(other) = log::decode::<StepRecord>("step record", &flipped) {
            prop_assert_ne!(ids::cid_v1(ids::DAG_CBOR, &log::encode(&other).unwrap()), cid);
        }
    }

    #[test]
    fn chains_verify_and_any_edit_is_caught(
        records in proptest::collection::vec(arb_record(), 1..8),
        pick in any::<prop::sample::Index>(),
        edit in 0u8..4,
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let store = MemStore::new();
            let spec = JobSpec {
                steps: records.len() as u64,
                checkpoint_every: 0,
                ..mlp_spec(ids::cid_v1(ids::DAG_CBOR, b"dataset"))
            };
            let header = LogHeader {
                format: log::LOG_FORMAT,
                spec: spec.put(&store).await.unwrap(),
                env: oai_train::ComputeEnv::detect(&CPU, Default::default()),
                params: (0..10).map(|i| format!("p{i}")).collect(),
                init: Digest::of(b"init"),
            };
            let mut records: Vec<StepRecord> = records
                .into_iter()
                .enumerate()
                .map(|(i, mut r)| {
                    r.step = i as u64;
                    r.tensors.resize(10, Digest::of(b"pad"));
                    // a record holds one batch entry per record of the spec's batch
                    r.batch.resize(spec.batch_size as usize, Digest::of(b"pad"));
                    r
                })
                .collect();
            // with checkpoints only at the end, only the last record commits one
            for r in &mut records {
                r.checkpoint = None;
            }
            records.last_mut().unwrap().checkpoint = Some(ids::cid_v1(ids::RAW, b"last"));
            let header_cid = store
                .put(ids::DAG_CBOR, log::encode(&header).unwrap().into())
                .await
                .unwrap();
            let good = rechain(&store, header_cid, &header, records.clone()).await;
            let v = VerifiedLog::load(&store, &good).await.unwrap();
            prop_assert_eq!(v.leaves.len(), records.len());
            let root = v.log.root;

            // Edit one record; the honest-looking re-chained log has another root, and keeping
            // the published root is a broken log.
            let i = pick.index(records.len());
            match edit {
                0 => records[i].loss += 1.0,
                1 => records[i].tensors[3] = Digest::of(b"edit"),
                2 => records[i].lr += 0.5,
                _ => records[i].batch[0] = Digest::of(b"extra"),
            }
            let edited = rechain(&store, header_cid, &header, records).await;
            let e = VerifiedLog::load(&store, &edited).await.unwrap();
            prop_assert_ne!(e.log.root, root);
            let lying = TrainingLog { root, ..e.log };
            let lying = put_log(&store, &lying).await;
            let is_broken = matches!(
                VerifiedLog::load(&store, &lying).await,
                Err(Error::BrokenLog { .. })
            );
            prop_assert!(is_broken);
            Ok(())
        })?;
    }
}

#[test]
fn state_and_spec_encodings_are_canonical() {
    let spec = mlp_spec(ids::cid_v1(ids::DAG_CBOR, b"d"));
    let bytes = spec.encode().unwrap();
    assert_eq!(JobSpec::decode(&bytes).unwrap(), spec);
    assert_eq!(spec.cid().unwrap(), ids::cid_v1(ids::DAG_CBOR, &bytes));
}

#[tokio::test]
async fn checkpoints_load_in_python_safetensors() {
    let python = match std::env::var("OAI_PYTHON") {
        Ok(p) => p,
        Err(_) if std::env::var_os("OAI_REQUIRE_REAL").is_some() => {
            panic!("OAI_PYTHON is not set and OAI_REQUIRE_REAL is")
        }
        Err(_) => {
            eprintln!("skipped: set OAI_PYTHON to a python with safetensors and numpy");
            return;
        }
    };
    let (store, spec) = lm_setup().await;
    let (_, summary) = train(&store, &spec).await;
    let cid = summary.checkpoints.last().unwrap().cid;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt.safetensors");
    // The file exactly as `ipfs cat CID` would give it.
    std::fs::write(
        &path,
        oai_data::unixfs::read_to_vec(&store, &cid).await.unwrap(),
    )
    .unwrap();
    let script = r#"
import json, sys
from safetensors import safe_open
from safetensors.numpy import load_file
tensors = load_file(sys.argv[1])
with safe_open(sys.argv[1], "np") as f:
    meta = f.metadata()
print(json.dumps({"meta": meta, "tensors": {k: [list(v.shape), str(v.dtype), v.ravel()[:4].tolist()] for k, v in tensors.items()}}))
"#;
    let out = Command::new(&python)
        .args(["-c", script, path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ck = Checkpoint::get(&store, &cid, &CPU).await.unwrap();
    let meta: serde_json::Value =
        serde_json::from_str(got["meta"]["oai"].as_str().unwrap()).unwrap();
    assert_eq!(meta["step"], spec.steps);
    let tensors = got["tensors"].as_object().unwrap();
    assert_eq!(tensors.len(), ck.params.len() + ck.optimizer.len());
    for (name, t) in ck.params.iter().chain(ck.optimizer.iter()) {
        let key = if ck.params.contains_key(name) {
            name.clone()
        } else {
            format!("optim/{name}")
        };
        let py = &tensors[&key];
        let dims: Vec<usize> = serde_json::from_value(py[0].clone()).unwrap();
        assert_eq!(dims, t.dims(), "{key}");
        assert_eq!(py[1], "float32");
        let first: Vec<f32> = t
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .into_iter()
            .take(4)
            .collect();
        // JSON text of an f32 value read back as f64, then rounded to f32: exact.
        let py_first: Vec<f64> = serde_json::from_value(py[2].clone()).unwrap();
        let py_first: Vec<f32> = py_first.iter().map(|v| *v as f32).collect();
        assert_eq!(py_first, first, "{key}");
    }
}
