#!/usr/bin/env bash
# Installs what gpu-admit needs on a fresh Debian bookworm machine (as root, or with sudo),
# configures and builds it in $BUILD_DIR (default: build), and installs the independent
# admission checker from ../shared/tools/admission-oracle into $BUILD_DIR/oracle, and the CEL
# evaluator the tests use (tests/cel) into $BUILD_DIR/cel.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
SHARED_DIR=${GPUADMIT_SHARED_DIR:-$(cd .. && pwd)/shared}

packages=(build-essential cmake ninja-build pkg-config git
          nlohmann-json3-dev libyaml-cpp-dev libyaml-dev libre2-dev libspdlog-dev libssl-dev
          libcpp-httplib-dev libhttp-parser-dev prometheus-cpp-dev libsimdjson-dev libmimalloc-dev libgtest-dev libgmock-dev libbenchmark-dev
          openssl curl nodejs npm wrk nginx-light time
          etcd-server  # the real API server's store (tests/e2e/apiserver)
          clang-14 libclang-rt-14-dev  # .ci/run's sanitizer + libFuzzer build
          prometheus)  # promtool: checks and unit-tests manifests/monitoring/prometheusrule.yaml
# kubectl renders the manifests and drives the API server suite. Debian's is 1.20, whose built-in
# kustomize (v2) cannot render the base's `labels:`, so an installed newer kubectl is kept.
command -v kubectl >/dev/null || packages+=(kubernetes-client)
missing=()
for p in "${packages[@]}"; do
  # npm ships inside nodejs where nodejs comes from NodeSource: accept either.
  if [ "$p" = npm ] && command -v npm >/dev/null; then continue; fi
  if [ "$p" = nodejs ] && command -v node >/dev/null; then continue; fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  # Debian's prometheus package is installed for promtool alone. Its postinst starts the server
  # (invoke-rc.d, which fails the install where the init script cannot start it, and
  # deb-systemd-invoke under systemd) and enables it at boot: a policy-rc.d that refuses every
  # start (exit 101) stops both during the install, unless the machine already has one (Docker
  # images do), and its boot links are disabled afterwards. Nothing listens on :9090 after setup.
  no_start=""
  if [[ " ${missing[*]} " == *" prometheus "* ]] && [ ! -e /usr/sbin/policy-rc.d ]; then
    no_start=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\n# scripts/setup.sh: no service starts while it installs packages\nexit 101\n' | $SUDO tee "$no_start" >/dev/null
    $SUDO chmod 755 "$no_start"
    trap '$SUDO rm -f "$no_start"' EXIT
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [[ " ${missing[*]} " == *" prometheus "* ]]; then
    # Both the SysV links and, through systemctl, the systemd unit's.
    $SUDO update-rc.d prometheus disable >/dev/null 2>&1 || true
  fi
  if [ -n "$no_start" ]; then $SUDO rm -f "$no_start"; trap - EXIT; fi
fi
command -v promtool >/dev/null || { echo "setup: promtool is missing after installing prometheus" >&2; exit 1; }

cmake_args=(-S . -B "$BUILD_DIR" -G Ninja -DGPUADMIT_SHARED_DIR="$SHARED_DIR")
[ "${CI:-}" = true ] && cmake_args+=(-DGPUADMIT_WERROR=ON)
cmake "${cmake_args[@]}" ${GPUADMIT_CMAKE_ARGS:-} >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)"

# A CEL evaluator for the webhooks' matchConditions test (tests/cel/package.json), from npm.
cel="$BUILD_DIR/cel"
if [ ! -d "$cel/node_modules" ] || ! cmp -s tests/cel/package-lock.json "$cel/package-lock.json"; then
  rm -rf "$cel" && mkdir -p "$cel"
  cp tests/cel/package.json tests/cel/package-lock.json "$cel/"
  (cd "$cel" && npm ci --no-audit --no-fund --loglevel=error >/dev/null 2>&1) || {
    echo "setup: npm ci of the CEL evaluator (tests/cel) failed" >&2; exit 1; }
fi

# The oracle is data from ../shared: copied into the build folder, never into the project.
if [ -f "$SHARED_DIR/tools/admission-oracle/package.json" ]; then
  oracle="$BUILD_DIR/oracle"
  if [ ! -d "$oracle/node_modules" ] || ! cmp -s "$SHARED_DIR/tools/admission-oracle/package-lock.json" "$oracle/package-lock.json"; then
    rm -rf "$oracle" && mkdir -p "$oracle"
    cp -r "$SHARED_DIR/tools/admission-oracle/." "$oracle/"
    (cd "$oracle" && npm ci --no-audit --no-fund --loglevel=error >/dev/null 2>&1) || {
      echo "setup: npm ci of the admission oracle failed" >&2; exit 1; }
  fi
fi
