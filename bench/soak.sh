#!/usr/bin/env bash
# The soak: `gpu-admit serve --kubeconfig` against a real API server for an hour at 1,000 mixed
# reviews/s, with faults on a schedule (10 certificate rotations, one of them a broken file; the
# config replaced by invalid YAML and restored; the API server killed and started again).
# bench/soak.py drives the load and the faults and prints a row a minute: reviews, errors, p50,
# p99 and max latency, and the server's resident memory. Results go in bench/README.md ("Soak").
#
#   bench/soak.sh [BUILD_DIR]     (SOAK_SECONDS=3600 RATE=1000 SERVE_ARGS="..." to change)
#
# Needs etcd (etcd-server) and python3; the API server is ../shared/tools/kube-apiserver. The
# bodies are the golden requests (tests/golden, without the malformed ones), each sent to both
# /mutate and /validate; the API server holds the sample cluster (manifests/examples/cluster.json).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
seconds=${SOAK_SECONDS:-3600}
rate=${RATE:-1000}
apiserver=${KUBE_APISERVER_DIR:-../shared/tools/kube-apiserver}
for tool in python3 node etcd curl openssl; do command -v $tool >/dev/null || { echo "soak: $tool not installed" >&2; exit 1; }; done
[ -x "$build/gpu-admit" ] || { echo "soak: build $build/gpu-admit first (Release)" >&2; exit 1; }

work=$(mktemp -d)
server=
# SIGKILL for the control plane: a v1.20 API server whose etcd went first never finishes a graceful stop.
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null || true
  [ -d "$work/kube" ] && kill -KILL $(cat "$work/kube/apiserver.pid" "$work/kube/etcd.pid" 2>/dev/null) 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$apiserver/start.sh" "$work/kube" >/dev/null
. "$work/kube/env"
# The sample cluster into the API server: namespaces, nodes (with their status and their own
# taints, not the not-ready taint the API server adds on create) and pods bound to nodes.
node tests/e2e/apiserver/load_cluster.mjs "$work/kube" manifests/examples/cluster.json

mkdir -p "$work/requests"
for dir in tests/golden/*/; do
  name=$(basename "$dir")
  case "$name" in malformed--*) continue ;; esac
  cp "$dir/request.json" "$work/requests/mutate--$name.json"
  cp "$dir/request.json" "$work/requests/validate--$name.json"
done
certs/make-dev-certs.sh "$work/certs" >/dev/null 2>&1
cp policies/default.yaml "$work/config.yaml"

# Read only where glibc's malloc serves: builds before mimalloc (session 18), or GPUADMIT_MIMALLOC=OFF.
GLIBC_TUNABLES=${SERVER_TUNABLES-glibc.malloc.tcache_count=2048:glibc.malloc.tcache_max=4096} \
  "$build/gpu-admit" serve ${SERVE_ARGS:-} --addr 127.0.0.1:0 --tls-cert "$work/certs/tls.crt" \
  --tls-key "$work/certs/tls.key" --config "$work/config.yaml" --kubeconfig "$KUBECONFIG" 2>"$work/server.log" &
server=$!
for _ in $(seq 100); do grep -q '"msg":"listening"' "$work/server.log" && break; sleep 0.1; done
port=$(sed -n 's/.*"msg":"listening".*"port":\([0-9]*\).*/\1/p' "$work/server.log" | head -1)
[ -n "$port" ] || { cat "$work/server.log" >&2; exit 1; }
for _ in $(seq 100); do curl -sf --cacert "$work/certs/ca.crt" "https://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.2; done

status=0
python3 bench/soak.py "$work" "$port" "$server" "$seconds" "$rate" || status=$?
echo "# server log: $(wc -l <"$work/server.log") lines; warnings and errors by message:"
grep -E '"level":"(warning|error|critical)"' "$work/server.log" | sed -n 's/.*"msg":"\([^"]*\)".*/\1/p' | sort | uniq -c | sed 's/^/#   /'
exit $status
