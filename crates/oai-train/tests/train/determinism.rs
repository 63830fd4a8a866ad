//! Determinism: identical runs, threads, seeds, devices, stop and resume.

use super::*;

/// Native kernels on CUDA device 0 (feature `cuda`): the class names the GPU, a log replays bit
/// for bit on the GPU that wrote it, and the CPU refuses to judge it. Skips with a message
/// where there is no GPU (always in CI).
#[tokio::test]
async fn a_cuda_log_replays_on_its_gpu_and_the_cpu_refuses_it() {
    let gpu = match candle_core::Device::new_cuda(0) {
        Ok(gpu) => gpu,
        Err(e) => {
            eprintln!("skipped: no CUDA device ({e})");
            return;
        }
    };
    for (store, spec) in [mlp_setup().await, lm_setup().await] {
        let spec = JobSpec {
            kernels: Kernels::Native,
            steps: 4,
            ..spec
        };
        let mut trainer = Trainer::new(store.clone(), spec, gpu.clone())
            .await
            .unwrap();
        assert!(
            trainer.env().class.starts_with("cuda/"),
            "{}",
            trainer.env().class
        );
        let (log, _) = trainer.train_and_publish().await.unwrap();
        let out = replay_step_on(&log, 3, &store, gpu.clone()).await.unwrap();
        assert!(out.is_match(), "{out:?}");
        assert!(matches!(
            replay_step(&log, 3, &store).await,
            Err(Error::IncompatibleCompute { .. })
        ));
    }
}

#[tokio::test]
async fn two_runs_give_identical_logs_and_checkpoints() {
    for (store, spec) in [mlp_setup().await, lm_setup().await] {
        let (a, log_a) = train(&store, &spec).await;
        let other = MemStore::new();
        // Another node with only the dataset (moved as a CAR file) trains the same spec.
        let mut car = Vec::new();
        oai_data::car::export(&store, &spec.dataset, &mut car)
            .await
            .unwrap();
        oai_data::car::import(&other, &car[..]).await.unwrap();
        let (b, log_b) = train(&other, &spec).await;
        assert_eq!(a, b, "log CIDs differ between two runs");
        assert_eq!(log_a, log_b);
        assert_eq!(log_a.steps, spec.steps);
        // every K steps; the initial state is not listed (it follows from the spec)
        let want: Vec<u64> = (1..=spec.steps)
            .filter(|s| s % spec.checkpoint_every == 0)
            .collect();
        let got: Vec<u64> = log_a.checkpoints.iter().map(|c| c.step).collect();
        assert_eq!(got, want);
        let v = VerifiedLog::load(&store, &a).await.unwrap();
        assert!(v
            .records(&store, ..)
            .await
            .unwrap()
            .windows(2)
            .all(|w| w[0].weights_after != w[1].weights_after));
        for s in 0..spec.steps {
            let p = v.prove(&store, s).await.unwrap();
            assert!(p.verify(&log_a.root));
            assert!(!p.verify(&Digest::of(b"other root")));
        }
    }
}

#[tokio::test]
async fn a_validator_replays_from_the_logs_car_alone() {
    let (node, spec) = lm_setup().await;
    let (log, summary) = train(&node, &spec).await;
    // The log links its header, spec, dataset, records and checkpoints: one CAR carries all.
    let mut car = Vec::new();
    let blocks = oai_data::car::export(&node, &log, &mut car).await.unwrap();
    let validator = MemStore::new();
    oai_data::car::import(&validator, &car[..]).await.unwrap();
    assert_eq!(validator.list().await.unwrap().len() as u64, blocks);
    let v = VerifiedLog::load(&validator, &log).await.unwrap();
    assert_eq!(v.log, summary);
    assert!(replay_step(&log, spec.steps - 1, &validator)
        .await
        .unwrap()
        .is_match());
}

#[tokio::test]
async fn seed_changes_everything() {
    let (store, spec) = mlp_setup().await;
    let (_, a) = train(&store, &spec).await;
    let (_, b) = train(&store, &JobSpec { seed: 43, ..spec }).await;
    assert_ne!(a.root, b.root);
}

/// Run by `thread_count_does_not_change_bits` in a child process with `RAYON_NUM_THREADS` set.
#[tokio::test]
#[ignore = "helper: run in a child process by thread_count_does_not_change_bits"]
async fn child_prints_log_roots() {
    for (name, (store, spec)) in [("mlp", mlp_setup().await), ("lm", lm_setup().await)] {
        let (_, log) = train(&store, &spec).await;
        println!("ROOT {name} {}", log.root);
    }
}

fn child_roots(threads: &str) -> Vec<String> {
    let roots = support::child_lines(
        &[],
        "determinism::child_prints_log_roots",
        &[("RAYON_NUM_THREADS", threads)],
        "ROOT ",
    );
    assert_eq!(roots.len(), 2, "child printed {roots:?}");
    roots
}

#[tokio::test]
async fn thread_count_does_not_change_bits() {
    let one = child_roots("1");
    let two = child_roots("2");
    assert_eq!(one, two);
    let (store, spec) = mlp_setup().await;
    let (_, log) = train(&store, &spec).await;
    assert_eq!(one[0], format!("mlp {}", log.root));
}

#[tokio::test]
async fn stop_and_resume_matches_a_straight_run() {
    for (store, spec) in [mlp_setup().await, lm_setup().await] {
        let (_, straight) = train(&store, &spec).await;
        let mut t = Trainer::new(store.clone(), spec.clone(), CPU)
            .await
            .unwrap();
        for _ in 0..spec.steps / 2 + 1 {
            t.step().await.unwrap();
        }
        let (stopped, stopped_log) = t.publish().await.unwrap();
        drop(t);
        let mut resumed = Trainer::resume(store.clone(), &stopped, CPU).await.unwrap();
        let (_, done) = resumed.train_and_publish().await.unwrap();
        assert_eq!(done.root, straight.root);
        assert_eq!(done.head, straight.head);

        // A stop between the spec's checkpoints leaves a resume point no record commits;
        // without it, resume starts from the last committed checkpoint and re-executes the
        // logged steps in between, which must agree with them.
        assert!(!spec.checkpoint_due(stopped_log.steps));
        let behind = TrainingLog {
            checkpoints: stopped_log.checkpoints[..stopped_log.checkpoints.len() - 1].to_vec(),
            ..stopped_log
        };
        let behind = put_log(&store, &behind).await;
        let mut again = Trainer::resume(store.clone(), &behind, CPU).await.unwrap();
        assert_eq!(again.step_index(), spec.steps / 2 + 1);
        assert_eq!(
            again.train_and_publish().await.unwrap().1.root,
            straight.root
        );
        // Stepping past the spec is refused.
        assert!(matches!(
            again.step().await,
            Err(Error::StepOutOfRange { .. })
        ));
    }
}

#[tokio::test]
async fn train_stops_where_asked_and_a_named_run_resolves_to_what_it_published() {
    let (store, spec) = mlp_setup().await;
    let (_, straight) = train(&store, &spec).await;
    let mut t = Trainer::new(store.clone(), spec.clone(), CPU)
        .await
        .unwrap();
    let mut seen = Vec::new();
    let trained = t
        .train(Some(3), |r| {
            seen.push(r.step);
            ControlFlow::Continue(())
        })
        .await
        .unwrap();
    assert_eq!((trained.steps, trained.skipped), (3, 0));
    assert_eq!(seen, [0, 1, 2]);
    // The callback stops training after the step it was called with.
    let trained = t
        .train(None, |r| {
            seen.push(r.step);
            ControlFlow::Break(())
        })
        .await
        .unwrap();
    assert_eq!((trained.steps, t.step_index()), (1, 4));
    // Asking for more steps than the spec has left stops at its end.
    let trained = t
        .train(Some(u64::MAX), |_| ControlFlow::Continue(()))
        .await
        .unwrap();
    assert_eq!(trained.steps, spec.steps - 4);
    assert_eq!(
        t.train(None, |_| ControlFlow::Continue(()))
            .await
            .unwrap()
            .steps,
        0
    );
    let (cid, log) = t.publish_as(&store, "digits").await.unwrap();
    assert_eq!(log.root, straight.root);
    assert_eq!(run_names::resolve(&store, "digits").await.unwrap(), cid);
}
