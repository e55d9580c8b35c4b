#!/usr/bin/env bash
# Good-review latency of `gpu-admit serve` under hostile load. For each attack (slowloris headers,
# slow bodies, an idle TLS flood, half-finished handshakes, oversized and too many headers,
# pipelining, endless chunked bodies) bench/hostile_load.py runs it against a fresh server while
# a probe opens a new TLS connection every 50 ms and posts an AdmissionReview; it prints the
# probe's p50/p99/max (handshake + answer, ms) and how many probes failed. Results go in
# bench/README.md ("Under hostile load").
#
#   bench/hostile_load.sh [BUILD_DIR]     (SECONDS_PER_ATTACK=10 ATTACKS="..." SERVE_ARGS="..." to change)
#
# 127.0.0.1 only; every attack is bounded in time and in connections (at most ~120 held).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
seconds=${SECONDS_PER_ATTACK:-10}
attacks=${ATTACKS:-none slowloris-headers slow-body idle-tls-flood half-handshakes oversized-headers many-headers pipelining chunked-flood}
request=tests/golden/probe-defaults--deployment-vllm-profile/request.json
for tool in python3 curl; do command -v $tool >/dev/null || { echo "hostile_load: $tool not installed" >&2; exit 1; }; done
[ -x "$build/gpu-admit" ] || { echo "hostile_load: build $build/gpu-admit first (Release)" >&2; exit 1; }

work=$(mktemp -d)
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
certs/make-dev-certs.sh "$work/certs" >/dev/null 2>&1

printf '%-18s %8s %8s %8s %8s %8s\n' attack reviews failed p50_ms p99_ms max_ms
for attack in $attacks; do
  # A fresh server per attack, so that one attack's leftovers do not weigh on the next.
  "$build/gpu-admit" serve ${SERVE_ARGS:-} --addr 127.0.0.1:0 --tls-cert "$work/certs/tls.crt" \
    --tls-key "$work/certs/tls.key" 2>"$work/server.log" &
  server=$!
  for _ in $(seq 100); do grep -q '"msg":"listening"' "$work/server.log" && break; sleep 0.1; done
  port=$(sed -n 's/.*"msg":"listening".*"port":\([0-9]*\).*/\1/p' "$work/server.log" | head -1)
  [ -n "$port" ] || { cat "$work/server.log" >&2; exit 1; }
  timeout $((seconds + 30)) python3 bench/hostile_load.py "$port" "$work/certs/ca.crt" "$request" "$attack" "$seconds" |
    awk '{ printf "%-18s %8s %8s %8s %8s %8s\n", $1, $2, $3, $4, $5, $6 }'
  rss=$(awk '/VmHWM/ { print $2 / 1024 " MiB" }' /proc/$server/status)
  rejected=$(grep '"connections rejected"' "$work/server.log" | sed -n 's/.*"count":\([0-9]*\).*"reason":"\([a-z_]*\)".*/\2=\1/p' | tr "\\n" " " || true)
  echo "    server peak RSS $rss; rejection log lines: ${rejected:-none}"
  kill "$server"; wait "$server" 2>/dev/null || true; server=
done
