"""Train an MLP on scikit-learn's digits with every step logged; replay steps and audit the log.

Run: python examples/python/train_digits.py DIGITS_CSV [STORE_DIR]
(scripts/fetch_training_data.sh writes the CSV and prints OAI_DIGITS.)
"""

import os
import sys
import tempfile
from pathlib import Path

import oai

csv = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ["OAI_DIGITS"])
root = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(tempfile.mkdtemp()) / "store"
with oai.Store.open(root) as store:
    digits = store.import_dataset("digits", csv=csv, scale=1 / 16, schema="8x8 digits, class")
    print(f"{len(digits)} digits: {digits.cid}")
    spec = {
        "dataset": digits.cid,
        "model": {"mlp": {"input": 64, "hidden": [64], "classes": 10, "dropout": 0.1}},
        "optimizer": {"adam_w": {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
                                 "weight_decay": 1e-4}},
        "schedule": {"warmup_cosine": {"lr": 0.005, "warmup": 10, "decay_steps": 120,
                                       "min_lr": 1e-4}},
        "batch_size": 32,
        "steps": 120,
        "checkpoint_every": 40,
        "grad_clip": 1.0,
        "seed": 0,
        "kernels": "verifiable",
        "compute_class": None,
    }

    def progress(step):
        if step["step"] % 40 == 0:
            print(f"step {step['step']:>4}  loss {step['loss']:.4f}  lr {step['lr']:.2e}")

    log = oai.train(store, spec, name="digits", progress=progress)
    print(f"log {log.cid}: {len(log)} steps, root {log.root[:16]}..., {log.compute_class}")

    for step in (0, 77, 119):
        outcome = log.replay(step)
        print(f"replay step {step}: {'match' if outcome else 'MISMATCH'}")
        assert outcome, outcome

    verdict = store.verify("digits", samples=5, seed=42)
    print(f"sampled audit: accepted={verdict.accepted}, steps {verdict.sampled}, "
          f"{verdict.replayed_steps} replayed")
    assert verdict

    trainer = store.resume("digits")
    ev = trainer.evaluate(digits.records()[:500])
    print(f"accuracy on the first 500 digits: {ev['accuracy']:.3f}")
    assert ev["accuracy"] > 0.8
    weights = store.checkpoint(log.checkpoints[-1][1])
    print("weights:", {k: v.shape for k, v in weights.items()})
