#!/bin/sh
# A shell "service" that uses meshreg through its local agent (Consul's HTTP API) with curl only.
# It registers itself with a TTL check and keeps it passing, discovers a peer service, then watches
# that peer with a blocking query and exits once the peer's list changes.
#
#   MESHREG_AGENT=http://127.0.0.1:8500 SERVICE=sh-app PEER=peer sh app.sh
set -eu
AGENT=${MESHREG_AGENT:-http://127.0.0.1:8500}
SERVICE=${SERVICE:-sh-app}
PEER=${PEER:-peer}
ID="$SERVICE-1"
HEADERS=$(mktemp)
trap 'rm -f "$HEADERS"; kill $HEARTBEAT 2>/dev/null || true' EXIT

curl -fsS -X PUT "$AGENT/v1/agent/service/register" \
  -d "{\"Name\":\"$SERVICE\",\"ID\":\"$ID\",\"Port\":7000,\"Check\":{\"TTL\":\"3s\"}}"
echo "registered $ID"

# Keep the TTL check passing in the background (the check ID Consul generates is service:<id>).
( while :; do curl -fsS -X PUT "$AGENT/v1/agent/check/pass/service:$ID?note=alive" >/dev/null; sleep 1; done ) &
HEARTBEAT=$!

# $1 = index; prints the body, leaves the headers in $HEADERS
query() { curl -fsS -D "$HEADERS" "$AGENT/v1/health/service/$PEER?passing&wait=10s&index=$1"; }
index_of() { tr -d '\r' < "$HEADERS" | awk -F': ' 'tolower($1) == "x-consul-index" { print $2 }'; }
count() { printf '%s' "$1" | grep -o '"Service":{' | wc -l | tr -d ' '; }

INDEX=0
BODY='[]'
while [ "$(count "$BODY")" -eq 0 ]; do
  BODY=$(query "$INDEX")
  INDEX=$(index_of)
done
PORT=$(printf '%s' "$BODY" | grep -o '"Port":[0-9]*' | head -n 1 | cut -d: -f2)
echo "discovered $PEER on port $PORT"

SEEN=$(count "$BODY")
while :; do
  BODY=$(query "$INDEX")
  INDEX=$(index_of)
  NOW=$(count "$BODY")
  if [ "$NOW" -ne "$SEEN" ]; then
    echo "$PEER changed: $NOW instances"
    break
  fi
done

curl -fsS -X PUT "$AGENT/v1/agent/service/deregister/$ID"
echo "deregistered $ID"
