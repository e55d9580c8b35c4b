#!/usr/bin/env bash
# Makes a development CA and a serving certificate for the webhook with openssl, and prints the
# base64 caBundle for the webhook configurations. Production uses cert-manager (certs/README.md).
#
#   certs/make-dev-certs.sh [--service gpu-admit] [--namespace gpu-admit] [--days 30] OUTDIR
#
# OUTDIR gets ca.crt, ca.key, tls.crt, tls.key (ECDSA P-256). An existing ca.crt/ca.key in OUTDIR
# is reused, so running it again rotates the serving certificate under the same CA. Files are
# written next to their final name and renamed, so a running server never reads half a file.
set -euo pipefail
service=gpu-admit namespace=gpu-admit days=30 out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --service) service=$2; shift 2 ;;
    --namespace) namespace=$2; shift 2 ;;
    --days) days=$2; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    -*) echo "make-dev-certs: unknown option $1" >&2; exit 2 ;;
    *) out=$1; shift ;;
  esac
done
[ -n "$out" ] || { echo "usage: make-dev-certs.sh [--service S] [--namespace NS] [--days N] OUTDIR" >&2; exit 2; }
mkdir -p "$out"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT

if [ ! -f "$out/ca.crt" ] || [ ! -f "$out/ca.key" ]; then
  openssl ecparam -name prime256v1 -genkey -noout -out "$work/ca.key" 2>/dev/null
  openssl req -x509 -new -key "$work/ca.key" -sha256 -days 3650 -subj "/CN=gpu-admit dev CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$work/ca.crt" 2>/dev/null
  chmod 600 "$work/ca.key"
  mv "$work/ca.key" "$out/ca.key" && mv "$work/ca.crt" "$out/ca.crt"
fi

dns="$service.$namespace.svc"
cat >"$work/ext.cnf" <<CNF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:$service,DNS:$service.$namespace,DNS:$dns,DNS:$dns.cluster.local,DNS:localhost,IP:127.0.0.1,IP:::1
CNF
openssl ecparam -name prime256v1 -genkey -noout -out "$work/tls.key" 2>/dev/null
openssl req -new -key "$work/tls.key" -subj "/CN=$dns" -out "$work/tls.csr" 2>/dev/null
openssl x509 -req -in "$work/tls.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
  -days "$days" -sha256 -extfile "$work/ext.cnf" -out "$work/tls.crt" 2>/dev/null
chmod 600 "$work/tls.key"
# Key first: for a moment the new key sits beside the old certificate, which the server refuses
# (mismatch) and retries at its next check; never a new certificate with an old key.
cp "$work/tls.key" "$out/.tls.key.new" && mv "$out/.tls.key.new" "$out/tls.key"
cp "$work/tls.crt" "$out/.tls.crt.new" && mv "$out/.tls.crt.new" "$out/tls.crt"

echo "make-dev-certs: $out/tls.crt for $dns, localhost, 127.0.0.1 (valid $days days), CA $out/ca.crt" >&2
echo "caBundle: $(base64 -w0 <"$out/ca.crt")"
