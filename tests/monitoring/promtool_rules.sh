#!/usr/bin/env bash
# The alert rules of manifests/monitoring/prometheusrule.yaml under promtool (Debian's
# prometheus package; scripts/setup.sh installs it).
#   promtool_rules.sh check SOURCE WORK   promtool check rules on the PrometheusRule's groups
#   promtool_rules.sh test SOURCE WORK    promtool test rules on tests/monitoring/*.test.yaml
# promtool reads Prometheus rule files, not the CRD: the lines under the top-level `spec:`
# (the file's last key), unindented by two, are one. A missing promtool fails, never skips.
set -euo pipefail
mode=$1 source=$2 work=$3
command -v promtool >/dev/null || {
  echo "promtool not found: install Debian's prometheus package (scripts/setup.sh does)" >&2; exit 1; }
crd="$source/manifests/monitoring/prometheusrule.yaml"
mkdir -p "$work"
awk '
  /^spec:[ \t]*$/ { inside = 1; next }
  inside && /^[^ #\t]/ { print FILENAME ": a top-level key after spec: keep spec last" > "/dev/stderr"; exit 2 }
  inside { sub(/^  /, ""); print }
' "$crd" >"$work/rules.yaml"
grep -q '^groups:' "$work/rules.yaml" || { echo "$crd: no spec.groups" >&2; exit 1; }
grep -q '^kind: PrometheusRule$' "$crd" && grep -q '^apiVersion: monitoring.coreos.com/v1$' "$crd" || {
  echo "$crd: not a monitoring.coreos.com/v1 PrometheusRule" >&2; exit 1; }

case "$mode" in
  check)
    promtool check rules "$work/rules.yaml"
    ;;
  test)
    tests=("$source"/tests/monitoring/*.test.yaml)
    # Every alert has its own test file, named after it.
    for alert in $(sed -n 's/^ *- alert: *//p' "$work/rules.yaml"); do
      [ -f "$source/tests/monitoring/$alert.test.yaml" ] || {
        echo "alert $alert has no unit test: add tests/monitoring/$alert.test.yaml" >&2; exit 1; }
    done
    # rule_files in each test name rules.yaml, next to it.
    cp "${tests[@]}" "$work/"
    cd "$work"
    promtool test rules "${tests[@]##*/}"
    ;;
  *) echo "usage: $0 check|test SOURCE WORK" >&2; exit 2 ;;
esac
