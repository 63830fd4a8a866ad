"""A community dataset in Python: import, fork, change, diff, prove a record, move it as a CAR.

Run: python examples/python/dataset_fork.py [STORE_DIR]   (after `pip install` of the wheel)
"""

import sys
import tempfile
from pathlib import Path

import oai

root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp()) / "store"
with oai.Store.open(root) as store:
    notes = store.import_dataset(
        "notes", [f"note {i}: open data is checkable data" for i in range(1000)]
    )
    print(f"imported {len(notes)} records: {notes.cid} (root {notes.root[:16]}...)")

    store.fork("notes", "notes-es")
    es = store.commit("notes-es", replace={7: "nota 7: los datos abiertos se comprueban"})
    d = notes.diff(es)
    print(f"fork changed {len(d.removed)} record, added {len(d.added)}: {es.cid}")

    proof = es.prove(7)
    assert proof.verify(), "the proof checks against the fork's root"
    assert not proof.verify(root=notes.root), "and not against the original's"
    print(f"record 7 = {proof.record!r} proven under {proof.root[:16]}...")

    car = root.parent / "notes-es.car"
    blocks = store.export_car("notes-es", car)
    with oai.Store.memory() as elsewhere:
        (cid,) = elsewhere.import_car(car)
        assert elsewhere.dataset(cid).records() == es.records()
    print(f"{blocks} blocks carried to another store in {car.name}, every one verified")
