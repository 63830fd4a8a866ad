#!/usr/bin/env bash
# The whole loop as separate processes on a real Ethereum node: anvil, four `oai node`
# processes (an honest trainer, a cheating trainer, a challenger, a referee) sharing one block
# store (an IPFS node when OAI_IPFS_API is set, else a directory), and requesters who post and
# fund two jobs from the CLI. The challenger is killed with
# SIGKILL in the middle of its dispute and started again: it picks up from the chain's state.
# The cheater must end slashed and the honest node paid, as `oai chain jobs --json` shows.
#
# Usage: scripts/network_demo.sh [WORKDIR]      (default: a new temporary directory)
# Env:   OAI_BIN   the oai binary   (default target/release/oai; build it with
#                                    `cargo build --release -p oai-cli`)
#        OAI_ANVIL the anvil binary (default: the npm package under .ci/node)
#        OAI_IPFS_API an IPFS node's RPC API (e.g. from .ci/ipfs-daemon.sh): every block of
#                  every process goes there
# Progress goes to stderr; the last line on stdout is a JSON summary.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
oai="${OAI_BIN:-$root/target/release/oai}"
anvil="${OAI_ANVIL:-$root/.ci/node/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil}"
work="${1:-$(mktemp -d)}"
mkdir -p "$work"
work="$(cd "$work" && pwd)"
[ -x "$oai" ] || { echo "no oai binary at $oai (cargo build --release -p oai-cli)" >&2; exit 1; }
[ -x "$anvil" ] || { echo "no anvil at $anvil ((cd .ci/node && npm install) or set OAI_ANVIL)" >&2; exit 1; }
say() { echo "[$(date +%T)] $*" >&2; }

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$anvil" --port "$port" --block-time 1 --silent &
pids+=($!)
export OAI_RPC="http://127.0.0.1:$port" OAI_DEPLOYMENT="$work/deployment.json" OAI_STORE="$work/store"
for _ in $(seq 100); do
  curl -sf -X POST -H 'content-type: application/json' \
    -d '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}' "$OAI_RPC" >/dev/null && break
  sleep 0.1
done
say "anvil on $OAI_RPC (a block a second), work dir $work"
if [ -n "${OAI_IPFS_API:-}" ]; then
  export OAI_IPFS="$OAI_IPFS_API"
  say "blocks in the IPFS node at $OAI_IPFS"
fi

# Accounts: throwaway development keys, funded on the dev chain.
declare -A addr
i=0
for who in deployer ada bo honest cheater challenger referee; do
  addr[$who]="$("$oai" chain dev-key "$i" "$work/$who.key")"
  "$oai" chain dev-fund "${addr[$who]}" 100 >/dev/null
  i=$((i + 1))
done
"$oai" chain deploy --referee "${addr[referee]}" --move-timeout 60 --adjudication-timeout 120 \
  --key-file "$work/deployer.key" >&2

# The requesters' data and spec: 600 labelled points in three classes, a small MLP.
awk 'BEGIN { srand(7); for (i = 0; i < 600; i++) { c = i % 3;
  printf "%.4f,%.4f,%.4f,%.4f,%d\n", c + rand(), rand() - c, rand(), c * rand(), c } }' \
  > "$work/points.csv"
"$oai" dataset import points --csv "$work/points.csv" >&2
"$oai" train spec points --model mlp > "$work/spec.full.json"
python3 - "$work/spec.full.json" "$work/spec.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
s["steps"] = 60
s["checkpoint_every"] = 20
s["batch_size"] = 16
json.dump(s, open(sys.argv[2], "w"), indent=1)
PY
post() { "$oai" job post "$work/spec.json" --reward-eth 1 --stake-eth 1 --challenge-window 20 \
  --key-file "$work/$1.key" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'; }
job_a="$(post ada)"
"$oai" job fund "$job_a" 1 --key-file "$work/bo.key" >&2
job_b="$(post bo)"
posted=$(date +%s.%N)
say "job $job_a posted by Ada and funded by Bo (2 ETH), job $job_b posted by Bo (1 ETH)"

# The nodes.
node() { # name roles [extra config lines]
  { echo "roles = $2"; echo "poll_ms = 300"; echo "stake_eth = \"1\""; echo "key_file = \"$work/$1.key\"";
    [ $# -ge 3 ] && echo "$3"; true; } > "$work/$1.toml"
  "$oai" node --config "$work/$1.toml" >> "$work/$1.log" 2>&1 &
  pids+=($!)
  eval "pid_$1=$!"
}
node honest '["trainer"]'
node cheater '["trainer"]' 'forge_loss_at_step = 41'
node challenger '["challenger"]' $'[audit]\nstrategy = "full"\nparallelism = 2'
node referee '["referee"]'
say "nodes started: honest and cheating trainers, challenger, referee (logs in $work/*.log)"

# Kill the challenger mid-dispute, once it has made a bisection move, and start it again.
killed=0
status_of() { "$oai" chain jobs --json | python3 -c '
import json, sys
print(" ".join(j["status"] for j in json.load(sys.stdin)))'; }
slashed_at="" paid_at=""
for _ in $(seq 600); do
  if [ "$killed" = 0 ] && grep -q '"msg":"job [0-9]*: \(agreed on\|disputed\)' "$work/challenger.log" 2>/dev/null; then
    kill -KILL "$pid_challenger"
    say "challenger killed with SIGKILL mid-dispute; starting it again"
    node challenger '["challenger"]' $'[audit]\nstrategy = "full"\nparallelism = 2'
    killed=1
  fi
  s="$(status_of)"
  now=$(date +%s.%N)
  [[ -z "$slashed_at" && " $s " == *" Slashed "* ]] && slashed_at=$(python3 -c "print(round($now - $posted, 1))") && say "a job is slashed"
  [[ -z "$paid_at" && " $s " == *" Paid "* ]] && paid_at=$(python3 -c "print(round($now - $posted, 1))") && say "a job is paid"
  [ -n "$slashed_at" ] && [ -n "$paid_at" ] && break
  sleep 0.5
done
[ -n "$slashed_at" ] && [ -n "$paid_at" ] || { say "the jobs did not settle: $(status_of)"; tail -n 5 "$work"/*.log >&2; exit 1; }
sleep 3 # the parties withdraw what they are owed

# Funders of the slashed job take their escrow back.
jobs="$("$oai" chain jobs --json)"
slashed="$(echo "$jobs" | python3 -c 'import json,sys; print([j["id"] for j in json.load(sys.stdin) if j["status"]=="Slashed"][0])')"
if [ "$slashed" = "$job_a" ]; then funders="ada bo"; else funders="bo"; fi
for f in $funders; do "$oai" job refund "$slashed" --key-file "$work/$f.key" >&2; "$oai" job withdraw --key-file "$work/$f.key" >&2; done

# Stop the nodes cleanly (SIGTERM) and check they said so.
for n in honest cheater challenger referee; do eval "kill -TERM \$pid_$n"; done
for n in honest cheater challenger referee; do eval "wait \$pid_$n" || { say "$n did not exit cleanly"; exit 1; }; done
pids=("${pids[0]}")
for n in honest cheater challenger referee; do grep -q '"msg":"stopped"' "$work/$n.log" || { say "$n did not log its stop"; exit 1; }; done

parties="{"
for who in ada bo honest cheater challenger referee; do
  parties+="\"$who\": $("$oai" chain status --json --key-file "$work/$who.key"),"
done
parties="${parties%,}}"
say "done: slashed after ${slashed_at} s, paid after ${paid_at} s (from posting)"
python3 - "$jobs" "$parties" "$slashed_at" "$paid_at" "$killed" "${OAI_IPFS:-filesystem}" <<'PY'
import json, sys
jobs, parties = json.loads(sys.argv[1]), json.loads(sys.argv[2])
addr = {k: v["account"].lower() for k, v in parties.items()}
print(json.dumps({
    "jobs": jobs,
    "node_of_job": {j["id"]: next((k for k, a in addr.items() if a == (j["node"] or "").lower()), None) for j in jobs},
    "parties": {k: {f: v[f] for f in ("account", "balance_eth", "stake_eth", "owed_eth")} for k, v in parties.items()},
    "slashed_after_s": float(sys.argv[3]), "paid_after_s": float(sys.argv[4]),
    "challenger_killed_mid_dispute": sys.argv[5] == "1",
    "blocks": sys.argv[6],
}))
PY
