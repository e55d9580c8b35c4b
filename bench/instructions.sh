#!/usr/bin/env bash
# Instructions per review, counted by valgrind's callgrind: deterministic, so two builds can be
# compared on a shared VM whose wall clock moves by half between runs. Counts the work inside
# answer_admission_review (and the no-work ceiling's loop) in two runs of different lengths and
# reports the difference per call, so one-time costs (first-call statics, engine set-up) cancel.
#
#   bench/instructions.sh [REPO_DIR] [BUILD_DIR]     (defaults: . and build; needs valgrind)
#   SHORT=0.3 LONG=1.5 bench/instructions.sh ...     (the two runs' minimum times, seconds)
#
# Compare a base commit in a worktree: git worktree add /tmp/base BASE, build engine_bench there,
# then run this script on both trees. Results go in bench/README.md.
set -euo pipefail
repo=$(cd "${1:-.}" && pwd)
build=${2:-build}
command -v valgrind >/dev/null || { echo "instructions: valgrind not installed" >&2; exit 1; }
[ -x "$repo/$build/bench/engine_bench" ] || { echo "instructions: build $repo/$build/bench/engine_bench first" >&2; exit 1; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# one BENCHMARK MIN_TIME -> "instructions calls"
one() {
  local bm=$1 toggle='gpuadmit::answer_admission_review(*' fn=answer_admission_review
  if [ "$bm" = NoWorkCeiling ]; then toggle='*BM_NoWorkCeiling(*' fn=decode_admission_review; fi
  (cd "$repo" && valgrind --tool=callgrind --callgrind-out-file="$out" --toggle-collect="$toggle" \
     "$build/bench/engine_bench" --benchmark_filter="BM_$bm\$" --benchmark_min_time="$2" >/dev/null 2>&1)
  local ir calls
  ir=$(callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
  calls=$(callgrind_annotate --inclusive=yes --tree=calling "$out" 2>/dev/null |
          grep -E ">   .*gpuadmit::$fn\(" | head -1 | sed -E 's/.*\(([0-9,]+)x\).*/\1/; s/,//g')
  echo "$ir $calls"
}

# The two runs' minimum times in seconds (under valgrind, so a slow machine needs longer ones).
short=${SHORT:-0.3} long=${LONG:-1.5}
ceiling=
for bm in NoWorkCeiling ReviewDefaultPolicies ReviewMutateRoute ReviewValidateRoute; do
  read -r a ca < <(one "$bm" "$short")
  read -r b cb < <(one "$bm" "$long")
  [ "$cb" -gt "$ca" ] || { echo "instructions: $bm ran $ca and $cb calls; raise SHORT/LONG" >&2; exit 1; }
  per=$(( (b - a) / (cb - ca) ))
  [ -z "$ceiling" ] && ceiling=$per
  printf '%-24s %9d instructions per review  %5s x ceiling  (runs of %d and %d calls)\n' \
    "$bm" "$per" "$(awk -v p="$per" -v c="$ceiling" 'BEGIN {printf "%.2f", p / c}')" "$ca" "$cb"
done
