"""llama.cpp's prompt and decode tokens/s on a GGUF file (llama-cpp-python, its CPU build),
for given prompt token ids: the prompt evaluated in one batch, then NEW - 1 tokens decoded one
at a time, greedily, best of ROUNDS rounds. The same measurement as oai's `generate_speed`,
which prints the ids; `generate_vs_llamacpp.sh` runs both.

Usage: python llamacpp_generate.py GGUF IDS NEW ROUNDS THREADS   (IDS: comma-separated)
"""

import os
import sys
import time

import numpy as np
from llama_cpp import Llama


def main() -> None:
    path, ids, new, rounds, threads = sys.argv[1:6]
    prompt = [int(i) for i in ids.split(",")]
    new, rounds, threads = int(new), int(rounds), int(threads)
    llm = Llama(
        model_path=path,
        n_ctx=len(prompt) + new + 8,
        n_batch=512,
        n_threads=threads,
        n_threads_batch=threads,
        verbose=False,
    )
    vocab = llm.n_vocab()

    def next_token() -> int:
        # the last evaluated position's logits (llama-cpp-python keeps `scores` only with
        # logits_all, which would make it compute every position's)
        return int(np.argmax(np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(vocab,))))

    best_prompt = best_decode = float("inf")
    tokens = []
    for _ in range(rounds):
        llm.reset()
        start = time.perf_counter()
        llm.eval(prompt)
        token = next_token()
        prompt_s = time.perf_counter() - start
        tokens = [token]
        start = time.perf_counter()
        for _ in range(new - 1):
            llm.eval([token])
            token = next_token()
            tokens.append(token)
        decode_s = time.perf_counter() - start
        best_prompt, best_decode = min(best_prompt, prompt_s), min(best_decode, decode_s)
    name = "llama.cpp (llama-cpp-python) on the file"
    print(
        f"{name:<48} {len(prompt) / best_prompt:>12.1f} {(new - 1) / best_decode:>12.1f}"
        f" {os.path.getsize(path) / 1e6:>13.1f}"
    )
    print(f"llama.cpp's greedy tokens: {','.join(map(str, tokens))}")


if __name__ == "__main__":
    main()
