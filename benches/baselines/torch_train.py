"""The train bench's two workloads written in PyTorch (CPU), beside oai and JAX.

Each workload is what `oai_benches::train_workloads` trains, written the way a PyTorch user
would: `nn.Module`s, `F.scaled_dot_product_attention` with a causal mask, `torch.optim.AdamW`
(its default implementation), `clip_grad_norm_`, batches drawn from numpy arrays each step and
the loss read back every step (`loss.item()`, as a logged run reads it).

- MLP 784-1024-1024-10, ReLU, dropout 0.1 after each hidden layer, batch 64 from 2,048 records;
- transformer LM: vocab 256, context 64, d_model 128, 4 heads, 2 pre-norm blocks, d_ff 512,
  GELU (tanh), learned positions, dropout 0.1 (embeddings, attention weights, both residual
  branches), batch 16 from windows of 40,000 words;
- both: AdamW (lr 1e-3, betas 0.9 / 0.999, eps 1e-8, weight decay 0.01 on every tensor),
  clipping at global norm 1.0, mean cross-entropy.

`--compile` runs the model through `torch.compile` (the optimiser step stays eager, as most
training loops write it); `--pin` pins the OpenMP threads to the cores (`OMP_PROC_BIND=close`,
`OMP_PLACES=cores`, one thread per core this process may use) instead of PyTorch's defaults.

Prints one JSON line per workload: {"workload", "framework", "config", "steps_per_s" (best
round), "median_steps_per_s", "rounds", "steps"} after a compiled and warmed-up start.
`benches/baselines/train_vs_baselines.sh` runs it beside oai and JAX.
"""

import argparse
import os
import sys


def pin_threads():
    """Before torch is imported: one OpenMP thread per usable core, bound to it."""
    cores = len(os.sched_getaffinity(0))
    os.environ["OMP_NUM_THREADS"] = str(cores)
    os.environ["OMP_PROC_BIND"] = "close"
    os.environ["OMP_PLACES"] = "cores"
    return cores


ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("--rounds", type=int, default=7)
ap.add_argument("--steps", type=int, default=20)
ap.add_argument("--workload", choices=["mlp", "transformer"], action="append")
ap.add_argument("--compile", action="store_true", help="torch.compile the model")
ap.add_argument("--pin", action="store_true", help="pin one OpenMP thread to each core")
args = ap.parse_args()
pinned = pin_threads() if args.pin else None

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402
from workloads import (  # noqa: E402
    BATCH, BETA1, BETA2, CLIP, CONTEXT, D, D_FF, DATA, EPS, HEADS, LAYERS, LR, MLP_WIDTHS, VOCAB,
    WEIGHT_DECAY, batches, print_row, time_rounds,
)

if pinned:
    torch.set_num_threads(pinned)



class Mlp(nn.Module):
    def __init__(self, widths=MLP_WIDTHS):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(i, o) for i, o in zip(widths, widths[1:]))
        self.drop = nn.Dropout(0.1)

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i + 1 < len(self.layers):
                x = self.drop(F.relu(x))
        return x


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(D), nn.LayerNorm(D)
        self.qkv, self.proj = nn.Linear(D, 3 * D), nn.Linear(D, D)
        self.fc, self.out = nn.Linear(D, D_FF), nn.Linear(D_FF, D)
        self.drop = nn.Dropout(0.1)

    def forward(self, x):
        b, t, _ = x.shape
        q, k, v = (
            z.view(b, t, HEADS, D // HEADS).transpose(1, 2)
            for z in self.qkv(self.ln1(x)).split(D, dim=-1)
        )
        p = 0.1 if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        x = x + self.drop(self.proj(y.transpose(1, 2).reshape(b, t, D)))
        return x + self.drop(self.out(F.gelu(self.fc(self.ln2(x)), approximate="tanh")))


class Lm(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok = nn.Embedding(VOCAB, D)
        self.pos = nn.Parameter(torch.randn(CONTEXT, D) * 0.02)
        self.blocks = nn.ModuleList(Block() for _ in range(LAYERS))
        self.ln_f = nn.LayerNorm(D)
        self.head = nn.Linear(D, VOCAB, bias=False)
        self.drop = nn.Dropout(0.1)

    def forward(self, ids):
        x = self.drop(self.tok(ids) + self.pos[: ids.shape[1]])
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x)).flatten(0, 1)


WORKLOADS = {"mlp": Mlp, "transformer": Lm}


def measure(name, rounds, steps, compile_model):
    rng = np.random.default_rng(3)
    xs, ys = DATA[name](rng)
    xs = xs if xs.dtype == np.float32 else xs.astype(np.int64)
    ys = ys.astype(np.int64)
    torch.manual_seed(3)
    model = WORKLOADS[name]()
    model.train()
    opt = torch.optim.AdamW(
        model.parameters(), lr=LR, betas=(BETA1, BETA2), eps=EPS, weight_decay=WEIGHT_DECAY
    )
    forward = torch.compile(model) if compile_model else model
    order = batches(xs, BATCH[name], rng)

    def one_step():
        idx = next(order)
        x, y = torch.from_numpy(xs[idx]), torch.from_numpy(ys[idx]).flatten()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(forward(x), y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        opt.step()
        return loss.item()

    return time_rounds(one_step, rounds, steps)


def main():
    config = ("compile" if args.compile else "eager") + (", pinned" if pinned else "")
    for name in args.workload or list(WORKLOADS):
        best, median = measure(name, args.rounds, args.steps, args.compile)
        print_row(name, f"pytorch {torch.__version__.split('+')[0]}", f"{config}, {torch.get_num_threads()} threads", best, median, args.rounds, args.steps)


if __name__ == "__main__":
    sys.exit(main())
