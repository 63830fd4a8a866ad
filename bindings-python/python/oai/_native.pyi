"""Type stubs of oai's native module (re-exported by `oai`)."""

from __future__ import annotations

import os
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional, Union, final

import numpy as np

__all__ = [
    "__version__",
    "Store",
    "Dataset",
    "Proof",
    "Batch",
    "Diff",
    "Trainer",
    "Log",
    "Outcome",
    "Verdict",
    "Embedder",
    "Index",
    "SearchHit",
    "IngestReport",
    "Passage",
    "Answer",
    "Knowledge",
    "Generator",
    "TextStream",
    "Chain",
    "Receipt",
    "Job",
    "NodeStake",
    "Dispute",
    "ChainEvent",
    "Agent",
    "compute_class",
    "keep_freed_memory",
    "_after_fork_in_child",
]

__version__: str

PathLike = Union[str, "os.PathLike[str]"]
#: str (text), bytes (bytes), a numpy array (tensor), (array, label) or {"input", "label"}
RecordIn = Union[str, bytes, bytearray, np.ndarray, tuple[np.ndarray, int], Mapping[str, Any]]
RecordOut = Union[str, bytes, np.ndarray, tuple[np.ndarray, int]]
Spec = Union[str, Mapping[str, Any]]

def compute_class() -> str:
    """The compute class of this machine's CPU (what a log trained here names)."""

def keep_freed_memory() -> None:
    """Keep freed heap memory in this process (glibc): faster training steps, the peak heap
    kept. Changes the whole process's allocator, so oai never does it unasked."""

@final
class Store:
    """Blocks (memory, filesystem or an IPFS node) and named heads; every read verified."""

    @staticmethod
    def memory() -> Store: ...
    @staticmethod
    def open(path: PathLike) -> Store: ...
    @staticmethod
    def ipfs(url: str, refs: Optional[PathLike] = None) -> Store: ...
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    def __enter__(self) -> Store: ...
    def __exit__(self, *args: object) -> bool: ...
    def add(self, data: Union[bytes, PathLike], *, profile: str = "kubo-cidv1") -> str: ...
    def cat(self, cid: str) -> bytes: ...
    def has(self, cid: str) -> bool: ...
    def import_dataset(
        self,
        name: str,
        records: Optional[Iterable[RecordIn]] = None,
        *,
        lines: Optional[PathLike] = None,
        csv: Optional[PathLike] = None,
        files: Optional[PathLike] = None,
        scale: float = 1.0,
        schema: str = "",
    ) -> Dataset: ...
    def dataset(self, name_or_cid: str) -> Dataset: ...
    def datasets(self) -> dict[str, str]: ...
    def fork(self, source: str, name: str) -> Dataset: ...
    def commit(
        self,
        name: str,
        *,
        remove: Iterable[int] = ...,
        insert: Optional[Mapping[int, RecordIn]] = None,
        replace: Optional[Mapping[int, RecordIn]] = None,
    ) -> Dataset: ...
    def export_car(self, root: str, path: PathLike) -> int: ...
    def ingest(
        self,
        dataset: str,
        embedder: Embedder,
        index: Index,
        *,
        meta: Optional[Mapping[str, str]] = None,
        since: Optional[str] = None,
    ) -> IngestReport: ...
    def knowledge(self, dataset: str, embedder: Embedder, index: Index) -> Knowledge: ...
    def ingest_index(self, name: str, dataset: str, embedder: Embedder) -> IngestReport: ...
    def open_index(self, name: str, embedder: Embedder) -> Knowledge: ...
    def import_car(self, path: PathLike) -> list[str]: ...
    def trainer(self, spec: Spec, *, dataset: Optional[str] = None) -> Trainer: ...
    def resume(self, log: str) -> Trainer: ...
    def log(self, log: str) -> Log: ...
    def checkpoint(self, cid: str, *, optimizer: bool = False) -> dict[str, np.ndarray]: ...
    def verify(
        self, log: str, *, samples: Optional[int] = None, seed: int = 0, parallelism: int = 1
    ) -> Verdict: ...

@final
class Dataset:
    """One version of a dataset, named by its manifest's CID."""

    @property
    def cid(self) -> str: ...
    @property
    def root(self) -> str: ...
    @property
    def schema(self) -> str: ...
    @property
    def parent(self) -> Optional[str]: ...
    @property
    def bytes(self) -> int: ...
    def __len__(self) -> int: ...
    def __getitem__(self, i: int) -> RecordOut: ...
    def __iter__(self) -> Iterator[RecordOut]: ...
    def records(self) -> list[RecordOut]: ...
    def record_cids(self) -> list[str]: ...
    def diff(self, other: Union[Dataset, str]) -> Diff: ...
    def prove(self, index: int) -> Proof: ...
    def batch(self, seed: int, batch_size: int, epoch: int = 0, step: int = 0) -> Batch: ...

@final
class Proof:
    """A record and its inclusion proof against a version root."""

    @property
    def record(self) -> RecordOut: ...
    @property
    def cid(self) -> str: ...
    @property
    def index(self) -> int: ...
    @property
    def root(self) -> str: ...
    def verify(self, root: Optional[str] = None, cid: Optional[str] = None) -> bool: ...

@final
class Batch:
    """A deterministic batch with a proof for every record."""

    @property
    def indices(self) -> list[int]: ...
    @property
    def records(self) -> list[str]: ...
    @property
    def epoch(self) -> int: ...
    @property
    def step(self) -> int: ...
    def __len__(self) -> int: ...
    def verify(self) -> None: ...

@final
class Diff:
    """Records removed and added between two versions: `(index, CID)` pairs."""

    @property
    def removed(self) -> list[tuple[int, str]]: ...
    @property
    def added(self) -> list[tuple[int, str]]: ...

@final
class Trainer:
    """Trains a job spec with every step logged."""

    @property
    def step_index(self) -> int: ...
    @property
    def steps(self) -> int: ...
    @property
    def spec(self) -> dict[str, Any]: ...
    @property
    def compute_class(self) -> str: ...
    def step(self) -> dict[str, Any]: ...
    def __iter__(self) -> Trainer: ...
    def __next__(self) -> dict[str, Any]: ...
    def run(
        self, steps: Optional[int] = None, progress: Optional[Callable[[dict], Any]] = None
    ) -> int: ...
    def publish(self, name: Optional[str] = None) -> Log: ...
    def tensors(self) -> dict[str, np.ndarray]: ...
    def evaluate(self, records: Iterable[RecordIn]) -> dict[str, float]: ...

@final
class Log:
    """A verified training log."""

    @property
    def cid(self) -> str: ...
    @property
    def root(self) -> str: ...
    @property
    def head(self) -> str: ...
    @property
    def header(self) -> str: ...
    @property
    def spec_cid(self) -> str: ...
    @property
    def spec(self) -> dict[str, Any]: ...
    @property
    def compute_class(self) -> str: ...
    @property
    def checkpoints(self) -> list[tuple[int, str]]: ...
    def __len__(self) -> int: ...
    def __getitem__(self, step: int) -> dict[str, Any]: ...
    def records(self) -> list[dict[str, Any]]: ...
    def prove(self, step: int) -> dict[str, Any]: ...
    def replay(self, step: int) -> Outcome: ...

@final
class Outcome:
    """A replayed step: truthy when its bits match the log."""

    @property
    def matched(self) -> bool: ...
    def __bool__(self) -> bool: ...
    @property
    def step(self) -> int: ...
    @property
    def field(self) -> Optional[str]: ...
    @property
    def tensor(self) -> Optional[str]: ...
    @property
    def values(self) -> Optional[tuple[str, str]]: ...

@final
class Verdict:
    """A verifier's conclusion: truthy when accepted."""

    @property
    def accepted(self) -> bool: ...
    def __bool__(self) -> bool: ...
    @property
    def fault(self) -> Optional[str]: ...
    @property
    def step(self) -> Optional[int]: ...
    @property
    def sampled(self) -> list[int]: ...
    @property
    def replayed_steps(self) -> int: ...

@final
class Embedder:
    """Text to unit vectors: all-MiniLM-L6-v2 from local files, or hashed words."""

    @staticmethod
    def minilm(path: PathLike) -> Embedder: ...
    @staticmethod
    def hashed(dim: int = 512) -> Embedder: ...
    @property
    def dim(self) -> int: ...
    @property
    def name(self) -> str: ...
    def embed(self, text: Union[str, Iterable[str]]) -> np.ndarray:
        """float32, shape (dim,) for a str, (n, dim) for a sequence."""

@final
class Index:
    """Vectors keyed by their passage's CID: exact, HNSW or a Qdrant collection."""

    @staticmethod
    def flat(dim: int) -> Index: ...
    @staticmethod
    def hnsw(
        dim: int, *, m: int = 16, ef_construction: int = 128, ef_search: int = 128
    ) -> Index: ...
    @staticmethod
    def qdrant(url: str, collection: str, dim: int) -> Index: ...
    @staticmethod
    def load(store: Store, cid: str) -> Index: ...
    def save(self, store: Store) -> str: ...
    @property
    def dim(self) -> int: ...
    def upsert(
        self,
        sources: Iterable[str],
        vectors: np.ndarray,
        meta: Union[None, Mapping[str, str], Iterable[Mapping[str, str]]] = None,
    ) -> None: ...
    def remove(self, sources: Iterable[str]) -> None: ...
    def search(
        self, query: np.ndarray, k: int = 5, where: Optional[Mapping[str, str]] = None
    ) -> list[SearchHit]: ...
    def search_many(
        self, queries: np.ndarray, k: int = 5, where: Optional[Mapping[str, str]] = None
    ) -> list[list[SearchHit]]: ...
    def __len__(self) -> int: ...
    def __contains__(self, source: str) -> bool: ...

@final
class SearchHit:
    """A search result: the source passage's CID, its score, the entry's metadata."""

    @property
    def source(self) -> str: ...
    @property
    def score(self) -> float: ...
    @property
    def meta(self) -> dict[str, str]: ...

@final
class IngestReport:
    """Passages embedded, skipped (already indexed) and entries removed."""

    @property
    def embedded(self) -> int: ...
    @property
    def skipped(self) -> int: ...
    @property
    def removed(self) -> int: ...

@final
class Passage:
    """A retrieved passage: its record's CID, text, score and metadata."""

    @property
    def source(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def score(self) -> float: ...
    @property
    def meta(self) -> dict[str, str]: ...

@final
class Answer:
    """An answer, the CIDs it cites and the passages retrieved for it."""

    @property
    def text(self) -> str: ...
    @property
    def citations(self) -> list[str]: ...
    @property
    def passages(self) -> list[Passage]: ...

@final
class Knowledge:
    """A dataset's passages with their index and embedder."""

    @property
    def dataset(self) -> str: ...
    def search(
        self, question: str, k: int = 3, where: Optional[Mapping[str, str]] = None
    ) -> list[Passage]: ...
    def ask(
        self, question: str, k: int = 3, where: Optional[Mapping[str, str]] = None
    ) -> Answer: ...

Address = str
Wei = int

@final
class Generator:
    """A Llama-family model from a GGUF file (e.g. SmolLM2-135M-Instruct) and its tokenizer,
    on the verifiable kernels: a greedy answer is the same on every machine of a class."""

    def __new__(cls, path: PathLike) -> Generator: ...
    def encode(self, text: str) -> list[int]: ...
    def decode(self, ids: list[int]) -> str: ...
    @property
    def spec(self) -> dict[str, Any]: ...
    def generate(
        self,
        prompt: str,
        max_tokens: int = 128,
        temperature: Optional[float] = None,
        seed: int = 0,
        chat: bool = True,
    ) -> TextStream:
        """The answer's text piece by piece as the tokens come (greedy unless given a
        temperature; a ChatML user turn unless chat=False)."""

@final
class TextStream:
    """The pieces of one answer's text."""

    def __iter__(self) -> Iterator[str]: ...
    def __next__(self) -> str: ...

@final
class ChainEvent:
    """An event of the oai contracts, decoded by name."""

    block: int
    contract: str
    address: Address
    name: str
    args: dict[str, Any]

@final
class Receipt:
    """A mined transaction."""

    gas_used: int
    fee: Wei
    block: int
    events: list[ChainEvent]

@final
class NodeStake:
    """A node's bond in the registry."""

    registered: bool
    stake: Wei
    locked: Wei
    unbonding: Wei
    unbond_at: int

@final
class Job:
    """A job as the market stores it."""

    id: int
    requester: Address
    node: Optional[Address]
    status: str
    deadline: int
    reward: Wei
    spec: str
    dataset_root: str
    steps: int
    claim_window: int
    max_duration: int
    challenge_window: int
    required_stake: Wei
    header: Optional[str]
    head: Optional[str]

@final
class Dispute:
    """A running bisection dispute."""

    challenger: Address
    deadline: int
    turn: str  # "node", "challenger", "reveal" (the node posts the disputed record), "adjudication"
    lo: int
    hi: int
    mid: int
    bond: Wei
    agreed: str
    node_hi: str
    node_mid: str

@final
class Chain:
    """The oai contracts on the embedded EVM; reverts raise ChainRevertError."""

    @staticmethod
    def embedded(
        *,
        referees: list[Address],
        threshold: Optional[int] = None,
        min_stake: Wei = 10**18,
        unbond_delay: int = ...,  # 7 days
        move_timeout: int = 3600,
        adjudication_timeout: int = 86400,
        seed: int = 0,
        deployer: Optional[Address] = None,
        dao_members: Optional[list[tuple[Address, int]]] = None,
        quorum_bps: int = 5000,
        timelock: int = 86400,
    ) -> Chain: ...
    @property
    def deployment(self) -> dict[str, Optional[Address]]: ...
    def balance(self, account: Address) -> Wei: ...
    def set_balance(self, account: Address, wei: Wei) -> None: ...
    def now(self) -> int: ...
    def block_number(self) -> int: ...
    def randomness(self, block: int) -> str: ...
    def advance_time(self, secs: int) -> None: ...
    def events(self, from_block: int = 0) -> list[ChainEvent]: ...
    def register(self, node: Address, stake: Wei) -> Receipt: ...
    def top_up(self, node: Address, amount: Wei) -> Receipt: ...
    def request_unbond(self, node: Address, amount: Wei) -> Receipt: ...
    def withdraw_stake(self, node: Address, *, to: Optional[Address] = None) -> Receipt: ...
    def stake(self, node: Address) -> NodeStake: ...
    def post_job(
        self,
        requester: Address,
        store: Store,
        spec: Spec,
        *,
        reward: Wei,
        required_stake: Wei,
        dataset: Optional[str] = None,
        claim_window: int = ...,  # a day
        max_duration: int = ...,  # a day
        challenge_window: int = ...,  # a day
    ) -> int: ...
    def fund_job(self, funder: Address, job: int, amount: Wei) -> Receipt: ...
    def cancel_job(self, caller: Address, job: int) -> Receipt: ...
    def claim_job(self, node: Address, job: int) -> Receipt: ...
    def submit_result(self, node: Address, job: int, log: Log) -> Receipt: ...
    def expire_job(self, caller: Address, job: int) -> Receipt: ...
    def challenge(
        self,
        challenger: Address,
        job: int,
        *,
        claimed_final: Optional[Union[str, bytes]] = None,
        bond: Optional[Wei] = None,
    ) -> Receipt: ...
    def bisect(self, mover: Address, job: int, commitment: Union[str, bytes]) -> Receipt: ...
    def propose_change(
        self,
        member: Address,
        kind: str,
        *,
        referees: Optional[list[Address]] = None,
        threshold: Optional[int] = None,
        burn_bps: Optional[int] = None,
        move_timeout: Optional[int] = None,
        adjudication_timeout: Optional[int] = None,
        min_challenge_window: Optional[int] = None,
        max_challenge_window: Optional[int] = None,
        wei: Optional[Wei] = None,
        open: Optional[bool] = None,
        node: Optional[Address] = None,
        admitted: bool = True,
    ) -> int: ...
    def vote_change(self, member: Address, id: int, support: bool) -> Receipt: ...
    def execute_change(self, caller: Address, id: int) -> Receipt: ...
    def governance(self) -> dict[str, Any]: ...
    def reveal(self, node: Address, job: int, log: Log) -> Receipt: ...
    def resolve(self, caller: Address, job: int) -> Receipt: ...
    def timeout(self, caller: Address, job: int) -> Receipt: ...
    def finalize(self, caller: Address, job: int) -> Receipt: ...
    def refund(self, funder: Address, job: int) -> Receipt: ...
    def withdraw(self, account: Address, *, to: Optional[Address] = None) -> Receipt: ...
    def owed(self, account: Address) -> Wei: ...
    def job(self, job: int) -> Job: ...
    def dispute(self, job: int) -> Optional[Dispute]: ...
    def case_id(self, job: int) -> str: ...
    def referee_vote(
        self, referee: Address, case: Union[str, bytes], node_correct: bool
    ) -> Receipt: ...
    def verify_result(
        self,
        store: Store,
        job: int,
        *,
        samples: Optional[int] = None,
        parallelism: int = 1,
        seed_delay: int = ...,  # 64 blocks
    ) -> Verdict: ...
    def play(
        self,
        agents: Union[Mapping[str, Agent], Iterable[tuple[str, Agent]]],
        *,
        idle_secs: int = 86401,
        max_rounds: int = 200,
        from_block: int = 0,
        progress: Optional[Callable[[Optional[str], str], Any]] = None,
    ) -> int: ...

@final
class Agent:
    """A party of the game (node, challenger, referee) acting for one account."""

    @staticmethod
    def node(
        chain: Chain,
        store: Store,
        account: Address,
        *,
        from_block: int = 0,
        forge_loss_at_step: Optional[int] = None,
    ) -> Agent: ...
    @staticmethod
    def challenger(
        chain: Chain,
        store: Store,
        account: Address,
        *,
        samples: Optional[int] = None,
        parallelism: int = 1,
        seed_delay: int = ...,  # 64 blocks
        from_block: int = 0,
    ) -> Agent: ...
    @staticmethod
    def referee(chain: Chain, store: Store, account: Address, *, from_block: int = 0) -> Agent: ...
    @property
    def role(self) -> str: ...
    @property
    def account(self) -> Address: ...
    def tick(self) -> list[str]: ...
    @property
    def busy(self) -> bool: ...
    def idle(self) -> None: ...

def _after_fork_in_child() -> None: ...
