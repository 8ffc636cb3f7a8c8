#!/usr/bin/env bash
# Two federated data centers on one machine: dc1 and dc2, each a complete control plane (one
# `meshreg server`) with one agent; dc1 exports `web` to dc2. Registers web in dc1, reads it from
# dc2's agent with ?dc=dc1, then kills dc1 and shows dc2 still serving the last copy, marked stale.
# Run from a built checkout (`npm ci && npm run build`). Ports: dc1 uses BASE..BASE+20 and
# AGENT_BASE, dc2 the same plus 100 (defaults 9600 and 8500). Everything stops on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
BASE=${BASE:-9600}
AGENT_BASE=${AGENT_BASE:-8500}
work=$(mktemp -d)
cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
(umask 077; head -c 32 /dev/urandom | base64 > "$work/token"; head -c 32 /dev/urandom | base64 > "$work/fed-token")

# start NAME COMMAND VAR=VALUE...: runs meshreg in the background and waits for its ready line.
start() {
  local name=$1 command=$2
  shift 2
  env MESHREG_TOKEN_FILE="$work/token" MESHREG_LOG_LEVEL=warn "$@" \
    node dist/bin/meshreg.js "$command" > "$work/$name.out" 2> "$work/$name.log" &
  echo $! > "$work/$name.pid"
  for _ in $(seq 1 150); do
    grep -q ' ready ' "$work/$name.out" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$name did not start:" >&2
  cat "$work/$name.log" >&2
  exit 1
}
server() { # NAME OFFSET PEER PEER_OFFSET EXPORTS
  start "$1" server MESHREG_DATACENTER="$1" \
    MESHREG_SESSION_PORT=$((BASE + $2)) MESHREG_META_PORT=$((BASE + $2 + 10)) MESHREG_DATA_PORT=$((BASE + $2 + 20)) \
    MESHREG_FEDERATION_PEERS="$3=ws://127.0.0.1:$((BASE + $4))" MESHREG_FEDERATION_TOKEN_FILE="$work/fed-token" \
    MESHREG_FEDERATION_EXPORTS="$5" MESHREG_FEDERATION_DIGEST_MS=2000
}
agent() { # DATACENTER OFFSET ZONE
  start "agent-$1" agent MESHREG_DATACENTER="$1" MESHREG_ZONE="$3" MESHREG_NODE_NAME="node-$1" \
    MESHREG_AGENT_PORT=$((AGENT_BASE + $2)) MESHREG_XDS_PORT=$((AGENT_BASE + $2 + 2)) \
    MESHREG_AGENT_UPSTREAM="127.0.0.1:$((BASE + $2))" MESHREG_AGENT_DATA_DIR="$work/agent-$1"
}

server dc1 0 dc2 100 dc2=web
server dc2 100 dc1 0 ''
agent dc1 0 a
agent dc2 100 a
dc1=http://127.0.0.1:$AGENT_BASE
dc2=http://127.0.0.1:$((AGENT_BASE + 100))

echo '# register web in dc1'
curl -sS -X PUT "$dc1/v1/agent/service/register" -d '{"Name":"web","ID":"web-1","Address":"127.0.0.1","Port":8080}'
echo
echo '# the data centers dc2 knows'
curl -sS "$dc2/v1/catalog/datacenters"; echo
echo '# dc1 web, read in dc2'
for _ in $(seq 1 50); do
  out=$(curl -sS "$dc2/v1/health/service/web?dc=dc1")
  [[ $out == *web-1* ]] && break
  sleep 0.1
done
echo "$out"
echo "# dc2's own web: empty, remote data is only for those who ask"
curl -sS "$dc2/v1/health/service/web"; echo
echo '# a data center nobody knows'
curl -sS -w ' (HTTP %{http_code})\n' "$dc2/v1/health/service/web?dc=dc9"

echo '# kill dc1: dc2 keeps serving the last copy, marked stale'
pid=$(cat "$work/dc1.pid")
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
sleep 5
curl -sS -D - -o /dev/null "$dc2/v1/health/service/web?dc=dc1" | grep -iE '^(x-consul-knownleader|x-cache|age):'
curl -sS "$dc2/v1/health/service/web?dc=dc1"; echo
