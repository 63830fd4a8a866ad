"""oai: content-addressed, forkable datasets and verifiable, logged training for open AI.

>>> import oai
>>> with oai.Store.memory() as store:
...     ds = store.import_dataset("notes", ["alpha", "beta", "gamma"])
...     proof = ds.prove(1)
...     proof.verify()
True

Every call that computes or does I/O releases the GIL; errors are :class:`oai.OaiError`
subclasses (see :mod:`oai.errors`).
"""

from __future__ import annotations

import json as _json
import os as _os
from typing import Any, Callable, Mapping, Optional, Union

from . import _cpu

_cpu.check()

from . import errors  # noqa: E402
from ._native import (  # noqa: E402
    Agent,
    Answer,
    Batch,
    Chain,
    ChainEvent,
    Dataset,
    Diff,
    Dispute,
    Embedder,
    Generator,
    Index,
    IngestReport,
    Job,
    Knowledge,
    Log,
    NodeStake,
    Outcome,
    Passage,
    Proof,
    Receipt,
    SearchHit,
    Store,
    TextStream,
    Trainer,
    Verdict,
    __version__,
    compute_class,
    keep_freed_memory,
)
from ._native import _after_fork_in_child  # noqa: E402
from .errors import (  # noqa: E402
    ChainRevertError,
    ComputeError,
    ConflictError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    OaiError,
    StoreClosedError,
    UnavailableError,
)

if hasattr(_os, "register_at_fork"):
    _os.register_at_fork(after_in_child=_after_fork_in_child)

Spec = Union[str, Mapping[str, Any]]


def spec_json(spec: Spec) -> str:
    """A job spec as the JSON oai reads: a JSON string as is, a mapping serialised."""
    if isinstance(spec, str):
        return spec
    if isinstance(spec, Mapping):
        return _json.dumps(dict(spec))
    raise TypeError(f"a job spec is a dict or a JSON string, not {type(spec).__name__}")


def train(
    store: Store,
    spec: Spec,
    *,
    dataset: Optional[str] = None,
    name: Optional[str] = None,
    progress: Optional[Callable[[dict], Any]] = None,
) -> Log:
    """Train `spec` on `store` to its last step with every step logged and publish the log
    (under `runs/NAME` when `name` is given). `progress(step)` is called after every step."""
    trainer = store.trainer(spec_json(spec), dataset=dataset)
    trainer.run(progress=progress)
    return trainer.publish(name=name)


__all__ = [
    "Agent",
    "Answer",
    "Batch",
    "Chain",
    "ChainEvent",
    "ChainRevertError",
    "ComputeError",
    "ConflictError",
    "Dataset",
    "Diff",
    "Dispute",
    "Embedder",
    "Generator",
    "Index",
    "IngestReport",
    "IntegrityError",
    "InvalidInputError",
    "Job",
    "Knowledge",
    "Log",
    "NodeStake",
    "NotFoundError",
    "OaiError",
    "Outcome",
    "Passage",
    "Proof",
    "Receipt",
    "SearchHit",
    "Spec",
    "Store",
    "StoreClosedError",
    "TextStream",
    "Trainer",
    "UnavailableError",
    "Verdict",
    "__version__",
    "compute_class",
    "errors",
    "keep_freed_memory",
    "spec_json",
    "train",
]
