#!/usr/bin/env bash
# Does the background audit slow admission? `bench/webhook_load.sh` (ROUTE=validate) against
# `serve --kubeconfig` on a fake API server holding 100 GPU nodes and 2,000 pods without owners,
# without the audit and with it running back to back (--audit-interval 1 --audit-min-interval 1:
# each audit reviews all 2,000 pods, at SCHED_IDLE), alternating ROUNDS times. Prints each run's
# gpu-admit lines and the audits the server finished during it. Results go in bench/README.md.
#
#   bench/audit_load.sh [BUILD_DIR]      (ROUNDS=2 CONCURRENCY="16 64" DURATION=10s NODES=100 PODS=2000)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
rounds=${ROUNDS:-2}
[ -x "$build/bench/fake_apiserver_tool" ] || { echo "audit_load: build $build/bench/fake_apiserver_tool (-DGPUADMIT_BENCH=ON)" >&2; exit 1; }
work=$(mktemp -d)
# The fake API server shares this machine; in a cluster the API server runs elsewhere. It runs
# as SCHED_IDLE so that serving the audit's lists does not take CPU from the reviews measured.
chrt --idle 0 "$build/bench/fake_apiserver_tool" "$work/api" "${NODES:-100}" "${PODS:-2000}" >"$work/api.out" &
api=$!
trap 'kill $api 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do grep -q '^ready' "$work/api.out" && break; sleep 0.2; done
grep -q '^ready' "$work/api.out" || { echo "audit_load: the fake API server did not start" >&2; exit 1; }
kubeconfig="$work/api/kubeconfig"
for round in $(seq "$rounds"); do
  for audit in off on; do
    args="--kubeconfig $kubeconfig"
    [ "$audit" = on ] && args="$args --audit-interval 1 --audit-min-interval 1 --audit-identity bench"
    echo "== round $round, audit $audit"
    SERVE_ARGS="$args" SERVER_LOG="$work/server.log" ROUTE=validate CONCURRENCY="${CONCURRENCY:-16 64}" \
      bench/webhook_load.sh "$build" | grep -E '^(target|gpu-admit) '
    echo "   audits finished: $(grep -c '"msg":"audit finished"' "$work/server.log" || true)," \
         "objects per audit: $(sed -n 's/.*"msg":"audit finished".*"objects":\([0-9]*\).*/\1/p' "$work/server.log" | tail -1)"
  done
done
