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

# The NetworkPolicy in rendered file $1 admits exactly CIDR $2 on the webhook port (8443);
# $3 names the variant in the error.
expect_webhook_cidrs() {
  local got
  got=$(node -e '
    const yaml = require(process.argv[1]);
    for (const doc of yaml.parseAllDocuments(require("fs").readFileSync(process.argv[2], "utf8"))) {
      const o = doc.toJS();
      if (!o || o.kind !== "NetworkPolicy") continue;
      for (const rule of (o.spec && o.spec.ingress) || [])
        if ((rule.ports || []).some(p => p.port === 8443))
          for (const peer of rule.from || []) console.log(peer.ipBlock ? peer.ipBlock.cidr : JSON.stringify(peer));
    }' "$build/oracle/node_modules/yaml" "$1")
  [ "$got" = "$2" ] || {
    echo "$3: the NetworkPolicy admits [${got//$'\n'/, }] on port 8443, not [$2]" >&2; exit 1; }
  echo "== $3: port 8443 admits $2 only"
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
                  PodDisruptionBudget MutatingWebhookConfiguration ValidatingWebhookConfiguration; do
        grep -q "^kind: $kind$" "$out/$name.yaml" || { echo "$name renders no $kind" >&2; exit 1; }
      done
      # The base must not be able to block the API server's calls to the webhook: a
      # NetworkPolicy needs the API server's CIDR, which only the installer knows, and a wrong
      # one blocks every call while the validating webhook fails closed. Opt-in, as a component.
      if [ "$name" = base ] && grep -q '^kind: NetworkPolicy$' "$out/base.yaml"; then
        echo "base renders a NetworkPolicy: it belongs in components/networkpolicy, opt-in" >&2; exit 1
      fi
      echo "== $name"
      validate "$out/$name.yaml"
    done
    expect_webhook_cidrs "$out/dev.yaml" 172.18.0.0/16 "overlays/dev"
    ;;
  *) echo "usage: manifests_check.sh raw|rendered BUILD SOURCE" >&2; exit 2 ;;
esac
