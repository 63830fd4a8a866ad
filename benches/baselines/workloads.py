"""What the baselines share (numpy only, so both the JAX and the PyTorch venv import it): the
train bench's data, the hyper-parameters, and how rounds are timed."""

import json
import statistics
import time

import numpy as np

#: AdamW and clipping of both workloads.
LR, BETA1, BETA2, EPS, WEIGHT_DECAY, CLIP = 1e-3, 0.9, 0.999, 1e-8, 0.01, 1.0
#: The MLP's widths.
MLP_WIDTHS = [784, 1024, 1024, 10]
#: The transformer's sizes.
VOCAB, CONTEXT, D, HEADS, LAYERS, D_FF = 256, 64, 128, 4, 2, 512
#: Batch sizes.
BATCH = {"mlp": 64, "transformer": 16}


def mlp_data(rng):
    """2,048 random 784-value inputs, labels 0-9 in turn."""
    x = rng.random((2048, 784), dtype=np.float32)
    y = np.arange(2048) % 10
    return x, y


def lm_data(rng):
    """Windows of CONTEXT + 1 bytes (every 61st start) of 40,000 random words: inputs, targets."""
    words = [b"open ", b"data ", b"and ", b"logged ", b"training ", b"for ", b"all. "]
    text = b"".join(words[i] for i in rng.integers(0, 7, 40_000))
    data = np.frombuffer(text, dtype=np.uint8)
    starts = np.arange(0, len(data) - (CONTEXT + 1), 61)
    windows = np.stack([data[s : s + CONTEXT + 1] for s in starts])
    return windows[:, :-1], windows[:, 1:]


DATA = {"mlp": mlp_data, "transformer": lm_data}


def batches(xs, batch, rng):
    """Batch indices for ever: a fresh permutation of the records each time one runs out."""
    order = np.array([], np.int64)
    while True:
        if len(order) < batch:
            order = rng.permutation(len(xs))
        idx, order = order[:batch], order[batch:]
        yield idx


def time_rounds(one_step, rounds, steps, warmup=3):
    """Steps/s of the best and of the median of `rounds` rounds of `steps` steps, after
    `warmup` steps (compilation)."""
    for _ in range(warmup):
        one_step()
    per_step = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(steps):
            one_step()
        per_step.append((time.perf_counter() - start) / steps)
    return 1.0 / min(per_step), 1.0 / statistics.median(per_step)


def print_row(workload, framework, config, best, median, rounds, steps):
    """One JSON line as `compare.py` reads it (and `train_speed` writes it)."""
    row = {
        "workload": workload,
        "framework": framework,
        "config": config,
        "steps_per_s": best,
        "median_steps_per_s": median,
        "rounds": rounds,
        "steps": steps,
    }
    print(json.dumps(row), flush=True)
