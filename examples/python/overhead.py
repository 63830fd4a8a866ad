"""The cost of the Python layer, side by side in one run: training steps driven one call at a
time from Python against the same steps looped in Rust (`Trainer.run()` without a callback),
and index searches one call at a time against the same queries looped in Rust
(`Index.search_many`).

Run: python examples/python/overhead.py [STEPS]
"""

import sys
import time

import numpy as np

import oai

steps = int(sys.argv[1]) if len(sys.argv) > 1 else 200
rng = np.random.default_rng(0)
records = [(rng.random(64, dtype=np.float32), int(i % 10)) for i in range(2048)]
with oai.Store.memory() as store:
    ds = store.import_dataset("points", records)
    spec = {
        "dataset": ds.cid,
        "model": {"mlp": {"input": 64, "hidden": [256], "classes": 10, "dropout": 0.1}},
        "optimizer": {"adam_w": {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
                                 "weight_decay": 1e-4}},
        "schedule": {"constant": {"lr": 0.001}},
        "batch_size": 64,
        "steps": 2 * steps + 10,
        "checkpoint_every": 4 * steps,
        "grad_clip": 1.0,
        "seed": 0,
        "kernels": "verifiable",
        "compute_class": None,
    }
    t = store.trainer(spec)
    t.run(steps=10)  # warm up
    rounds = []
    for _ in range(2):
        a = time.perf_counter()
        for _ in range(steps // 2):
            t.step()
        py = time.perf_counter() - a
        a = time.perf_counter()
        t.run(steps=steps // 2)
        rust = time.perf_counter() - a
        rounds.append((py, rust))
    py = sum(r[0] for r in rounds)
    rust = sum(r[1] for r in rounds)
    print(f"{steps} steps from Python: {steps / py:.1f} steps/s; looped in Rust: "
          f"{steps / rust:.1f} steps/s; Python/Rust time {py / rust:.3f}x")

    # Searches: an exact index of 2,000 unit vectors of 128 values, 10 best of each query.
    n, dim, queries = 2000, 128, max(steps, 100)
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    cids = store.import_dataset("passages", [f"passage {i}" for i in range(n)]).record_cids()
    index = oai.Index.flat(dim)
    index.upsert(cids, vectors)
    qs = vectors[rng.integers(0, n, queries)]
    index.search_many(qs[:10], k=10)  # warm up
    rounds = []
    for _ in range(2):
        a = time.perf_counter()
        one_by_one = [index.search(q, k=10) for q in qs]
        py = time.perf_counter() - a
        a = time.perf_counter()
        batched = index.search_many(qs, k=10)
        rust = time.perf_counter() - a
        rounds.append((py, rust))
    if [[h.source for h in hits] for hits in one_by_one] != \
            [[h.source for h in hits] for hits in batched]:
        raise SystemExit("one call at a time and batched gave different hits")
    py = sum(r[0] for r in rounds)
    rust = sum(r[1] for r in rounds)
    print(f"{queries} searches from Python: {2 * queries / py:.0f} queries/s; looped in Rust: "
          f"{2 * queries / rust:.0f} queries/s; Python/Rust time {py / rust:.3f}x")
