#!/usr/bin/env bash
# Load benchmark of `gpu-admit serve`: wrk sends one AdmissionReview (a GPU Deployment reviewed by
# the default policies) over keep-alive TLS at concurrency 1, 16 and 64, 10 s per point, and the
# same run measures a no-work ceiling: nginx serving the identical response bytes with the same
# certificate and ciphers. Prints requests/s, client p50/p90/p99, the server's own review-time
# p99 (from its histogram), and the ratios. Results go in bench/README.md.
#
#   bench/webhook_load.sh [BUILD_DIR]      (DURATION=10s CONCURRENCY="1 16 64" SERVE_ARGS="..." to change;
#                                           ROUTE=validate for the validating policies;
#                                           BASE_BUILD=DIR adds a row for DIR's gpu-admit at each level,
#                                           measured between nginx and this build's)
# "CPU µs/req" is the serving processes' own CPU time (user + system, from /proc) over the
# requests wrk completed: the server's, or nginx's master and workers'.
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
base_build=${BASE_BUILD:-}
[ -z "$base_build" ] || [ -x "$base_build/gpu-admit" ] || { echo "webhook_load: no $base_build/gpu-admit" >&2; exit 1; }

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

# Builds since session 18 link mimalloc (webhook/log/heap.h). Where glibc's malloc serves (an
# older BASE_BUILD, or -DGPUADMIT_MIMALLOC=OFF), the server gets the larger per-thread cache those
# builds' manifests set (SERVER_TUNABLES= leaves glibc's defaults); nginx runs with its own.
start_server() {  # BUILD LOG -> the port on stdout; the pid in server_pid
  GLIBC_TUNABLES=${SERVER_TUNABLES-glibc.malloc.tcache_count=2048:glibc.malloc.tcache_max=4096} \
    "$1/gpu-admit" serve ${SERVE_ARGS:-} --addr 127.0.0.1:0 --tls-cert "$work/certs/tls.crt" --tls-key "$work/certs/tls.key" \
    2>"$2" &
  server_pid=$!
  pids+=($server_pid)
}
listening_port() {  # LOG
  for _ in $(seq 100); do grep -q '"msg":"listening"' "$1" && break; sleep 0.1; done
  local p
  p=$(sed -n 's/.*"msg":"listening".*"port":\([0-9]*\).*/\1/p' "$1" | head -1)
  [ -n "$p" ] || { cat "$1" >&2; exit 1; }
  echo "$p"
}
start_server "$build" "$work/server.log"
server_pids=$server_pid
port=$(listening_port "$work/server.log")
if [ -n "$base_build" ]; then
  start_server "$base_build" "$work/base.log"
  base_pids=$server_pid
  base_port=$(listening_port "$work/base.log")
fi
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
nginx_pid=$!
pids+=($nginx_pid)
for _ in $(seq 50); do curl -sk "https://127.0.0.1:$nginx_port/mutate" -o /dev/null && break; sleep 0.1; done
cmp -s <(curl_tls -X POST -H 'Content-Type: application/json' --data-binary @"$request" "https://127.0.0.1:$nginx_port/mutate") \
  "$work/www/mutate" || { echo "webhook_load: nginx does not serve the same answer" >&2; cat "$work/nginx-error.log" >&2; exit 1; }

to_us() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000; else if (v ~ /s$/) print n * 1e6; else print n }'; }
# Cumulative counts of the server's review histogram for the route, summed over decisions.
buckets() {  # PORT
  curl_tls "https://127.0.0.1:$1/metrics" |
    awk '/^gpuadmit_review_duration_seconds_bucket\{.*route="'"$route"'"/ {
           match($0, /le="[^"]*"/); le = substr($0, RSTART + 4, RLENGTH - 5); sum[le] += $2 }
         END { for (le in sum) print le, sum[le] }' | sort -g
}
# The q-quantile of the difference of two bucket snapshots, interpolated inside its bucket, in µs.
# Buckets are paired by bound: before a server's first review its histogram has no series at all.
quantile_us() {
  awk -v q="$3" '
    FNR == NR { if (NF == 2) before[$1] = $2; next }
    NF == 2 { le[++k] = $1; n[k] = $2 - before[$1] }
    END {
      total = n[k]; target = q * total; lower = 0; below = 0
      for (i = 1; i <= k; i++) {
        if (n[i] >= target) {
          upper = (le[i] == "+Inf") ? lower : le[i]
          share = (n[i] > below) ? (target - below) / (n[i] - below) : 1
          printf "%.0f", (lower + (upper - lower) * share) * 1e6; exit }
        lower = le[i]; below = n[i] } }' <(echo "$1") <(echo "$2")
}

cpu_ticks() {  # PID... -> their CPU time so far (utime + stime), in clock ticks
  local total=0 p
  for p in "$@"; do
    [ -r "/proc/$p/stat" ] || continue
    total=$(( total + $(sed 's/.*) //' "/proc/$p/stat" | awk '{ print $12 + $13 }') ))
  done
  echo "$total"
}

run_wrk() {  # URL CONCURRENCY PID... -> "rps p50 p90 p99 cpu_us_per_request errors" (latencies in µs)
  local url=$1 c=$2 threads=$(( $2 < 2 ? 1 : 2 ))
  shift 2
  local ticks0 ticks1
  ticks0=$(cpu_ticks "$@")
  BODY_FILE=$request wrk -t"$threads" -c"$c" -d"$duration" --latency -s bench/webhook_load.lua "$url" >"$work/wrk.txt"
  ticks1=$(cpu_ticks "$@")
  local rps p50 p90 p99 errors requests cpu
  rps=$(awk '/^Requests\/sec:/ { print $2 }' "$work/wrk.txt")
  p50=$(to_us "$(awk '$1 == "50%" { print $2 }' "$work/wrk.txt")")
  p90=$(to_us "$(awk '$1 == "90%" { print $2 }' "$work/wrk.txt")")
  p99=$(to_us "$(awk '$1 == "99%" { print $2 }' "$work/wrk.txt")")
  errors=$(awk '/Non-2xx|Socket errors/ { sub(/^ +/, ""); printf "%s; ", $0 }' "$work/wrk.txt")
  requests=$(awk '/requests in/ { print $1 }' "$work/wrk.txt")
  cpu=$(awk -v t=$(( ticks1 - ticks0 )) -v hz="$(getconf CLK_TCK)" -v n="$requests" 'BEGIN { printf "%.0f", t / hz * 1e6 / n }')
  echo "$rps $p50 $p90 $p99 $cpu ${errors:-none}"
}

echo "gpu-admit load benchmark: $(nproc) CPUs, $duration per point, request $(wc -c <"$request") bytes, answer $(wc -c <"$work/www/mutate") bytes"
row='%-12s %5s %10s %9s %9s %9s %14s %12s  %s\n'
printf "$row" target conc 'req/s' 'p50 µs' 'p90 µs' 'p99 µs' 'server p99 µs' 'CPU µs/req' errors
nginx_pids() { echo "$nginx_pid" $(pgrep -P "$nginx_pid"); }
webhook_row() {  # NAME PORT PID CONCURRENCY
  local before after server_p99 rps p50 p90 p99 cpu errors
  before=$(buckets "$2")
  read -r rps p50 p90 p99 cpu errors < <(run_wrk "https://127.0.0.1:$2/$route" "$4" "$3")
  after=$(buckets "$2")
  server_p99=$(quantile_us "$before" "$after" 0.99)
  printf "$row" "$1" "$4" "$rps" "$p50" "$p90" "$p99" "$server_p99" "$cpu" "$errors"
  result[$1-$4]="$rps $p99"
}
declare -A result
for c in $levels; do
  read -r rps p50 p90 p99 cpu errors < <(run_wrk "https://127.0.0.1:$nginx_port/mutate" "$c" $(nginx_pids))
  printf "$row" nginx "$c" "$rps" "$p50" "$p90" "$p99" - "$cpu" "$errors"
  result[nginx-$c]="$rps $p99"
  [ -z "$base_build" ] || webhook_row base "$base_port" "$base_pids" "$c"
  webhook_row gpu-admit "$port" "$server_pids" "$c"
done
echo
echo "ratios (gpu-admit / nginx ceiling, same run):"
for target in ${base_build:+base} gpu-admit; do
  for c in $levels; do
    read -r g_rps g_p99 <<<"${result[$target-$c]}"
    read -r n_rps n_p99 <<<"${result[nginx-$c]}"
    awk -v t="$target" -v c="$c" -v gr="$g_rps" -v nr="$n_rps" -v gp="$g_p99" -v np="$n_p99" \
      'BEGIN { printf "  %-9s concurrency %3d: throughput %.0f%% of the ceiling, client p99 %.2fx the ceiling'"'"'s\n", t, c, 100 * gr / nr, gp / np }'
  done
done
