//! Steps and specs: non-finite steps, bad specs, logs of another compute class, footprints.

use super::*;

/// A spec that diverges still makes a complete log: a step whose loss or gradient norm is not
/// finite is skipped (weights and optimiser state unchanged), logged with null for what was
/// not finite, and replayed, resumed and checked like any other; a log that calls a step
/// skipped while its weights changed, or that gives a skipped step a loss, is caught.
#[tokio::test]
async fn a_non_finite_step_is_skipped_logged_and_replayed() {
    let (store, mut spec) = mlp_setup().await;
    spec.optimizer = OptimizerSpec::Sgd {
        momentum: 0.0,
        weight_decay: 0.0,
    };
    spec.schedule = Schedule::Constant { lr: 1e30 };
    spec.grad_clip = None;
    let mut t = Trainer::new(store.clone(), spec.clone(), CPU)
        .await
        .unwrap();
    let mut reports = Vec::new();
    for _ in 0..6 {
        reports.push(t.step().await.unwrap());
    }
    assert!(
        reports.iter().any(StepReport::skipped),
        "lr 1e30 must blow up: {reports:?}"
    );
    let (log, summary) = t.publish().await.unwrap();
    assert_eq!(summary.steps, 6);
    let v = VerifiedLog::load(&store, &log).await.unwrap();
    let records = v.records(&store, ..).await.unwrap();
    let skipped: Vec<u64> = records
        .iter()
        .filter(|r| r.skipped())
        .map(|r| r.step)
        .collect();
    let first = skipped[0];
    for &s in &skipped {
        let r = &records[s as usize];
        assert_eq!(
            r.weights_after, r.weights_before,
            "a skipped step changes nothing"
        );
        assert!(reports[s as usize].skipped());
    }
    // null in the record's bytes, NaN when read
    let bytes = v.record_bytes(&store, first).await.unwrap();
    #[derive(serde::Deserialize)]
    struct Values {
        loss: Option<f32>,
        grad_norm: Option<f32>,
    }
    let values: Values = serde_ipld_dagcbor::from_slice(&bytes).unwrap();
    assert!(values.loss.is_none() || values.grad_norm.is_none());
    assert_eq!(
        records[first as usize].loss.to_bits(),
        log::NOT_FINITE.to_bits()
    );
    for step in [first, 5] {
        let out = replay_step(&log, step, &store).await.unwrap();
        assert!(out.is_match(), "step {step}: {out:?}");
    }
    let resumed = Trainer::resume(store.clone(), &log, CPU).await.unwrap();
    assert_eq!(resumed.step_index(), 6);

    // a step before the divergence called skipped: its weights changed, the log is broken
    let forged = forge(&store, &log, 0, |r| r.loss = f32::INFINITY).await;
    assert!(matches!(
        VerifiedLog::load(&store, &forged).await,
        Err(Error::BrokenLog { step: 0, .. })
    ));
    // a skipped step given a loss: replay names it
    let forged = forge(&store, &log, first, |r| r.loss = 1.0).await;
    let m = mismatch(&forged, first, &store, "a skipped step with a loss").await;
    assert_eq!((m.step, m.field), (first, Field::Loss));
    assert_eq!(m.replayed, "NaN");
}

#[tokio::test]
async fn bad_specs_are_refused() {
    let (store, spec) = mlp_setup().await;
    let json = spec.to_json();
    assert_eq!(JobSpec::from_json(&json).unwrap(), spec);
    let unknown_model = json.replace("\"mlp\"", "\"resnet\"");
    let unknown_opt = json.replace("\"adam_w\"", "\"lion\"");
    let extra = json.replacen('{', "{\"colour\": 1,", 1);
    for bad in [unknown_model, unknown_opt, extra, "{}".into()] {
        assert!(
            matches!(JobSpec::from_json(&bad), Err(Error::InvalidSpec(_))),
            "{bad}"
        );
    }
    let zero_batch = JobSpec {
        batch_size: 0,
        ..spec.clone()
    };
    let too_big = JobSpec {
        batch_size: 10_000,
        ..spec.clone()
    };
    let heads = JobSpec {
        model: ModelSpec::Transformer(TransformerSpec {
            heads: 5,
            ..tiny_transformer()
        }),
        ..spec.clone()
    };
    let nan_lr = JobSpec {
        schedule: Schedule::Constant { lr: f64::NAN },
        ..spec.clone()
    };
    let llama = LlamaSpec {
        vocab: 256,
        context: 16,
        d_model: 32,
        layers: 1,
        heads: 4,
        kv_heads: 2,
        d_ff: 64,
        rope_theta: 10_000.0,
        rms_eps: 1e-5,
        tie_embeddings: false,
    };
    let bad_llamas = [
        LlamaSpec {
            kv_heads: 3,
            ..llama.clone()
        },
        LlamaSpec {
            heads: 32,
            kv_heads: 32,
            ..llama.clone()
        },
        LlamaSpec {
            kv_heads: 0,
            ..llama.clone()
        },
        LlamaSpec {
            rope_theta: 1.0,
            ..llama.clone()
        },
        LlamaSpec {
            rms_eps: f64::NAN,
            ..llama.clone()
        },
    ]
    .map(|l| JobSpec {
        model: ModelSpec::Llama(l),
        ..spec.clone()
    });
    for bad in [zero_batch, too_big, heads, nan_lr]
        .into_iter()
        .chain(bad_llamas)
    {
        assert!(
            matches!(
                Trainer::new(store.clone(), bad.clone(), CPU).await,
                Err(Error::InvalidSpec(_))
            ),
            "{:?}",
            bad.model
        );
    }
    let elsewhere = JobSpec {
        compute_class: Some("riscv64/cpu".into()),
        ..spec.clone()
    };
    assert!(matches!(
        Trainer::new(store.clone(), elsewhere, CPU).await,
        Err(Error::IncompatibleCompute { .. })
    ));
    let wrong_data = JobSpec {
        model: ModelSpec::Transformer(tiny_transformer()),
        ..spec
    };
    let mut t = Trainer::new(store.clone(), wrong_data, CPU).await.unwrap();
    assert!(matches!(t.step().await, Err(Error::Malformed { .. })));
}

#[tokio::test]
async fn logs_of_another_compute_class_or_kernel_are_not_judged() {
    let (store, spec) = mlp_setup().await;
    let (log, _) = train(&store, &spec).await;
    let v = VerifiedLog::load(&store, &log).await.unwrap();
    /// An edit of the header's compute environment and the refusal it must get.
    type Case = (fn(&mut oai_train::ComputeEnv), fn(&Error) -> bool);
    let edits: [Case; 3] = [
        (
            |env| env.class = "aarch64-neon/cpu".into(),
            |e| matches!(e, Error::IncompatibleCompute { .. }),
        ),
        (
            |env| env.kernels = "oai-verifiable-0/fixed-k128".into(),
            |e| matches!(e, Error::KernelMismatch { .. }),
        ),
        (
            |env| env.class.clear(),
            |e| matches!(e, Error::MissingComputeClass),
        ),
    ];
    for (edit, expected) in edits {
        let mut header = v.header.clone();
        edit(&mut header.env);
        let header_cid = store
            .put(ids::DAG_CBOR, log::encode(&header).unwrap().into())
            .await
            .unwrap();
        let records = v.records(&store, ..).await.unwrap();
        let foreign = rechain(&store, header_cid, &header, records).await;
        let replayed = replay_step(&foreign, 2, &store).await;
        assert!(replayed.as_ref().is_err_and(expected), "{replayed:?}");
        let resumed = Trainer::resume(store.clone(), &foreign, CPU).await;
        assert!(resumed.as_ref().is_err_and(expected), "{:?}", resumed.err());
        // the message says what to do instead of accusing the node
        let msg = replayed.unwrap_err().to_string();
        assert!(msg.contains("replay") || msg.contains("replayed"), "{msg}");
    }
}

/// The footprint a node checks before it claims a job counts exactly the parameters the model
/// declares (MLP, transformer, LoRA adapters over a frozen base), and a spec sized to exhaust
/// any machine saturates instead of overflowing or allocating.
#[test]
fn a_footprint_counts_the_declared_parameters_and_saturates() {
    use oai_train::{Footprint, Model};
    let count = |defs: Vec<oai_train::params::ParamDef>| -> u64 {
        defs.iter()
            .map(|d| d.shape.iter().product::<usize>() as u64)
            .sum()
    };
    let d = ids::cid_v1(ids::RAW, b"dataset");
    let lora = JobSpec {
        model: ModelSpec::Lora {
            base: tiny_transformer().into(),
            base_weights: ids::cid_v1(ids::RAW, b"base"),
            rank: 4,
            alpha: 8.0,
        },
        ..lm_spec(d)
    };
    for spec in [mlp_spec(d), lm_spec(d), lora] {
        let model = Model::new(&spec.model);
        let f = Footprint::of(&spec);
        assert_eq!(f.trainable, count(model.param_defs()), "{:?}", spec.model);
        assert_eq!(f.frozen, count(model.base_defs()), "{:?}", spec.model);
        assert_eq!((f.batch, f.steps), (spec.batch_size, spec.steps));
        // weights, gradients and optimiser state at the least
        assert!(f.memory >= f.trainable * 4 * 3, "{f:?}");
    }
    let huge = JobSpec {
        model: ModelSpec::Transformer(TransformerSpec {
            layers: usize::MAX,
            d_model: 1 << 40,
            ..tiny_transformer()
        }),
        batch_size: u64::MAX,
        ..lm_spec(d)
    };
    let f = Footprint::of(&huge);
    assert_eq!((f.trainable, f.memory), (u64::MAX, u64::MAX));
}
