#!/usr/bin/env bash
# Load benchmark of `gpu-admit serve`: wrk sends one AdmissionReview (a GPU Deployment reviewed by
# the default policies) over keep-alive TLS at concurrency 1, 16 and 64, 10 s per point, and the
# same run measures a no-work ceiling: nginx serving the identical response bytes with the same
# certificate and ciphers. Prints requests/s, client p50/p90/p99, the server's own review-time
# p99 (from its histogram), and the ratios. Results go in bench/README.md.
#
#   bench/webhook_load.sh [BUILD_DIR]      (DURATION=10s CONCURRENCY="1 16 64" SERVE_ARGS="..." to change;
#                                           ROUTE=validate for the validating policies)
#
# Everything runs on 127.0.0.1 and stops by itself; on a small machine wrk, nginx and the server
# share the CPUs, so compare figures within one run.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
duration=${DURATION:-10s}
levels=${CONCURRENCY:-1 16 64}
route=${ROUTE:-mutate}
[ "$route" = mutate ] || [ "$route" = validate ] || { echo "webhook_load: ROUTE is mutate or validate" >&2; exit 2; }
request=tests/golden/probe-defaults--deployment-vllm-profile/request.json
for tool in wrk nginx curl; do command -v $tool >/dev/null || { echo "webhook_load: $tool not installed (scripts/setup.sh)" >&2; exit 1; }; done
[ -x "$build/gpu-admit" ] || { echo "webhook_load: build $build/gpu-admit first" >&2; exit 1; }

work=$(mktemp -d)
pids=()
# SERVER_LOG=F keeps the server's log lines (bench/audit_load.sh counts its audits in them).
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true
  [ -z "${SERVER_LOG:-}" ] || cp "$work/server.log" "$SERVER_LOG"
  rm -rf "$work"
}
trap cleanup EXIT
certs/make-dev-certs.sh "$work/certs" >/dev/null 2>&1

# The server runs with the malloc settings of manifests/base/deployment.yaml (SERVER_TUNABLES= to
# leave glibc's defaults); nginx with its own defaults.
GLIBC_TUNABLES=${SERVER_TUNABLES-glibc.malloc.tcache_count=2048:glibc.malloc.tcache_max=4096} \
  "$build/gpu-admit" serve ${SERVE_ARGS:-} --addr 127.0.0.1:0 --tls-cert "$work/certs/tls.crt" --tls-key "$work/certs/tls.key" \
  2>"$work/server.log" &
pids+=($!)
for _ in $(seq 100); do grep -q '"msg":"listening"' "$work/server.log" && break; sleep 0.1; done
port=$(sed -n 's/.*"msg":"listening".*"port":\([0-9]*\).*/\1/p' "$work/server.log" | head -1)
[ -n "$port" ] || { cat "$work/server.log" >&2; exit 1; }
curl_tls() { curl -sS --cacert "$work/certs/ca.crt" "$@"; }

# The ceiling serves exactly the bytes the webhook answers.
mkdir -p "$work/www"
chmod 755 "$work" "$work/www"  # nginx workers run as nobody when started by root
curl_tls -X POST -H 'Content-Type: application/json' --data-binary @"$request" \
  "https://127.0.0.1:$port/$route" >"$work/www/mutate"
grep -q '"uid"' "$work/www/mutate" || { echo "webhook_load: unexpected answer" >&2; cat "$work/www/mutate" >&2; exit 1; }
nginx_port=$((port + 1))
cat >"$work/nginx.conf" <<CONF
worker_processes auto;
pid $work/nginx.pid;
error_log $work/nginx-error.log error;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/tmp;
  keepalive_requests 1000;
  server {
    listen 127.0.0.1:$nginx_port ssl;
    ssl_certificate $work/certs/tls.crt;
    ssl_certificate_key $work/certs/tls.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;
    client_max_body_size 3m;
    root $work/www;
    default_type application/json;
    # A POST to a static file is 405; answer it with the file (nginx reads the body first).
    location / { error_page 405 =200 \$uri; }
  }
}
CONF
mkdir -p "$work/tmp"
nginx -c "$work/nginx.conf" -p "$work" -g 'daemon off;' 2>>"$work/nginx-error.log" &
pids+=($!)
for _ in $(seq 50); do curl -sk "https://127.0.0.1:$nginx_port/mutate" -o /dev/null && break; sleep 0.1; done
cmp -s <(curl_tls -X POST -H 'Content-Type: application/json' --data-binary @"$request" "https://127.0.0.1:$nginx_port/mutate") \
  "$work/www/mutate" || { echo "webhook_load: nginx does not serve the same answer" >&2; cat "$work/nginx-error.log" >&2; exit 1; }

to_us() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000; else if (v ~ /s$/) print n * 1e6; else print n }'; }
# Cumulative counts of the server's review histogram for the route, summed over decisions.
buckets() {
  curl_tls "https://127.0.0.1:$port/metrics" |
    awk '/^gpuadmit_review_duration_seconds_bucket\{.*route="'"$route"'"/ {
           match($0, /le="[^"]*"/); le = substr($0, RSTART + 4, RLENGTH - 5); sum[le] += $2 }
         END { for (le in sum) print le, sum[le] }' | sort -g
}
# The q-quantile of the difference of two bucket snapshots, interpolated inside its bucket, in µs.
quantile_us() {
  paste -d' ' <(echo "$1") <(echo "$2") | awk -v q="$3" '
    { le[NR] = $1; n[NR] = $4 - $2 } END {
      total = n[NR]; target = q * total; lower = 0; below = 0
      for (i = 1; i <= NR; i++) {
        if (n[i] >= target) {
          upper = (le[i] == "+Inf") ? lower : le[i]
          share = (n[i] > below) ? (target - below) / (n[i] - below) : 1
          printf "%.0f", (lower + (upper - lower) * share) * 1e6; exit }
        lower = le[i]; below = n[i] } }'
}

run_wrk() {  # URL CONCURRENCY -> "rps p50 p90 p99 errors" (latencies in µs)
  local threads=$(( $2 < 2 ? 1 : 2 ))
  BODY_FILE=$request wrk -t"$threads" -c"$2" -d"$duration" --latency -s bench/webhook_load.lua "$1" >"$work/wrk.txt"
  local rps p50 p90 p99 errors
  rps=$(awk '/^Requests\/sec:/ { print $2 }' "$work/wrk.txt")
  p50=$(to_us "$(awk '$1 == "50%" { print $2 }' "$work/wrk.txt")")
  p90=$(to_us "$(awk '$1 == "90%" { print $2 }' "$work/wrk.txt")")
  p99=$(to_us "$(awk '$1 == "99%" { print $2 }' "$work/wrk.txt")")
  errors=$(awk '/Non-2xx|Socket errors/ { sub(/^ +/, ""); printf "%s; ", $0 }' "$work/wrk.txt")
  echo "$rps $p50 $p90 $p99 ${errors:-none}"
}

echo "gpu-admit load benchmark: $(nproc) CPUs, $duration per point, request $(wc -c <"$request") bytes, answer $(wc -c <"$work/www/mutate") bytes"
printf '%-12s %5s %10s %9s %9s %9s %14s  %s\n' target conc 'req/s' 'p50 µs' 'p90 µs' 'p99 µs' 'server p99 µs' errors
declare -A result
for c in $levels; do
  read -r rps p50 p90 p99 errors < <(run_wrk "https://127.0.0.1:$nginx_port/mutate" "$c")
  printf '%-12s %5s %10s %9s %9s %9s %14s  %s\n' nginx "$c" "$rps" "$p50" "$p90" "$p99" - "$errors"
  result[nginx-$c]="$rps $p99"
  before=$(buckets)
  read -r rps p50 p90 p99 errors < <(run_wrk "https://127.0.0.1:$port/$route" "$c")
  after=$(buckets)
  server_p99=$(quantile_us "$before" "$after" 0.99)
  printf '%-12s %5s %10s %9s %9s %9s %14s  %s\n' gpu-admit "$c" "$rps" "$p50" "$p90" "$p99" "$server_p99" "$errors"
  result[gpu-admit-$c]="$rps $p99"
done
echo
echo "ratios (gpu-admit / nginx ceiling, same run):"
for c in $levels; do
  read -r g_rps g_p99 <<<"${result[gpu-admit-$c]}"
  read -r n_rps n_p99 <<<"${result[nginx-$c]}"
  awk -v c="$c" -v gr="$g_rps" -v nr="$n_rps" -v gp="$g_p99" -v np="$n_p99" \
    'BEGIN { printf "  concurrency %3d: throughput %.0f%% of the ceiling, client p99 %.2fx the ceiling'"'"'s\n", c, 100 * gr / nr, gp / np }'
done
