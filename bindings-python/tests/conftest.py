"""Shared fixtures: a small labelled dataset and an MLP spec that trains on it in seconds."""

from __future__ import annotations

import numpy as np
import pytest

import oai


def points(n: int = 96, seed: int = 7) -> list[tuple[np.ndarray, int]]:
    """`n` labelled 4-d points in three classes, from a seeded generator."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        c = i % 3
        x = np.array([c + rng.random(), rng.random() - c, rng.random(), c * rng.random()],
                     dtype=np.float32)
        out.append((x, c))
    return out


def mlp_spec(dataset: str, steps: int = 12, checkpoint_every: int = 4) -> dict:
    """A small AdamW MLP job on `dataset` (a manifest CID)."""
    return {
        "dataset": dataset,
        "model": {"mlp": {"input": 4, "hidden": [16], "classes": 3, "dropout": 0.1}},
        "optimizer": {"adam_w": {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
                                 "weight_decay": 1e-4}},
        "schedule": {"warmup_cosine": {"lr": 0.01, "warmup": 2, "decay_steps": 50,
                                       "min_lr": 1e-4}},
        "batch_size": 8,
        "steps": steps,
        "checkpoint_every": checkpoint_every,
        "grad_clip": 1.0,
        "seed": 3,
        "kernels": "verifiable",
        "compute_class": None,
    }


@pytest.fixture
def store(tmp_path):
    with oai.Store.open(tmp_path / "store") as s:
        yield s


@pytest.fixture
def trained(store):
    """A store with dataset `points` and a published 12-step run `r`."""
    ds = store.import_dataset("points", points())
    log = oai.train(store, mlp_spec(ds.cid), name="r")
    return store, ds, log
