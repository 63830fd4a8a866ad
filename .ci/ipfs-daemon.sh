#!/usr/bin/env bash
# Start an offline js-ipfs daemon (kubo-style RPC on 127.0.0.1:$IPFS_API_PORT) for the tests.
# Usage: .ci/ipfs-daemon.sh <repo-dir>   -> prints the API URL once the node answers.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$1"; port="${IPFS_API_PORT:-5801}"
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
if (c.Discovery) { c.Discovery.MDNS = { Enabled: false }; c.Discovery.webRTCStar = { Enabled: false }; }
fs.writeFileSync(p, JSON.stringify(c, null, 2));' "$repo" "$port"
nohup "$jsipfs" daemon --offline >"$repo.daemon.log" 2>&1 &
echo $! >"$repo.pid"
for _ in $(seq 1 120); do
  if curl -s -X POST "http://127.0.0.1:$port/api/v0/id" >/dev/null 2>&1; then
    echo "http://127.0.0.1:$port"; exit 0
  fi
  sleep 0.5
done
echo "js-ipfs daemon did not come up; log:" >&2; tail -30 "$repo.daemon.log" >&2; exit 1
