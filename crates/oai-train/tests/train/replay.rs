//! Replay verdicts on honest and forged steps; broken logs, checkpoints and what a replay
//! starts from.

use super::*;

#[tokio::test]
async fn replay_matches_honest_steps_and_names_what_a_cheat_changed() {
    let (store, spec) = lm_setup().await;
    let (log, _) = train(&store, &spec).await;
    for s in 0..spec.steps {
        let out = replay_step(&log, s, &store).await.unwrap();
        assert!(out.is_match(), "step {s}: {out:?}");
    }
    assert!(matches!(
        replay_step(&log, spec.steps, &store).await,
        Err(Error::StepOutOfRange { .. })
    ));

    let names = VerifiedLog::load(&store, &log).await.unwrap().header.params;
    let cheat = forge(&store, &log, 4, |r| r.tensors[5] = Digest::of(b"made up")).await;
    let m = mismatch(&cheat, 4, &store, "a forged tensor must not match").await;
    assert_eq!((m.step, m.field), (4, Field::Weights));
    assert_eq!(m.tensor.as_deref(), Some(names[5].as_str()));
    // Earlier steps of the forged log are still honest.
    assert!(replay_step(&cheat, 3, &store).await.unwrap().is_match());

    let cheat = forge(&store, &log, 1, |r| r.loss *= 0.5).await;
    let m = mismatch(&cheat, 1, &store, "a forged loss must not match").await;
    assert_eq!((m.step, m.field, m.tensor), (1, Field::Loss, None));

    let cheat = forge(&store, &log, 2, |r| r.batch.swap(0, 1)).await;
    let m = mismatch(&cheat, 2, &store, "a forged batch must not match").await;
    assert_eq!(m.field, Field::Batch);

    // Asking for step 5 replays from the checkpoint at 3 and finds the forged step 4 first.
    let cheat = forge(&store, &log, 4, |r| r.lr = 1.0).await;
    let m = mismatch(&cheat, 5, &store, "a forged learning rate must not match").await;
    assert_eq!((m.step, m.field), (4, Field::LearningRate));
}

#[tokio::test]
async fn broken_logs_are_typed_errors() {
    let (store, spec) = mlp_setup().await;
    let (log, summary) = train(&store, &spec).await;
    let v = VerifiedLog::load(&store, &log).await.unwrap();

    let longer = put_log(
        &store,
        &TrainingLog {
            steps: summary.steps + 1,
            ..summary.clone()
        },
    )
    .await;
    let root = put_log(
        &store,
        &TrainingLog {
            root: Digest::of(b"x"),
            ..summary.clone()
        },
    )
    .await;
    let no_ckpt = put_log(
        &store,
        &TrainingLog {
            checkpoints: vec![],
            ..summary.clone()
        },
    )
    .await;
    for bad in [longer, root, no_ckpt] {
        assert!(
            matches!(
                replay_step(&bad, 0, &store).await,
                Err(Error::BrokenLog { .. })
            ),
            "{bad}"
        );
        assert!(matches!(
            Trainer::resume(store.clone(), &bad, CPU).await,
            Err(Error::BrokenLog { .. })
        ));
    }

    // A record whose weights_before does not follow its predecessor: stored as is, not rechained.
    let mut records = v.records(&store, ..).await.unwrap();
    let mut r = records[3].clone();
    r.weights_before = Digest::of(b"elsewhere");
    records[3] = r;
    let mut prev = v.log.header;
    let mut leaves = Vec::new();
    for r in &mut records {
        r.prev = prev;
        prev = store
            .put(ids::DAG_CBOR, log::encode(r).unwrap().into())
            .await
            .unwrap();
        leaves.push(ids::digest_of(&prev).unwrap());
    }
    let gap = put_log(
        &store,
        &TrainingLog {
            head: prev,
            root: MerkleTree::new(&leaves).root(),
            ..summary.clone()
        },
    )
    .await;
    let Err(Error::BrokenLog { step, .. }) = VerifiedLog::load(&store, &gap).await else {
        panic!("a broken commitment chain must not verify")
    };
    assert_eq!(step, 3);

    // Not a log at all; a non-canonical encoding of a real one.
    let junk = store.put(ids::DAG_CBOR, vec![0xa0].into()).await.unwrap();
    assert!(matches!(
        VerifiedLog::load(&store, &junk).await,
        Err(Error::Malformed { .. })
    ));
}

#[tokio::test]
async fn tampered_or_missing_checkpoints_are_refused() {
    let (store, spec) = mlp_setup().await;
    let (log, summary) = train(&store, &spec).await;
    let v = VerifiedLog::load(&store, &log).await.unwrap();
    // The step-4 checkpoint of another run (another seed).
    let (_, other) = train(
        &store,
        &JobSpec {
            seed: 7,
            ..spec.clone()
        },
    )
    .await;
    // A summary that lists a checkpoint the records do not commit is not this log.
    let mut checkpoints = summary.checkpoints.clone();
    checkpoints[0] = other.checkpoints[0];
    let listed = put_log(
        &store,
        &TrainingLog {
            checkpoints,
            ..summary.clone()
        },
    )
    .await;
    assert!(matches!(
        replay_step(&listed, 5, &store).await,
        Err(Error::BrokenLog { step: 4, .. })
    ));
    // Record 3 (whose state is step 4) committing another checkpoint instead: replaying a later
    // step from it is refused (its weights are not the log's), and replaying step 3 finds
    // that the step does not leave that state.
    let committing = |cid: Cid| forge(&store, &log, 3, move |r| r.checkpoint = Some(cid));
    let swapped = committing(other.checkpoints[0].cid).await;
    assert!(matches!(
        replay_step(&swapped, 5, &store).await,
        Err(Error::CheckpointMismatch(m)) if m.step == 4
    ));
    let m = mismatch(&swapped, 3, &store, "another run's checkpoint").await;
    assert_eq!((m.step, m.field), (3, Field::Checkpoint));
    assert_eq!(m.tensor.as_deref(), Some(v.header.params[0].as_str()));
    // A checkpoint of step 8 committed as the state after step 3.
    let relabelled = committing(summary.checkpoints[1].cid).await;
    assert!(matches!(
        replay_step(&relabelled, 5, &store).await,
        Err(Error::Malformed { .. })
    ));
    // A checkpoint file that is not a safetensors file.
    let junk = oai_data::unixfs::import_bytes(&store, b"not a checkpoint", Default::default())
        .await
        .unwrap()
        .root;
    let garbage = committing(junk).await;
    assert!(matches!(
        replay_step(&garbage, 5, &store).await,
        Err(Error::Malformed { .. })
    ));
    // A missing block.
    let copy = MemStore::new();
    for cid in store.list().await.unwrap() {
        if cid != summary.checkpoints[1].cid {
            copy.put_block(
                oai_data::store::Block::verified(cid, store.get(&cid).await.unwrap()).unwrap(),
            )
            .await
            .unwrap();
        }
    }
    assert!(matches!(
        replay_step(&log, 9, &copy).await,
        Err(Error::Data(oai_data::Error::NotFound(_)))
    ));
    // The honest log still replays: nothing was overwritten.
    assert!(replay_step(&log, 9, &store).await.unwrap().is_match());
}

/// The state a replay starts from is committed: forged optimiser moments in a checkpoint
/// (with the records re-hashed to commit it), initial weights that are not the spec seed's,
/// a log longer than its spec, and a summary claiming a huge step count are each caught.
#[tokio::test]
async fn what_a_replay_starts_from_is_committed_and_checked() {
    let (store, spec) = mlp_setup().await;
    let (log, summary) = train(&store, &spec).await;
    let v = VerifiedLog::load(&store, &log).await.unwrap();

    // Forged Adam moments at the step-8 checkpoint, weights untouched, committed by record 7.
    let honest = summary.checkpoints[1];
    assert_eq!(honest.step, 8);
    let mut ck = Checkpoint::get(&store, &honest.cid, &CPU).await.unwrap();
    let slot = ck.optimizer.keys().next().unwrap().clone();
    ck.optimizer
        .insert(slot.clone(), (&ck.optimizer[&slot] * 3.0).unwrap());
    let forged = ck.put(&store).await.unwrap();
    let cheat = forge(&store, &log, 7, |r| r.checkpoint = Some(forged)).await;
    // Weights agree, so replays starting from the forged checkpoint would run; the step that
    // produced it does not leave those moments.
    let m = mismatch(&cheat, 7, &store, "forged moments").await;
    assert_eq!((m.step, m.field), (7, Field::Checkpoint));
    assert_eq!(m.tensor, Some(format!("optim/{slot}")));
    assert_eq!(m.logged, forged.to_string());
    assert_eq!(m.replayed, honest.cid.to_string());

    // Initial weights not from the spec's seed: a run of seed 43 whose header names the spec
    // of seed 42. Its records are consistent; its first step's replay refuses the header.
    let other_seed = JobSpec {
        seed: 43,
        ..spec.clone()
    };
    let (other_log, _) = train(&store, &other_seed).await;
    let o = VerifiedLog::load(&store, &other_log).await.unwrap();
    let header = LogHeader {
        spec: v.header.spec,
        ..o.header.clone()
    };
    let header_cid = store
        .put(ids::DAG_CBOR, log::encode(&header).unwrap().into())
        .await
        .unwrap();
    let spoofed = rechain(
        &store,
        header_cid,
        &header,
        o.records(&store, ..).await.unwrap(),
    )
    .await;
    for step in [0, 2] {
        let m = mismatch(&spoofed, step, &store, "initial weights of another seed").await;
        assert_eq!((m.step, m.field), (0, Field::Init));
        assert_eq!(m.logged, o.header.init.to_string());
        assert_eq!(m.replayed, v.header.init.to_string());
    }
    assert!(matches!(
        Trainer::resume(
            store.clone(),
            &rechain(&store, header_cid, &header, vec![]).await,
            CPU
        )
        .await,
        Err(Error::ResumeMismatch { step: 0, .. })
    ));

    // A log extended one step past its spec (the last record repeated, re-chained).
    let mut records = v.records(&store, ..).await.unwrap();
    let mut extra = records.last().unwrap().clone();
    extra.step += 1;
    records.push(extra);
    let longer = rechain(&store, v.log.header, &v.header, records).await;
    let Err(Error::BrokenLog { step, reason }) = VerifiedLog::load(&store, &longer).await else {
        panic!("a log longer than its spec must not verify")
    };
    assert_eq!(step, spec.steps, "{reason}");

    // A summary claiming u64::MAX steps is refused before anything is allocated for them.
    let huge = put_log(
        &store,
        &TrainingLog {
            steps: u64::MAX,
            ..summary.clone()
        },
    )
    .await;
    assert!(matches!(
        VerifiedLog::load(&store, &huge).await,
        Err(Error::BrokenLog { .. })
    ));

    // A log whose checkpoint after step 3 (due every 4 steps) is not committed.
    let lazy = forge(&store, &log, 3, |r| r.checkpoint = None).await;
    let Err(Error::BrokenLog { step, .. }) = VerifiedLog::load(&store, &lazy).await else {
        panic!("a missing checkpoint the spec asks for must not verify")
    };
    assert_eq!(step, 3);
}

/// What a result on chain names (the header and the head) is enough to load and check the
/// whole log; the summary it rebuilds is the published one.
#[tokio::test]
async fn a_log_loads_from_its_header_and_head() {
    let (store, spec) = mlp_setup().await;
    let (log, summary) = train(&store, &spec).await;
    let v = VerifiedLog::from_head(&store, &summary.header, &summary.head)
        .await
        .unwrap();
    assert_eq!(v.log, summary);
    assert_eq!(v.cid, log, "the rebuilt summary has the published CID");
    // A head whose chain outruns the spec: refused after the spec's steps, not followed on.
    let o = VerifiedLog::load(&store, &log).await.unwrap();
    let mut records = o.records(&store, ..).await.unwrap();
    let mut extra = records.last().unwrap().clone();
    extra.step += 1;
    records.push(extra);
    let longer = rechain(&store, o.log.header, &o.header, records).await;
    let head = log::decode::<TrainingLog>("training log", &store.get(&longer).await.unwrap())
        .unwrap()
        .head;
    let err = VerifiedLog::from_head(&store, &summary.header, &head)
        .await
        .err();
    assert!(
        matches!(err, Some(Error::BrokenLog { step, .. }) if step == spec.steps),
        "{err:?}"
    );
    // A head that is not on this header's chain.
    let (_, other) = train(
        &store,
        &JobSpec {
            seed: 9,
            ..spec.clone()
        },
    )
    .await;
    assert!(VerifiedLog::from_head(&store, &summary.header, &other.head)
        .await
        .is_err());
    // A head that is no block of this store.
    let missing = ids::cid_v1(ids::DAG_CBOR, b"nowhere");
    assert!(matches!(
        VerifiedLog::from_head(&store, &summary.header, &missing).await,
        Err(Error::Data(oai_data::Error::NotFound(_)))
    ));
}

/// A verified log keeps one digest a step, not the records: it reads a record back by its CID
/// when asked, so what it gives is what the run logged; a step past the end is
/// `StepOutOfRange`, a record gone from the store since the load is `NotFound`.
#[tokio::test]
async fn a_verified_log_reads_its_records_back_by_cid() {
    let (store, spec) = mlp_setup().await;
    let (log, summary) = train(&store, &spec).await;
    let v = VerifiedLog::load(&store, &log).await.unwrap();
    assert_eq!(v.leaves.len() as u64, summary.steps);
    let records = v.records(&store, ..).await.unwrap();
    assert_eq!(records.len() as u64, summary.steps);
    let last = summary.steps - 1;
    let head = v.record(&store, last).await.unwrap();
    assert_eq!(
        log::encode(&head).unwrap(),
        v.record_bytes(&store, last).await.unwrap()
    );
    assert_eq!(
        ids::cid_v1(ids::DAG_CBOR, &log::encode(&head).unwrap()),
        summary.head
    );
    assert_eq!(v.records(&store, 2..=3).await.unwrap(), records[2..=3]);
    assert_eq!(v.records(&store, last..).await.unwrap(), [head]);
    assert_eq!(
        v.weights_before(&store, last).await.unwrap(),
        records[last as usize - 1].weights_after
    );
    assert!(matches!(
        v.record(&store, summary.steps).await,
        Err(Error::StepOutOfRange { step, steps }) if step == summary.steps && steps == summary.steps
    ));
    assert!(matches!(
        v.prove(&store, u64::MAX).await,
        Err(Error::StepOutOfRange { .. })
    ));
    store.delete(&summary.head).await.unwrap();
    assert!(matches!(
        v.record(&store, last).await,
        Err(Error::Data(oai_data::Error::NotFound(cid))) if cid == summary.head
    ));
}

#[tokio::test]
async fn checkpoints_hold_what_the_log_commits_to() {
    let (store, spec) = mlp_setup().await;
    let (log, summary) = train(&store, &spec).await;
    let v = VerifiedLog::load(&store, &log).await.unwrap();
    for c in &summary.checkpoints {
        let ck = Checkpoint::get(&store, &c.cid, &CPU).await.unwrap();
        assert_eq!(ck.step, c.step);
        let commit =
            oai_train::Commitment::of(ck.params.iter().map(|(k, t)| (k.as_str(), t))).unwrap();
        assert_eq!(commit.root, v.weights_before(&store, c.step).await.unwrap());
        assert_eq!(
            ck.optimizer.len(),
            2 * ck.params.len(),
            "AdamW keeps m and v"
        );
    }
}
