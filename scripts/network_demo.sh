#!/usr/bin/env bash
# The whole loop as separate processes on a real Ethereum node: anvil, four `oai node`
# processes (an honest trainer, a cheating trainer, a challenger, a referee) sharing one block
# store (an IPFS node when OAI_IPFS_API is set, else a directory), and requesters who post and
# fund two jobs from the CLI. Faults in the middle of the dispute, each of which the nodes must
# ride out:
# - the challenger is killed with SIGKILL after its first bisection move and started again;
# - the cheating trainer is killed with SIGKILL after its first answer and, while it is down,
#   the chain itself stops (anvil, state saved) and starts again from its state; the trainer
#   then comes back and must go on answering;
# - with IPFS, the IPFS node goes away for a few seconds (every node reaches it through a
#   proxy that is stopped and started again).
# The cheater must end slashed and the honest node paid, as `oai chain jobs --json` shows.
#
# Usage: scripts/network_demo.sh [WORKDIR]      (default: a new temporary directory)
# Env:   OAI_BIN   the oai binary   (default target/release/oai; build it with
#                                    `cargo build --release -p oai-cli`)
#        OAI_ANVIL the anvil binary (default: the npm package under .ci/node)
#        OAI_IPFS_API an IPFS node's RPC API (e.g. from .ci/ipfs-daemon.sh): every block of
#                  every process goes there
# Progress goes to stderr; the last line on stdout is a JSON summary: the jobs, each party's
# balance, stake and gas, the times from posting to slashing and to payment, the faults.
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

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port="$(free_port)"
export OAI_RPC="http://127.0.0.1:$port" OAI_DEPLOYMENT="$work/deployment.json" OAI_STORE="$work/store"
# anvil keeps its state in a file (written when it stops), so it can stop and start again.
start_anvil() {
  "$anvil" --port "$port" --block-time 1 --silent --state "$work/anvil-state.json" &
  pid_anvil=$!
  pids+=($!)
  for _ in $(seq 100); do
    curl -sf -X POST -H 'content-type: application/json' \
      -d '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}' "$OAI_RPC" >/dev/null && return
    sleep 0.1
  done
  say "anvil did not answer on $OAI_RPC"; exit 1
}
start_anvil
say "anvil on $OAI_RPC (a block a second), work dir $work"
if [ -n "${OAI_IPFS_API:-}" ]; then
  # Every process reaches the IPFS node through this proxy, so the node can "go away".
  proxy_port="$(free_port)"
  start_proxy() {
    python3 - "$proxy_port" "$OAI_IPFS_API" <<'PY' &
import asyncio, sys, urllib.parse
listen, api = int(sys.argv[1]), urllib.parse.urlsplit(sys.argv[2])
async def pipe(r, w):
    try:
        while data := await r.read(65536):
            w.write(data)
            await w.drain()
    except OSError:
        pass
    finally:
        w.close()
async def handle(r, w):
    try:
        ur, uw = await asyncio.open_connection(api.hostname, api.port)
    except OSError:
        w.close()
        return
    await asyncio.gather(pipe(r, uw), pipe(ur, w))
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", listen)
    async with server:
        await server.serve_forever()
asyncio.run(main())
PY
    pid_proxy=$!
    pids+=($!)
    for _ in $(seq 100); do
      curl -s -o /dev/null "http://127.0.0.1:$proxy_port" && return
      sleep 0.05
    done
    say "the IPFS proxy did not start"; exit 1
  }
  start_proxy
  export OAI_IPFS="http://127.0.0.1:$proxy_port"
  say "blocks in the IPFS node at $OAI_IPFS_API (through $OAI_IPFS)"
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
# (a job's reward never exceeds the stake it asks for: Ada's half and Bo's half make 1 ETH)
post() { "$oai" job post "$work/spec.json" --reward-eth "$2" --stake-eth 1 --challenge-window 60 \
  --key-file "$work/$1.key" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'; }
job_a="$(post ada 0.5)"
"$oai" job fund "$job_a" 0.5 --key-file "$work/bo.key" >&2
job_b="$(post bo 1)"
posted=$(date +%s.%N)
say "job $job_a posted by Ada and funded by Bo (1 ETH), job $job_b posted by Bo (1 ETH)"

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

# The faults, each once, when the dispute has reached it.
challenger_killed=0 cheater_killed=0 chain_restarted=0 ipfs_outage_s=0 cheater_answers_before=0
status_of() { # the jobs' statuses, or "down" while the chain does not answer
  local j
  j="$("$oai" chain jobs --json 2>/dev/null)" || { echo down; return; }
  echo "$j" | python3 -c 'import json, sys; print(" ".join(j["status"] for j in json.load(sys.stdin)))'
}
answers() { grep -c '"msg":"job [0-9]*: answered a bisection move' "$work/cheater.log" || true; }
slashed_at="" paid_at=""
for _ in $(seq 600); do
  if [ "$challenger_killed" = 0 ] && grep -q '"msg":"job [0-9]*: \(agreed on\|disputed\)' "$work/challenger.log" 2>/dev/null; then
    kill -KILL "$pid_challenger"
    say "challenger killed with SIGKILL mid-dispute; starting it again"
    node challenger '["challenger"]' $'[audit]\nstrategy = "full"\nparallelism = 2'
    challenger_killed=1
    if [ -n "${OAI_IPFS:-}" ]; then
      # The restarted challenger has no cache: it must read the logs again, and IPFS is gone.
      kill -KILL "$pid_proxy"; wait "$pid_proxy" 2>/dev/null || true
      say "the IPFS node went away"
      sleep 5
      start_proxy
      ipfs_outage_s=5
      say "the IPFS node is back"
    fi
  fi
  if [ "$cheater_killed" = 0 ] && [ "$(answers)" -gt 0 ]; then
    kill -KILL "$pid_cheater"; wait "$pid_cheater" 2>/dev/null || true
    cheater_answers_before="$(answers)"
    cheater_killed=1
    say "cheating trainer killed with SIGKILL mid-dispute; the chain stops too"
    kill -TERM "$pid_anvil"; wait "$pid_anvil" 2>/dev/null || true
    sleep 3
    start_anvil
    chain_restarted=1
    say "the chain is back from its saved state; starting the cheating trainer again"
    node cheater '["trainer"]' 'forge_loss_at_step = 41'
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
for n in honest cheater challenger referee; do grep -q '"msg":"stopped"' "$work/$n.log" || { say "$n did not log its stop"; exit 1; }; done

parties="{"
for who in ada bo honest cheater challenger referee; do
  parties+="\"$who\": {\"status\": $("$oai" chain status --json --key-file "$work/$who.key"),"
  parties+=" \"spent\": $("$oai" chain spent --json --account "${addr[$who]}")},"
done
parties="${parties%,}}"
errors="{"
for n in honest cheater challenger referee; do errors+="\"$n\": $(grep -c '"level":"error"' "$work/$n.log" || true),"; done
errors="${errors%,}}"
say "done: slashed after ${slashed_at} s, paid after ${paid_at} s (from posting)"
python3 - "$jobs" "$parties" "$errors" <<PY
import json, sys
jobs, parties, errors = json.loads(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])
addr = {k: v["status"]["account"].lower() for k, v in parties.items()}
print(json.dumps({
    "jobs": jobs,
    "node_of_job": {j["id"]: next((k for k, a in addr.items() if a == (j["node"] or "").lower()), None) for j in jobs},
    "parties": {k: {**{f: v["status"][f] for f in ("account", "balance_eth", "stake_eth", "owed_eth")},
                    "txs": v["spent"]["txs"], "gas": v["spent"]["gas"], "fee_eth": v["spent"]["fee_eth"]}
                for k, v in parties.items()},
    "slashed_after_s": $slashed_at, "paid_after_s": $paid_at,
    "faults": {
        "challenger_killed_mid_dispute": $challenger_killed == 1,
        "cheater_killed_mid_dispute": $cheater_killed == 1,
        "chain_restarted_mid_dispute": $chain_restarted == 1,
        "cheater_answers_before_kill": $cheater_answers_before,
        "cheater_answers_after_restart": $(answers) - $cheater_answers_before,
        "ipfs_outage_s": $ipfs_outage_s,
    },
    "errors_logged": errors,
    "blocks": "${OAI_IPFS_API:-filesystem}",
}))
PY
