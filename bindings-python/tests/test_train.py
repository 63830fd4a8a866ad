"""Training, logs, replay, checkpoints and verification through Python."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import oai
from conftest import mlp_spec, points


def test_train_publish_replay_and_verify(trained):
    store, ds, log = trained
    assert len(log) == 12 and log.spec["steps"] == 12
    assert log.compute_class == oai.compute_class()
    assert [s for s, _ in log.checkpoints] == [4, 8, 12]
    assert store.log("r").cid == log.cid  # kept under runs/r
    rec = log[5]
    assert rec["step"] == 5 and len(rec["batch"]) == 8 and np.isfinite(rec["loss"])
    assert log.records()[5] == rec
    proof = log.prove(5)
    assert proof["verified"] is True

    for step in (0, 5, 11):
        outcome = log.replay(step)
        assert outcome and outcome.matched and outcome.step == step and outcome.field is None

    full = store.verify("r")
    assert full and full.replayed_steps == 12 and full.fault is None
    sampled = store.verify(log.cid, samples=3, seed=9, parallelism=2)
    assert sampled.accepted and len(sampled.sampled) == 3


def test_iterating_a_trainer_and_progress_callbacks(store):
    ds = store.import_dataset("points", points())
    t = store.trainer(mlp_spec(ds.cid, steps=6, checkpoint_every=3))
    first = next(iter(t))
    assert first["step"] == 0 and first["lr"] > 0
    # where the step's time went, phase by phase, in seconds
    assert set(first["times"]) == {
        "batch", "forward", "backward", "clip", "optimizer", "hash", "log"}
    assert first["times"]["forward"] > 0 and first["times"]["optimizer"] > 0
    seen = []
    assert t.run(steps=2, progress=seen.append) == 2
    assert [s["step"] for s in seen] == [1, 2]
    rest = list(t)
    assert [s["step"] for s in rest] == [3, 4, 5] and t.step_index == 6
    with pytest.raises(oai.InvalidInputError, match="steps of the spec are done"):
        t.step()
    a = t.publish()

    # the same spec from JSON, run in Rust without callbacks: the same log, bit for bit
    t2 = store.trainer(json.dumps(mlp_spec(ds.cid, steps=6, checkpoint_every=3)))
    t2.run()
    assert t2.publish().cid == a.cid


def test_a_callback_that_raises_stops_training(store):
    ds = store.import_dataset("points", points())
    t = store.trainer(mlp_spec(ds.cid))

    def stop(step):
        if step["step"] == 2:
            raise KeyboardInterrupt("stop here")

    with pytest.raises(KeyboardInterrupt):
        t.run(progress=stop)
    assert t.step_index == 3


def test_checkpoints_as_numpy_and_through_safetensors(trained):
    store, _, log = trained
    step, cid = log.checkpoints[-1]
    params = store.checkpoint(cid)
    assert params and all(a.dtype == np.float32 for a in params.values())
    full = store.checkpoint(cid, optimizer=True)
    assert set(params) < set(full) and any(k.startswith("optim/") for k in full)
    safetensors = pytest.importorskip("safetensors.numpy")
    loaded = safetensors.load(store.cat(cid))
    for name, array in params.items():
        assert np.array_equal(loaded[name], array)
    resumed = store.resume("r")
    assert resumed.step_index == 12
    assert all(np.array_equal(resumed.tensors()[k], v) for k, v in params.items())
    ev = resumed.evaluate(points(30, seed=1))
    assert 0 <= ev["accuracy"] <= 1 and ev["loss"] > 0


def test_malformed_specs_and_missing_logs(store):
    ds = store.import_dataset("points", points())
    with pytest.raises(oai.InvalidInputError, match="invalid job spec"):
        store.trainer("{not json")
    bad = mlp_spec(ds.cid)
    bad["batch_size"] = 0
    with pytest.raises(oai.InvalidInputError):
        store.trainer(bad)
    with pytest.raises(TypeError, match="a dict or a JSON string"):
        store.trainer(42)
    with pytest.raises(oai.NotFoundError, match="no run named"):
        store.log("nope")
    with pytest.raises(oai.NotFoundError):
        store.trainer(mlp_spec(ds.cid), dataset="nope")
    with pytest.raises(oai.InvalidInputError, match="samples"):
        store.verify("nope", samples=0)


def test_a_tampered_log_block_is_refused(tmp_path):
    root = tmp_path / "s"
    with oai.Store.open(root) as store:
        ds = store.import_dataset("points", points())
        log = oai.train(store, mlp_spec(ds.cid, steps=4, checkpoint_every=2), name="r")
        before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    # flip a byte in every block that is not a dataset chunk or ref: log records among them
    flipped = 0
    for p, data in before.items():
        if "refs" in p.parts or len(data) < 64:
            continue
        b = bytearray(data)
        b[len(b) // 2] ^= 0x40
        p.write_bytes(bytes(b))
        flipped += 1
    assert flipped
    with oai.Store.open(root) as store:
        with pytest.raises(oai.IntegrityError):
            store.log(log.cid)


def test_a_gguf_model_answers_piece_by_piece(tmp_path):
    """SmolLM2 (OAI_SMOLLM2) answers through an iterator, the same greedy answer twice; a file
    that is not a model raises InvalidInputError, a missing one NotFoundError."""
    bad = tmp_path / "notes.txt"
    bad.write_text("not a model")
    with pytest.raises(oai.InvalidInputError, match="gguf"):
        oai.Generator(bad)
    with pytest.raises(oai.NotFoundError):
        oai.Generator(tmp_path / "missing.gguf")
    path = os.environ.get("OAI_SMOLLM2")
    if not path:
        assert not os.environ.get("OAI_REQUIRE_REAL"), "OAI_SMOLLM2 is not set"
        pytest.skip("OAI_SMOLLM2 is not set (scripts/fetch_models.sh)")
    g = oai.Generator(path)
    assert g.spec["kv_heads"] == 3 and g.spec["tie_embeddings"]
    pieces = list(g.generate("What is the capital of France?", max_tokens=16))
    assert len(pieces) > 1 and "Paris" in "".join(pieces)
    assert "".join(g.generate("What is the capital of France?", max_tokens=16)) == "".join(pieces)
    assert g.decode(g.encode("open data")) == "open data"
    drawn = "".join(g.generate("Say something.", max_tokens=8, temperature=1.0, seed=3))
    assert drawn == "".join(g.generate("Say something.", max_tokens=8, temperature=1.0, seed=3))
    with pytest.raises(oai.InvalidInputError, match="context"):
        g.generate("hi", max_tokens=10**9)
