"""Stores and datasets: import, fork, diff, commit, proofs, batches, CARs, files, bad input."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

import oai
from conftest import points


def test_lines_fork_commit_diff_and_proofs(tmp_path, store):
    f = tmp_path / "notes.txt"
    f.write_text("alpha\nbeta\ngamma\n", encoding="utf-8")
    ds = store.import_dataset("notes", lines=f, schema="text/plain")
    assert len(ds) == 3 and ds[0] == "alpha" and ds[-1] == "gamma"
    assert ds.schema == "text/plain" and ds.parent is None
    assert list(ds) == ["alpha", "beta", "gamma"]

    fork = store.fork("notes", "notes-es")
    assert fork.cid == ds.cid  # a fork copies nothing: the same version
    changed = store.commit("notes-es", replace={1: "beta (es)"}, insert={3: "delta"})
    assert changed.records() == ["alpha", "beta (es)", "gamma", "delta"]
    assert changed.parent == ds.cid
    assert store.datasets() == {"notes": ds.cid, "notes-es": changed.cid}

    d = ds.diff(changed)
    assert [i for i, _ in d.removed] == [1]
    assert [i for i, _ in d.added] == [1, 3]
    assert ds.diff("notes-es").added == d.added

    p = changed.prove(1)
    assert p.record == "beta (es)" and p.index == 1 and p.root == changed.root
    assert p.verify()
    assert not p.verify(root=ds.root)  # not in the old version
    assert not p.verify(cid=changed.record_cids()[0])  # another record's CID


def test_records_of_every_kind_round_trip(store):
    img = np.arange(12, dtype=np.uint8).reshape(3, 4)
    recs = ["text", b"\x00\xffbytes", bytearray(b"ba"), img,
            (np.ones(3, np.float32), 2), {"input": np.zeros((2, 2), np.float64), "label": 1},
            np.array([1, -2], dtype=np.int64)]
    ds = store.import_dataset("mixed", recs)
    out = ds.records()
    assert out[0] == "text" and out[1] == b"\x00\xffbytes" and out[2] == b"ba"
    assert out[3].dtype == np.uint8 and out[3].shape == (3, 4) and (out[3] == img).all()
    x, label = out[4]
    assert x.dtype == np.float32 and label == 2 and (x == 1).all()
    assert out[5][0].dtype == np.float64 and out[5][0].shape == (2, 2) and out[5][1] == 1
    assert out[6].tolist() == [1, -2]
    # a non-contiguous view is stored in C order
    view = np.arange(16, dtype=np.float32).reshape(4, 4)[:, ::2]
    assert (store.import_dataset("view", [view])[0] == view).all()


def test_batches_are_deterministic_and_prove(store):
    ds = store.import_dataset("points", points(40))
    a = ds.batch(seed=5, batch_size=8, epoch=1, step=2)
    b = ds.batch(seed=5, batch_size=8, epoch=1, step=2)
    assert a.indices == b.indices and a.records == b.records and len(a) == 8
    assert ds.batch(seed=6, batch_size=8, epoch=1, step=2).indices != a.indices
    a.verify()
    cids = ds.record_cids()
    assert a.records == [cids[i] for i in a.indices]


def test_files_match_ipfs_cids_and_cars_carry_datasets(tmp_path, store):
    # the CID `ipfs add --cid-version=1` gives b"hello": one raw block
    assert store.add(b"hello") == "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq"
    big = hashlib.sha256(b"seed").digest() * 40000  # 1.28 MB, several chunks
    f = tmp_path / "big.bin"
    f.write_bytes(big)
    cid = store.add(f)
    assert store.add(big) == cid and store.cat(cid) == big
    assert store.add(big, profile="unixfs-v0-2015").startswith("Qm")

    ds = store.import_dataset("notes", ["a", "b", "c"])
    car = tmp_path / "notes.car"
    assert store.export_car("notes", car) >= 2
    with oai.Store.memory() as other:
        assert other.import_car(car) == [ds.cid]
        assert other.dataset(ds.cid).records() == ["a", "b", "c"]


def test_a_flipped_byte_is_an_integrity_error_and_nothing_moves(tmp_path):
    root = tmp_path / "s"
    with oai.Store.open(root) as store:
        ds = store.import_dataset("notes", ["x" * 100, "y" * 100])
    blocks = [p for p in root.rglob("*") if p.is_file() and p.stat().st_size > 150]
    assert blocks, "the chunk block is on disk"
    for p in blocks:
        data = bytearray(p.read_bytes())
        data[-5] ^= 1
        p.write_bytes(bytes(data))
    with oai.Store.open(root) as store:
        with pytest.raises(oai.IntegrityError, match="corrupt block"):
            store.dataset("notes")[0]
        assert store.datasets() == {"notes": ds.cid}


def test_bad_input_raises_the_right_exception(tmp_path, store):
    with pytest.raises(oai.NotFoundError, match="no dataset named"):
        store.dataset("nope")
    assert issubclass(oai.NotFoundError, LookupError)
    with pytest.raises(oai.InvalidInputError):
        store.cat("bafynotacid")
    with pytest.raises(oai.InvalidInputError, match="exactly one"):
        store.import_dataset("x")
    with pytest.raises(oai.InvalidInputError, match="exactly one"):
        store.import_dataset("x", ["a"], lines=tmp_path / "a.txt")
    with pytest.raises(oai.NotFoundError, match="missing.txt"):
        store.import_dataset("x", lines=tmp_path / "missing.txt")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ok\n\xff\xfe\n")
    with pytest.raises(oai.InvalidInputError, match="not UTF-8"):
        store.import_dataset("x", lines=bad)
    with pytest.raises(TypeError, match="cannot be None"):
        store.import_dataset("x", ["a", None])
    with pytest.raises(TypeError, match="cannot make a record"):
        store.import_dataset("x", [1.5])
    with pytest.raises(oai.InvalidInputError, match="dtype"):
        store.import_dataset("x", [np.zeros(2, dtype=np.complex64)])
    with pytest.raises(oai.InvalidInputError, match="dtype"):
        store.import_dataset("x", [np.zeros(2, dtype=">f4")])
    with pytest.raises(TypeError, match="label"):
        store.import_dataset("x", [(np.zeros(2, np.float32), -1)])
    with pytest.raises(oai.InvalidInputError, match="profile"):
        store.add(b"x", profile="nope")
    with pytest.raises(TypeError):
        store.add(None)
    with pytest.raises(oai.NotFoundError):
        store.cat("bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yea")
    ds = store.import_dataset("three", ["a", "b", "c"])
    with pytest.raises(IndexError):
        ds[3]
    with pytest.raises(oai.InvalidInputError):
        store.commit("three", remove=[7])
    with pytest.raises(oai.InvalidInputError):
        ds.batch(seed=0, batch_size=0)
    assert "x" not in store.datasets()  # no failed import moved a head


def test_a_closed_store_refuses_every_call(tmp_path):
    s = oai.Store.open(tmp_path / "s")
    ds = s.import_dataset("n", ["a"])
    s.close()
    assert s.closed and "closed" in repr(s)
    for call in (lambda: s.datasets(), lambda: s.add(b"x"), lambda: ds[0],
                 lambda: s.dataset("n")):
        with pytest.raises(oai.StoreClosedError, match="is closed"):
            call()


def test_an_ipfs_node_that_is_not_there_is_unavailable(tmp_path):
    s = oai.Store.ipfs("http://127.0.0.1:9", refs=tmp_path / "refs")
    with pytest.raises(oai.UnavailableError, match="unreachable"):
        s.import_dataset("n", ["a"])
    assert issubclass(oai.UnavailableError, ConnectionError)
    assert s.datasets() == {}
