#!/usr/bin/env bash
# Start an offline js-ipfs daemon (kubo-style RPC on 127.0.0.1:$IPFS_API_PORT) for the tests.
# Usage: .ci/ipfs-daemon.sh <repo-dir>   -> prints the API URL once the node answers.
# Without IPFS_API_PORT a free port is chosen; a port already in use is an error (another
# server there would answer the readiness check in the daemon's place).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$1"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port="${IPFS_API_PORT:-$(free_port)}"
if ! python3 -c 'import socket, sys; socket.socket().bind(("127.0.0.1", int(sys.argv[1])))' "$port" 2>/dev/null; then
  echo "ipfs-daemon: port $port on 127.0.0.1 is already in use" >&2; exit 1
fi
rpc_port="$(free_port)"   # js-ipfs's own gRPC-over-websocket listener (5003 by default)
export IPFS_PATH="$repo"
export NODE_OPTIONS="--require $here/node/polyfill.cjs"
jsipfs="$here/node/node_modules/.bin/jsipfs"
rm -rf "$repo"; mkdir -p "$repo"
"$jsipfs" init --empty-repo >"$repo.init.log" 2>&1
node -e '
const fs = require("fs"); const p = process.argv[1] + "/config"; const port = process.argv[2];
const c = JSON.parse(fs.readFileSync(p));
c.Addresses.Swarm = []; c.Addresses.Delegates = []; c.Bootstrap = [];
c.Addresses.API = "/ip4/127.0.0.1/tcp/" + port; c.Addresses.Gateway = "";
c.Addresses.RPC = "/ip4/127.0.0.1/tcp/" + process.argv[3];
if (c.Discovery) { c.Discovery.MDNS = { Enabled: false }; c.Discovery.webRTCStar = { Enabled: false }; }
fs.writeFileSync(p, JSON.stringify(c, null, 2));' "$repo" "$port" "$rpc_port"
nohup "$jsipfs" daemon --offline >"$repo.daemon.log" 2>&1 &
echo $! >"$repo.pid"
for _ in $(seq 1 120); do
  if ! kill -0 "$(cat "$repo.pid")" 2>/dev/null; then
    echo "js-ipfs daemon exited; log:" >&2; tail -30 "$repo.daemon.log" >&2; exit 1
  fi
  if curl -sf -X POST "http://127.0.0.1:$port/api/v0/id" >/dev/null 2>&1; then
    echo "http://127.0.0.1:$port"; exit 0
  fi
  sleep 0.5
done
echo "js-ipfs daemon did not come up; log:" >&2; tail -30 "$repo.daemon.log" >&2; exit 1
