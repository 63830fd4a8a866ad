"""The train bench's two workloads written in JAX, the baseline oai's training speed is held to.

Each workload is what `oai_benches::train_workloads` trains, written the way a JAX user would:
one `jax.jit` step (forward, backward, global-norm clipping, AdamW) over parameters in a dict,
batches drawn from numpy arrays each step, the loss read back every step (a logged run reads it;
it also keeps JAX's asynchronous dispatch from running steps ahead of the clock).

- MLP 784-1024-1024-10, ReLU, dropout 0.1 after each hidden layer, batch 64 from 2,048 records;
- transformer LM: vocab 256, context 64, d_model 128, 4 heads, 2 pre-norm blocks, d_ff 512,
  GELU (tanh), learned positions, dropout 0.1 (embeddings, attention weights, both residual
  branches), batch 16 from windows of 40,000 words;
- both: AdamW (lr 1e-3, betas 0.9 / 0.999, eps 1e-8, weight decay 0.01 on every tensor),
  clipping at global norm 1.0, mean cross-entropy.

Prints one JSON line per workload: {"workload", "framework", "config", "steps_per_s" (the best
of `--rounds` rounds of `--steps` steps), "median_steps_per_s", "rounds", "steps"} after a
compiled and warmed-up start. `benches/baselines/train_vs_baselines.sh` runs it beside oai and
PyTorch.
"""

import argparse
import sys

import jax
import jax.numpy as jnp
import numpy as np
from workloads import (
    BATCH, BETA1, BETA2, CLIP, CONTEXT, D, D_FF, DATA, EPS, HEADS, LAYERS, LR, MLP_WIDTHS, VOCAB,
    WEIGHT_DECAY, batches, print_row, time_rounds,
)


def uniform(key, shape, bound):
    return jax.random.uniform(key, shape, jnp.float32, -bound, bound)


def dropout(key, x, prob):
    keep = 1.0 - prob
    return jnp.where(jax.random.bernoulli(key, keep, x.shape), x / keep, 0.0)


def cross_entropy(logits, targets):
    lp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(lp, targets[:, None], axis=-1))


# --- the MLP ---------------------------------------------------------------------------------

def mlp_init(key):
    params = {}
    for i, (fan_in, fan_out) in enumerate(zip(MLP_WIDTHS, MLP_WIDTHS[1:])):
        key, kw, kb = jax.random.split(key, 3)
        bound = 1.0 / np.sqrt(fan_in)
        params[f"fc{i}.weight"] = uniform(kw, (fan_out, fan_in), bound)
        params[f"fc{i}.bias"] = uniform(kb, (fan_out,), bound)
    return params


def mlp_loss(params, x, y, key):
    h = x
    layers = len(MLP_WIDTHS) - 1
    for i in range(layers):
        h = h @ params[f"fc{i}.weight"].T + params[f"fc{i}.bias"]
        if i + 1 < layers:
            key, k = jax.random.split(key)
            h = dropout(k, jax.nn.relu(h), 0.1)
    return cross_entropy(h, y)


# --- the transformer -------------------------------------------------------------------------

STD_BOUND = 0.02 * np.sqrt(3.0)


def lm_init(key):
    keys = iter(jax.random.split(key, 64))
    p = {
        "tok_emb": uniform(next(keys), (VOCAB, D), STD_BOUND),
        "pos_emb": uniform(next(keys), (CONTEXT, D), STD_BOUND),
        "head.weight": uniform(next(keys), (VOCAB, D), STD_BOUND),
        "ln_f.weight": jnp.ones(D),
        "ln_f.bias": jnp.zeros(D),
    }
    for l in range(LAYERS):
        for n in ("ln1", "ln2"):
            p[f"blocks.{l}.{n}.weight"] = jnp.ones(D)
            p[f"blocks.{l}.{n}.bias"] = jnp.zeros(D)
        for name, o, i in (
            ("attn.qkv", 3 * D, D),
            ("attn.proj", D, D),
            ("mlp.fc", D_FF, D),
            ("mlp.proj", D, D_FF),
        ):
            p[f"blocks.{l}.{name}.weight"] = uniform(next(keys), (o, i), STD_BOUND)
            p[f"blocks.{l}.{name}.bias"] = jnp.zeros(o)
    return p


def layer_norm(p, name, x):
    mean = x.mean(-1, keepdims=True)
    xc = x - mean
    var = (xc * xc).mean(-1, keepdims=True)
    return xc / jnp.sqrt(var + 1e-5) * p[f"{name}.weight"] + p[f"{name}.bias"]


def linear(p, name, x):
    y = x @ p[f"{name}.weight"].T
    bias = p.get(f"{name}.bias")
    return y if bias is None else y + bias


def lm_loss(p, ids, targets, key):
    b, t = ids.shape
    dh = D // HEADS
    keys = iter(jax.random.split(key, 1 + 3 * LAYERS))
    x = p["tok_emb"][ids] + p["pos_emb"][:t]
    x = dropout(next(keys), x, 0.1)
    mask = jnp.where(jnp.arange(t)[None, :] > jnp.arange(t)[:, None], -1e9, 0.0)
    for l in range(LAYERS):
        pre = f"blocks.{l}"
        qkv = linear(p, f"{pre}.attn.qkv", layer_norm(p, f"{pre}.ln1", x))
        q, k, v = (
            qkv[..., i * D : (i + 1) * D].reshape(b, t, HEADS, dh).transpose(0, 2, 1, 3)
            for i in range(3)
        )
        att = jax.nn.softmax(q @ k.transpose(0, 1, 3, 2) / np.sqrt(dh) + mask, axis=-1)
        att = dropout(next(keys), att, 0.1)
        y = (att @ v).transpose(0, 2, 1, 3).reshape(b, t, D)
        x = x + dropout(next(keys), linear(p, f"{pre}.attn.proj", y), 0.1)
        h = jax.nn.gelu(linear(p, f"{pre}.mlp.fc", layer_norm(p, f"{pre}.ln2", x)), approximate=True)
        x = x + dropout(next(keys), linear(p, f"{pre}.mlp.proj", h), 0.1)
    logits = linear(p, "head", layer_norm(p, "ln_f", x))
    return cross_entropy(logits.reshape(b * t, VOCAB), targets.reshape(b * t))


# --- one training step -----------------------------------------------------------------------


def make_step(loss_fn):
    def step(params, m, v, t, x, y, key):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y, key)
        norm = jnp.sqrt(sum(jnp.sum(g * g) for g in jax.tree_util.tree_leaves(grads)))
        scale = jnp.where(norm > CLIP, CLIP / (norm + 1e-6), 1.0)
        grads = jax.tree_util.tree_map(lambda g: g * scale, grads)
        m = jax.tree_util.tree_map(lambda m, g: BETA1 * m + (1 - BETA1) * g, m, grads)
        v = jax.tree_util.tree_map(lambda v, g: BETA2 * v + (1 - BETA2) * g * g, v, grads)
        c1, c2 = 1 - BETA1**t, 1 - BETA2**t

        def update(w, m, v):
            return w * (1 - LR * WEIGHT_DECAY) - LR * (m / c1) / (jnp.sqrt(v / c2) + EPS)

        params = jax.tree_util.tree_map(update, params, m, v)
        return params, m, v, loss, norm

    return jax.jit(step)


WORKLOADS = {"mlp": (mlp_init, mlp_loss), "transformer": (lm_init, lm_loss)}


def measure(name, rounds, steps):
    init, loss_fn = WORKLOADS[name]
    rng = np.random.default_rng(3)
    xs, ys = DATA[name](rng)
    xs = xs if xs.dtype == np.float32 else xs.astype(np.int32)
    ys = ys.astype(np.int32)
    params = init(jax.random.PRNGKey(3))
    m = jax.tree_util.tree_map(jnp.zeros_like, params)
    v = jax.tree_util.tree_map(jnp.zeros_like, params)
    step_fn = make_step(loss_fn)
    state = {"params": params, "m": m, "v": v, "t": 0}
    order = batches(xs, BATCH[name], rng)

    def one_step():
        idx = next(order)
        state["t"] += 1
        key = jax.random.fold_in(jax.random.PRNGKey(7), state["t"])
        p, m, v, loss, _ = step_fn(
            state["params"], state["m"], state["v"], jnp.float32(state["t"]),
            jnp.asarray(xs[idx]), jnp.asarray(ys[idx]), key,
        )
        state["params"], state["m"], state["v"] = p, m, v
        return float(loss)

    return time_rounds(one_step, rounds, steps)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--workload", choices=sorted(WORKLOADS), action="append")
    args = ap.parse_args()
    for name in args.workload or list(WORKLOADS):
        best, median = measure(name, args.rounds, args.steps)
        print_row(name, f"jax {jax.__version__}", f"jit, {jax.devices()[0].platform}", best, median, args.rounds, args.steps)


if __name__ == "__main__":
    sys.exit(main())
