"""Native behaviour: the GIL is released, a forked child gets a runtime (and is refused training\nafter its parent trained), the CPU check."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess
import sys
import threading
import time

import pytest

import oai
from conftest import mlp_spec, points


def test_training_releases_the_gil(store):
    ds = store.import_dataset("points", points())
    # a run long enough (hundreds of ms even in a release build) for the main loop to tick
    spec = mlp_spec(ds.cid, steps=200, checkpoint_every=200)
    spec["model"]["mlp"]["hidden"] = [256, 256]
    t = store.trainer(spec)
    done = threading.Event()
    worker = threading.Thread(target=lambda: (t.run(), done.set()))
    ticks = 0
    start = time.perf_counter()
    worker.start()
    while not done.is_set():
        ticks += 1  # Python code running while Rust trains in the other thread
        time.sleep(0.001)
    worker.join()
    elapsed = time.perf_counter() - start
    assert t.step_index == 200
    # with the GIL held for the whole run the loop would have ticked once or twice
    assert ticks > 10, f"{ticks} ticks in {elapsed:.2f} s"


def test_a_trainer_in_use_by_another_thread_says_so(store):
    ds = store.import_dataset("points", points())
    t = store.trainer(mlp_spec(ds.cid, steps=60, checkpoint_every=60))
    worker = threading.Thread(target=t.run)
    worker.start()
    time.sleep(0.05)
    errors = []
    try:
        t.step()
    except oai.OaiError as e:
        errors.append(str(e))
    worker.join()
    if errors:  # the run may already be over on a fast machine
        assert "in use by another thread" in errors[0]


def _child(path, q):
    with oai.Store.open(path) as s:
        q.put(s.dataset("points")[0][1])
        q.put(s.import_dataset("child", ["from the child"]).cid)


def test_a_forked_child_gets_its_own_runtime(tmp_path):
    with oai.Store.open(tmp_path / "s") as s:
        s.import_dataset("points", points(9))  # the parent's runtime is running
        ctx = multiprocessing.get_context("fork")
        q = ctx.Queue()
        p = ctx.Process(target=_child, args=(tmp_path / "s", q))
        p.start()
        p.join(timeout=60)
        assert p.exitcode == 0, "the child hung or failed"
        assert q.get(timeout=5) == 0
        child_cid = q.get(timeout=5)
        # the parent's runtime still works, and sees the child's head
        assert s.dataset("child").cid == child_cid


def _train_in_child(path, spec, q):
    try:
        with oai.Store.open(path) as s:
            q.put(("trained", s.trainer(spec).run()))
    except oai.OaiError as e:
        q.put(("refused", str(e)))


def test_training_in_a_child_forked_after_training_is_refused_at_once(tmp_path):
    # the compute threads of the parent's training do not survive fork(): the child's first
    # step would wait for them forever (it did); it is refused at once, and a fresh process
    # ("spawn") trains
    with oai.Store.open(tmp_path / "s") as s:
        ds = s.import_dataset("points", points())
        spec = mlp_spec(ds.cid, steps=8, checkpoint_every=4)
        assert s.trainer(spec).run() == 8  # the parent computes
    for method, outcome in (("fork", "refused"), ("spawn", "trained")):
        ctx = multiprocessing.get_context(method)
        q = ctx.Queue()
        p = ctx.Process(target=_train_in_child, args=(tmp_path / "s", spec, q))
        p.start()
        p.join(timeout=120)
        assert p.exitcode == 0, f"the {method} child hung or failed"
        what, detail = q.get(timeout=5)
        assert what == outcome, detail
        if what == "refused":
            assert "forked from process" in detail and '"spawn"' in detail, detail
        else:
            assert detail == 8


def test_this_cpu_passes_the_check():
    assert oai._cpu._missing_by_cpuid() == []
    assert oai._cpu._missing_by_proc() == []


@pytest.mark.skipif(shutil.which("qemu-x86_64") is None and not os.environ.get("OAI_REQUIRE_REAL"),
                    reason="needs qemu-user (apt qemu-user)")
def test_an_older_cpu_gets_a_clear_import_error():
    # an emulated Nehalem (2008: SSE4.2, no AVX): import must fail cleanly, not crash
    r = subprocess.run(["qemu-x86_64", "-cpu", "Nehalem", sys.executable, "-c", "import oai"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stderr
    assert "ImportError: oai needs an x86-64-v3 CPU" in r.stderr
    for feature in ("AVX2", "FMA", "BMI2"):
        assert feature in r.stderr
