#!/usr/bin/env bash
# Validates the deployment manifests with the independent admission oracle.
#   manifests_check.sh raw BUILD SOURCE       every YAML file under manifests/base as written, and
#                                             base/config.yaml identical to policies/default.yaml
#   manifests_check.sh rendered BUILD SOURCE  what `kubectl kustomize` renders for the base and
#                                             each overlay; exit 77 (CTest: skipped) without kubectl
set -euo pipefail
mode=$1 build=$2 source=$3
oracle="$build/oracle/oracle.mjs"
[ -f "$oracle" ] || { echo "admission oracle not installed in $build/oracle: run scripts/setup.sh" >&2; exit 1; }
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT

# Every object must be valid (a built-in kind the oracle knows, not skipped).
validate() {
  node "$oracle" validate "$@" >"$out/result.jsonl" || true
  node -e '
    let bad = 0, n = 0;
    require("readline").createInterface({input: process.stdin}).on("line", l => {
      const r = JSON.parse(l); n++;
      if (!r.ok || r.status !== "valid") { bad++; console.log("INVALID", r.file, r.kind, r.name, r.status, JSON.stringify(r.errors)); }
    }).on("close", () => { console.log(`${n - bad} of ${n} objects valid`); process.exit(bad || !n ? 1 : 0); });' <"$out/result.jsonl"
}

case "$mode" in
  raw)
    cmp "$source/manifests/base/config.yaml" "$source/policies/default.yaml" || {
      echo "manifests/base/config.yaml differs from policies/default.yaml: copy it again" >&2; exit 1; }
    files=()
    for f in "$source"/manifests/base/*.yaml; do
      case "$(basename "$f")" in kustomization.yaml|config.yaml) continue ;; esac
      files+=("$f")
    done
    validate "${files[@]}"
    ;;
  rendered)
    command -v kubectl >/dev/null || { echo "kubectl not installed: rendering not checked"; exit 77; }
    for dir in "$source/manifests/base" "$source"/manifests/overlays/*/; do
      name=$(basename "$dir")
      kubectl kustomize "$dir" >"$out/$name.yaml"
      # What a cluster needs to run it, rendered into every variant.
      for kind in Namespace ServiceAccount ClusterRole ClusterRoleBinding ConfigMap Service Deployment \
                  PodDisruptionBudget NetworkPolicy MutatingWebhookConfiguration ValidatingWebhookConfiguration; do
        grep -q "^kind: $kind$" "$out/$name.yaml" || { echo "$name renders no $kind" >&2; exit 1; }
      done
      echo "== $name"
      validate "$out/$name.yaml"
    done
    ;;
  *) echo "usage: manifests_check.sh raw|rendered BUILD SOURCE" >&2; exit 2 ;;
esac
