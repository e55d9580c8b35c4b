#!/usr/bin/env bash
# Validates the deployment manifests with the independent admission oracle.
#   manifests_check.sh raw BUILD SOURCE       every YAML file under manifests/base and
#                                             manifests/components as written, and base/config.yaml
#                                             identical to policies/default.yaml
#   manifests_check.sh rendered BUILD SOURCE  what `kubectl kustomize` renders for the base, each
#                                             overlay and the NetworkPolicy component with and
#                                             without its input; exit 77 (CTest: skipped) without kubectl
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

# The path from directory $1 to $2.
relative() { node -e 'console.log(require("path").relative(process.argv[1], process.argv[2]))' "$1" "$2"; }

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
    for f in "$source"/manifests/base/*.yaml "$source"/manifests/components/*/*.yaml; do
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
                  PodDisruptionBudget Role RoleBinding MutatingWebhookConfiguration ValidatingWebhookConfiguration; do
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

    # The component in a throwaway overlay, as an installer would use it (kustomize takes only
    # relative paths to other kustomizations).
    component_overlay() {
      mkdir -p "$1"
      printf 'resources: [%s]\ncomponents: [%s]\n' "$(relative "$1" "$source/manifests/base")" \
        "$(relative "$1" "$source/manifests/components/networkpolicy")" >"$1/kustomization.yaml"
    }
    # Without its input it must fail, and say what is missing, rather than render a policy that
    # admits no API server.
    component_overlay "$out/no-input"
    if kubectl kustomize "$out/no-input" >"$out/no-input.yaml" 2>"$out/no-input.err"; then
      echo "components/networkpolicy rendered without gpu-admit-apiserver-cidr:" >&2
      grep -A8 'ipBlock' "$out/no-input.yaml" >&2; exit 1
    fi
    grep -q 'gpu-admit-apiserver-cidr' "$out/no-input.err" || {
      echo "components/networkpolicy without its input failed without naming it:" >&2
      cat "$out/no-input.err" >&2; exit 1; }
    echo "== components/networkpolicy without its input: refused ($(grep -o 'nothing selected[^\"]*' "$out/no-input.err" || true))"
    # With it, as the component's comment tells installers: the CIDR lands in the port-8443 rule
    # and the input itself is not rendered (local-config), so it is never applied.
    component_overlay "$out/with-input"
    printf 'configMapGenerator:\n  - name: gpu-admit-apiserver-cidr\n    envs: [apiserver-cidr.env]\n' \
      >>"$out/with-input/kustomization.yaml"
    echo "cidr=203.0.113.0/24" >"$out/with-input/apiserver-cidr.env"
    kubectl kustomize "$out/with-input" >"$out/with-input.yaml"
    expect_webhook_cidrs "$out/with-input.yaml" 203.0.113.0/24 "components/networkpolicy with an input"
    if grep -q 'name: gpu-admit-apiserver-cidr' "$out/with-input.yaml"; then
      echo "components/networkpolicy renders its input ConfigMap: it must stay local-config" >&2; exit 1
    fi
    echo "== components/networkpolicy with an input"
    validate "$out/with-input.yaml"
    ;;
  *) echo "usage: manifests_check.sh raw|rendered BUILD SOURCE" >&2; exit 2 ;;
esac
