#!/usr/bin/env bash
# Runs every golden request through the real binary (`gpu-admit review`) and has the independent
# admission oracle (../shared/tools/admission-oracle, installed by scripts/setup.sh) apply the
# patch with a standard RFC 6902 library and validate the result against the Kubernetes schema.
set -euo pipefail
build=$1 source=$2
oracle="$build/oracle/oracle.mjs"
[ -f "$oracle" ] || { echo "admission oracle not installed in $build/oracle: run scripts/setup.sh" >&2; exit 1; }
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
pairs=()
for dir in "$source"/tests/golden/*/; do
  name=$(basename "$dir")
  config=(); [ -f "$dir/config.yaml" ] && config=(--config "$dir/config.yaml")
  [ -f "$dir/cluster.json" ] && config+=(--cluster "$dir/cluster.json")
  set +e
  "$build/gpu-admit" review "${config[@]}" "$dir/request.json" >"$out/$name.json" 2>"$out/$name.err"
  status=$?
  set -e
  if [ $status -eq 2 ]; then continue; fi  # not an AdmissionReview answer (HTTP 400): nothing to check
  # A 400 denial answers a request that is not a reviewable AdmissionReview: the oracle
  # rightly refuses to read such a request file.
  if grep -q '"code":400' "$out/$name.json"; then continue; fi
  pairs+=("$dir/request.json" "$out/$name.json")
done
echo "oracle: checking ${#pairs[@]} request/response files"
node "$oracle" check "${pairs[@]}" | node -e '
  let bad = 0, n = 0;
  require("readline").createInterface({input: process.stdin}).on("line", l => {
    const r = JSON.parse(l); n++;
    if (!r.ok) { bad++; console.log("REJECTED", r.request, JSON.stringify(r.errors)); }
    for (const w of r.warnings || []) if (!w.startsWith("pre-existing")) console.log("warning", r.request, w);
  }).on("close", () => { console.log(`${n - bad} passed, ${bad} failed`); process.exit(bad ? 1 : 0); });'
