#!/usr/bin/env bash
# Mutations of custom resources against the operators' published CRDs (tests/data/crds/,
# SOURCES.tsv). The API server prunes a field its CRD does not declare, so a patch that writes one
# would be lost without an error: every patched custom resource must validate against its CRD.
#   - each golden request for a custom resource, answered by `gpu-admit review`, its patch applied
#     by the admission oracle (an independent RFC 6902 library);
#   - each custom resource of the public fixtures and of tests/data/custom_resources/, as
#     `gpu-admit check --show-mutated` leaves it.
# The checker must also refuse two objects that are wrong on purpose, or it proves nothing.
set -euo pipefail
build=$1 source=$2 shared=$3
oracle="$build/oracle/oracle.mjs" modules="$build/oracle/node_modules"
validate=(node "$source/tests/support/crd_validate.mjs" "$modules" "$source/tests/data/crds")
[ -f "$oracle" ] || { echo "admission oracle not installed in $build/oracle: run scripts/setup.sh" >&2; exit 1; }
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT

for dir in "$source"/tests/golden/custom-resource--*/; do
  name=$(basename "$dir")
  args=(); [ -f "$dir/config.yaml" ] && args=(--config "$dir/config.yaml")
  [ -f "$dir/cluster.json" ] && args+=(--cluster "$dir/cluster.json")
  "$build/gpu-admit" review "${args[@]}" "$dir/request.json" >"$out/$name.response.json" || true
  node "$oracle" apply "$dir/request.json" "$out/$name.response.json" >"$out/$name.patched.json"
done

# Every custom resource `check` reviews, as mutated (allowed ones) or as written (denied ones).
inputs=("$source"/tests/data/custom_resources/*.yaml)
for file in "$shared"/fixtures/public/*.yaml; do
  grep -qE '^apiVersion: *"?[a-z0-9-]+\.[a-z0-9.-]+/' "$file" && inputs+=("$file")
done
"$build/gpu-admit" check -o json --show-mutated "${inputs[@]}" >"$out/check.json" || true
node -e '
  const fs = require("fs");
  const [report, dir] = process.argv.slice(1);
  let n = 0;
  for (const r of JSON.parse(fs.readFileSync(report, "utf8"))) {
    if (!r.mutated || !r.mutated.apiVersion || !r.mutated.apiVersion.split("/")[0].includes(".")) continue;
    fs.writeFileSync(`${dir}/check-${n++}.mutated.json`, JSON.stringify(r.mutated));
  }
  if (n === 0) { console.error("check mutated no custom resource"); process.exit(1); }
  console.log(`${n} mutated custom resources from check`);' "$out/check.json" "$out"

echo "validating $(ls "$out"/*.patched.json "$out"/*.mutated.json | wc -l) objects against their CRDs"
if ! "${validate[@]}" "$out"/*.patched.json "$out"/*.mutated.json >"$out/results.jsonl"; then
  grep '"ok":false' "$out/results.jsonl" >&2
  exit 1
fi
grep -c '"ok":true' "$out/results.jsonl"
if "${validate[@]}" "$source"/tests/data/crds/negative/*.yaml >/dev/null; then
  echo "the CRD check accepted objects that are wrong on purpose" >&2
  exit 1
fi
echo "ok"
