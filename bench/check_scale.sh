#!/usr/bin/env bash
# `gpu-admit check` at repository scale: N GPU Deployments (default 10,000, about 9.4 MB) in one
# YAML file, then the same objects as one JSON List; wall time and peak resident memory of each.
#
#   bench/check_scale.sh [BUILD_DIR...]     # default build-release; N=10000 objects
#
# Several build folders (a worktree of an older commit, for one) are measured one after the other
# on the same files, so a before/after comparison comes from one run. The figures are in
# bench/README.md ("check at repository scale"). The files are generated into a temporary folder
# and removed afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || set -- build-release
N=${N:-10000}
# The JSON copy is written with the `yaml` package of the admission oracle that setup.sh installs.
YAML_MODULE=$(realpath "${YAML_MODULE:-build/oracle/node_modules/yaml}")
for dir in "$@"; do
  [ -x "$dir/gpu-admit" ] || { echo "no $dir/gpu-admit: build it first (ninja -C $dir gpu-admit)" >&2; exit 2; }
done
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (Debian's time)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One GPU Deployment per document, 50 namespaces, the shape of manifests/examples' vLLM server.
awk -v n="$N" 'BEGIN {
  for (i = 0; i < n; i++) {
    ns = "team-" (i % 50)
    printf "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: llm-serving-%d\n  namespace: %s\n", i, ns
    printf "  labels:\n    app.kubernetes.io/name: llm-serving-%d\nspec:\n  replicas: 1\n  selector:\n", i
    printf "    matchLabels:\n      app.kubernetes.io/name: llm-serving-%d\n  template:\n    metadata:\n", i
    printf "      labels:\n        app.kubernetes.io/name: llm-serving-%d\n    spec:\n      containers:\n", i
    printf "        - name: vllm\n          image: docker.io/vllm/vllm-openai:v0.6.%d\n", i % 10
    printf "          args: [\"--model\", \"/models/llama-3-8b\", \"--port\", \"8000\"]\n"
    printf "          ports:\n            - containerPort: 8000\n              name: http\n"
    printf "          env:\n            - name: HF_HOME\n              value: /models/cache\n"
    printf "          resources:\n            limits:\n              nvidia.com/gpu: 1\n"
    printf "              memory: 32Gi\n              cpu: \"8\"\n"
    printf "          volumeMounts:\n            - name: models\n              mountPath: /models\n"
    printf "      volumes:\n        - name: models\n          persistentVolumeClaim:\n"
    printf "            claimName: models-%s\n", ns
  }
}' > "$work/deployments.yaml"

measure() {  # BINARY LABEL FILE: wall seconds and peak RSS of one check (exit 1: something was denied)
  local binary=$1 label=$2 file=$3 status=0
  /usr/bin/time -f "%e %M" -o "$work/time" "$binary" check "$file" > "$work/out" 2>&1 || status=$?
  [ "$status" -le 1 ] || { echo "$label: check failed ($status):" >&2; tail -5 "$work/out" >&2; exit 1; }
  read -r wall kib < "$work/time"
  printf '%-40s %s\n' "$label" "$(awk -v w="$wall" -v k="$kib" 'BEGIN { printf "%5.2f s wall, %4.0f MB peak RSS", w, k / 1024 }')"
  echo "    $(tail -1 "$work/out")"
}

# The same objects as JSON: a List, as `kubectl get -o json` writes it.
node -e '
  const yaml = require(process.argv[1]);
  const docs = yaml.parseAllDocuments(require("fs").readFileSync(process.argv[2], "utf8")).map((d) => d.toJSON());
  require("fs").writeFileSync(process.argv[3], JSON.stringify({apiVersion: "v1", kind: "List", items: docs}));
' "$YAML_MODULE" "$work/deployments.yaml" "$work/deployments.json"
echo "$N Deployments: YAML $(stat -c %s "$work/deployments.yaml") bytes, JSON $(stat -c %s "$work/deployments.json") bytes"
for dir in "$@"; do
  for format in yaml json; do
    measure "$dir/gpu-admit" "$dir ($(git -C "$dir/.." rev-parse --short HEAD 2>/dev/null || echo '?')) $format" "$work/deployments.$format"
  done
done
