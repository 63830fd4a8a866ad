"""Retrieval: embedders (numpy out), indexes (flat, HNSW saved through a store, Qdrant),
ingest by dataset diff, search with filters, answers citing passage CIDs, bad input."""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess

import numpy as np
import pytest

import oai

NOTES = [
    "A fork of a dataset copies no records: it shares every chunk with its parent.",
    "Every block read from a store is checked against its CID.",
    "Training logs record the loss and the gradient norm of every step.",
    "The challenger bisects a disputed log down to a single step.",
]


def unit_rows(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_hashed_embeddings_are_unit_float32_and_deterministic():
    e = oai.Embedder.hashed(64)
    assert e.dim == 64 and e.name == "hashed-words-64"
    one = e.embed("a fork shares chunks")
    assert one.shape == (64,) and one.dtype == np.float32
    many = e.embed(["a fork shares chunks", "logs record every step"])
    assert many.shape == (2, 64) and many.dtype == np.float32
    assert np.array_equal(many[0], one)
    assert np.allclose(np.linalg.norm(many, axis=1), 1.0, atol=1e-6)
    assert np.array_equal(e.embed(["a fork shares chunks"])[0], one)
    assert e.embed([]).shape == (0, 64)
    with pytest.raises(oai.InvalidInputError, match="empty"):
        e.embed(["fine", "   "])
    with pytest.raises(TypeError, match="sequence of str"):
        e.embed(5)
    with pytest.raises(oai.InvalidInputError, match="below 16"):
        oai.Embedder.hashed(4)


def test_flat_index_search_filters_remove_and_numpy_checks(store):
    cids = store.import_dataset("n", [f"passage {i}" for i in range(6)]).record_cids()
    vectors = unit_rows(6, 8)
    idx = oai.Index.flat(8)
    idx.upsert(cids[:3], vectors[:3], meta={"lang": "en"})
    idx.upsert(cids[3:], vectors[3:], meta=[{"lang": "es", "i": str(i)} for i in range(3, 6)])
    assert len(idx) == 6 and cids[0] in idx and idx.dim == 8

    hits = idx.search(vectors[4], k=3)
    assert hits[0].source == cids[4] and hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    es = idx.search(vectors[0], k=6, where={"lang": "es"})
    assert {h.source for h in es} == set(cids[3:])
    assert all(h.meta["lang"] == "es" for h in es)
    assert idx.search(vectors[0], k=6, where={"lang": "fr"}) == []
    batched = idx.search_many(vectors, k=1)
    assert [hs[0].source for hs in batched] == cids

    idx.remove([cids[4], cids[4]])
    assert len(idx) == 5 and cids[4] not in idx
    # replacing an entry keeps one entry per source
    idx.upsert([cids[0]], vectors[5:6])
    assert len(idx) == 5 and idx.search(vectors[5], k=1)[0].source in (cids[0], cids[5])

    with pytest.raises(TypeError, match="float32"):
        idx.search(vectors[0].astype(np.float64))
    with pytest.raises(TypeError, match="2-dimensional float32"):
        idx.upsert(cids[:1], vectors[0])
    with pytest.raises(oai.InvalidInputError, match="dimension 7"):
        idx.search(vectors[0][:7])
    with pytest.raises(oai.InvalidInputError, match="columns"):
        idx.upsert(cids[:2], unit_rows(2, 5))
    with pytest.raises(oai.InvalidInputError, match="2 sources but 3 vectors"):
        idx.upsert(cids[:2], vectors[:3])
    nan = vectors[:1].copy()
    nan[0, 0] = np.nan
    with pytest.raises(oai.InvalidInputError, match="NaN"):
        idx.upsert(cids[:1], nan)
    with pytest.raises(oai.InvalidInputError):
        idx.upsert(["not-a-cid"], vectors[:1])
    with pytest.raises(oai.InvalidInputError, match="k must be"):
        idx.search(vectors[0], k=0)
    with pytest.raises(TypeError, match="metadata"):
        idx.upsert(cids[:1], vectors[:1], meta={"lang": 3})
    assert len(idx) == 5  # nothing of a failing batch was stored
    with pytest.raises(oai.InvalidInputError, match="dimension of at least 1"):
        oai.Index.flat(0)
    with pytest.raises(oai.InvalidInputError, match="dimension of at least 1"):
        oai.Index.hnsw(0)


def test_hnsw_index_saved_and_loaded_through_a_store(store):
    cids = store.import_dataset("n", [f"p{i}" for i in range(200)]).record_cids()
    vectors = unit_rows(200, 16, seed=1)
    idx = oai.Index.hnsw(16, m=8, ef_construction=64, ef_search=64)
    idx.upsert(cids, vectors, meta={"set": "a"})
    cid = idx.save(store)
    loaded = oai.Index.load(store, cid)
    assert len(loaded) == 200 and loaded.dim == 16
    for q in vectors[:20]:
        a, b = idx.search(q, k=5), loaded.search(q, k=5)
        assert [(h.source, h.score, h.meta) for h in a] == [(h.source, h.score, h.meta) for h in b]
    with pytest.raises(oai.InvalidInputError, match="only an HNSW index"):
        oai.Index.flat(16).save(store)
    manifest = store.dataset("n").cid
    with pytest.raises(oai.IntegrityError, match="malformed index"):
        oai.Index.load(store, manifest)
    with oai.Store.memory() as elsewhere:
        absent = elsewhere.add(b"a block this store never saw")
    with pytest.raises(oai.NotFoundError):
        oai.Index.load(store, absent)
    with pytest.raises(oai.InvalidInputError):
        oai.Index.hnsw(16, m=1)


def test_ingest_by_diff_search_and_answers_cite_passages(store):
    embedder = oai.Embedder.hashed(256)
    index = oai.Index.hnsw(256)
    v1 = store.import_dataset("notes", NOTES)
    report = store.ingest("notes", embedder, index, meta={"lang": "en"})
    assert (report.embedded, report.skipped, report.removed) == (4, 0, 0)
    again = store.ingest("notes", embedder, index)
    assert (again.embedded, again.skipped) == (0, 4)

    kb = store.knowledge("notes", embedder, index)
    assert kb.dataset == v1.cid
    answer = kb.ask("Who bisects a disputed log?")
    assert "bisects" in answer.text and str(answer) == answer.text
    assert answer.citations == [v1.record_cids()[3]]
    assert set(answer.citations) <= {p.source for p in answer.passages}
    found = kb.search("what does a fork copy", k=2, where={"lang": "en"})
    assert found[0].text == NOTES[0] and found[0].source == v1.record_cids()[0]
    assert found[0].meta == {"lang": "en"} and len(found) == 2
    assert kb.search("fork", where={"lang": "es"}) == []

    store.fork("notes", "notes-es")
    v2 = store.commit("notes-es", replace={0: "Una bifurcación no copia ningún registro."})
    moved = store.ingest("notes-es", embedder, index, since="notes", meta={"lang": "es"})
    assert (moved.embedded, moved.removed) == (1, 1)
    assert v1.record_cids()[0] not in index and v2.record_cids()[0] in index
    es = store.knowledge("notes-es", embedder, index).search("bifurcación", where={"lang": "es"})
    assert [p.source for p in es] == [v2.record_cids()[0]]

    with pytest.raises(oai.InvalidInputError, match="empty question"):
        kb.ask("  ")
    with pytest.raises(oai.InvalidInputError, match="index holds 16"):
        store.ingest("notes", embedder, oai.Index.flat(16))
    with pytest.raises(oai.NotFoundError, match="no dataset named"):
        store.ingest("nope", embedder, index)
    points = store.import_dataset("vectors", [np.zeros(3, dtype=np.float32)])
    with pytest.raises(oai.InvalidInputError, match="not text"):
        store.ingest(points.cid, embedder, index)
    store.close()
    with pytest.raises(oai.StoreClosedError):
        store.knowledge("notes", embedder, index)


def oai_cli() -> str | None:
    """The `oai` binary the test build made (`OAI_CLI` names another)."""
    path = os.environ.get("OAI_CLI") or str(
        pathlib.Path(__file__).resolve().parents[2] / "target" / "debug" / "oai"
    )
    return path if os.access(path, os.X_OK) else None


def test_named_indexes_made_by_python_or_the_cli_open_by_name(tmp_path):
    store = oai.Store.open(tmp_path / "store")
    v1 = store.import_dataset("notes", NOTES)
    embedder = oai.Embedder.hashed(512)
    report = store.ingest_index("notes", "notes", embedder)
    assert (report.embedded, report.skipped, report.removed) == (4, 0, 0)
    store.commit("notes", replace={1: "Every block is checked against its CID on every read."})
    moved = store.ingest_index("notes", "notes", embedder)
    assert (moved.embedded, moved.removed) == (1, 1)
    kb = store.open_index("notes", embedder)
    assert kb.dataset == store.dataset("notes").cid != v1.cid
    assert kb.ask("Who bisects a disputed log?").citations == [v1.record_cids()[3]]
    with pytest.raises(oai.InvalidInputError, match="embedded with hashed-words-512, not hashed-words-256"):
        store.open_index("notes", oai.Embedder.hashed(256))
    with pytest.raises(oai.NotFoundError, match='no index named "nope"'):
        store.open_index("nope", embedder)
    store.close()

    cli = oai_cli()
    if cli is None:
        if os.environ.get("OAI_REQUIRE_REAL"):
            pytest.fail("no oai binary (cargo build -p oai-cli, or set OAI_CLI)")
        pytest.skip("no oai binary (cargo build -p oai-cli, or set OAI_CLI)")
    lines = tmp_path / "facts.txt"
    lines.write_text("A fork costs no bytes.\nA cheating node loses its stake.\n")
    # the CLI embeds with hashed words unless OAI_MINILM names the model (as CI's does)
    env = {k: v for k, v in os.environ.items() if k != "OAI_MINILM"}
    run = lambda *args: subprocess.run(  # noqa: E731
        [cli, "--store", str(tmp_path / "store"), *args], check=True, capture_output=True, env=env
    )
    run("dataset", "import", "facts", "--lines", str(lines))
    run("rag", "ingest", "facts")
    store = oai.Store.open(tmp_path / "store")
    found = store.open_index("facts", embedder).search("what does a cheating node lose", k=1)
    assert found[0].text == "A cheating node loses its stake."


def test_a_qdrant_server_that_is_not_there_is_unavailable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(oai.UnavailableError):
        oai.Index.qdrant(f"http://127.0.0.1:{port}", "notes", 8)


def test_minilm_from_local_files():
    path = os.environ.get("OAI_MINILM")
    with pytest.raises(oai.NotFoundError, match="no model directory"):
        oai.Embedder.minilm("/nonexistent/minilm")
    if not path:
        assert not os.environ.get("OAI_REQUIRE_REAL"), "OAI_MINILM is not set"
        pytest.skip("OAI_MINILM is not set (scripts/fetch_models.sh)")
    e = oai.Embedder.minilm(path)
    assert e.dim == 384 and e.name == "all-MiniLM-L6-v2"
    v = e.embed(["A dog runs in the park.", "A puppy plays outside.", "Stock prices fell."])
    assert v.shape == (3, 384) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2
