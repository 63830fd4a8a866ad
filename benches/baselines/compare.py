"""oai beside JAX and PyTorch: one table from the JSON lines of `train_speed`, `jax_train.py`
and `torch_train.py` (each line: workload, framework, config, steps_per_s as the best round,
median_steps_per_s, rounds, steps).

Usage: python compare.py RUN.jsonl...   Rows: each workload and run length (`rounds x steps`);
columns: every framework's configs, best and median steps/s; then oai's verifiable, logged step
(what a node runs) over the fastest baseline configuration, by best and by median round.
"""

import json
import sys
from collections import defaultdict

OAI_NODE = "verifiable, logged"


def main(paths):
    rows = []
    for path in paths:
        with open(path) as f:
            rows += [json.loads(line) for line in f if line.strip()]
    runs = defaultdict(list)
    for r in rows:
        runs[(r["workload"], r["rounds"], r["steps"])].append(r)
    for (workload, rounds, steps), found in sorted(runs.items()):
        print(f"\n{workload}: {rounds} round(s) of {steps} steps (steps/s)")
        print(f"  {'framework':<14} {'config':<36} {'best':>8} {'median':>8}")
        for r in found:
            print(
                f"  {r['framework']:<14} {r['config']:<36} {r['steps_per_s']:>8.1f} "
                f"{r['median_steps_per_s']:>8.1f}"
            )
        oai = [r for r in found if r["framework"].startswith("oai") and r["config"] == OAI_NODE]
        others = [r for r in found if not r["framework"].startswith("oai")]
        if oai and others:
            for key, what in (("steps_per_s", "best"), ("median_steps_per_s", "median")):
                fastest = max(others, key=lambda r: r[key])
                ratio = oai[0][key] / fastest[key]
                print(
                    f"  oai ({OAI_NODE}) / fastest baseline by {what} round "
                    f"({fastest['framework']}, {fastest['config']}): {ratio:.2f}x"
                )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
