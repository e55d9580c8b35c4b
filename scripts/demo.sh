#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs gpu-admit on the embedded default: the sample GPU
# workloads in manifests/examples/ reviewed with policies/default.yaml against the sample
# cluster manifests/examples/cluster.json, first offline (`check`), then by the real HTTPS
# webhook (`serve`) on 127.0.0.1 with dev certificates.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
BUILD_DIR=${BUILD_DIR:-build}
echo
echo "== gpu-admit inventory --cluster manifests/examples/cluster.json"
"$BUILD_DIR/gpu-admit" inventory --cluster manifests/examples/cluster.json
echo
echo "== gpu-admit check --cluster manifests/examples/cluster.json manifests/examples/ (default policies)"
"$BUILD_DIR/gpu-admit" check --cluster manifests/examples/cluster.json manifests/examples/ || status=$?
# Exit 1 only means some sample was denied, which the demo shows on purpose.
[ "${status:-0}" -le 1 ]

echo
echo "== gpu-admit serve on 127.0.0.1 with dev certificates (certs/make-dev-certs.sh)"
certs="$BUILD_DIR/demo-certs"
certs/make-dev-certs.sh "$certs" >/dev/null
log="$BUILD_DIR/demo-server.log"
"$BUILD_DIR/gpu-admit" serve --addr 127.0.0.1:0 --cluster manifests/examples/cluster.json --tls-cert "$certs/tls.crt" --tls-key "$certs/tls.key" 2>"$log" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q '"msg":"listening"' "$log" && break; sleep 0.1; done
port=$(sed -n 's/.*"msg":"listening".*"port":\([0-9]*\).*/\1/p' "$log" | head -1)
[ -n "$port" ] || { cat "$log" >&2; exit 1; }
echo "listening on https://127.0.0.1:$port; readyz: $(curl -sS --cacert "$certs/ca.crt" "https://127.0.0.1:$port/readyz")"
node scripts/demo_client.mjs "$BUILD_DIR/oracle" "$certs/ca.crt" "https://127.0.0.1:$port" manifests/examples/*.yaml

echo
echo "== SIGTERM: the server drains and exits"
kill -TERM $server
wait $server && echo "exit status 0"
trap - EXIT
echo "server log (JSON lines): $log"
