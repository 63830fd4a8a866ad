"""The cost of the Python layer: training steps driven one call at a time from Python against
the same steps looped in Rust (`Trainer.run()` without a callback), side by side in one run.

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
