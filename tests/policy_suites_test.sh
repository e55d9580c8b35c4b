#!/usr/bin/env bash
# `gpu-admit test` itself: a suite with wrong expectations fails (exit 1) with a summary and
# JUnit XML that name the failures; a suite with a bad key is refused (exit 2) naming its file,
# line and key.
set -uo pipefail
bin=$1 suites=$2
fail() { echo "FAIL: $*" >&2; exit 1; }
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT

"$bin" test "$suites/failing.yaml" >"$out/text" 2>&1; status=$?
cat "$out/text"
[ $status -eq 1 ] || fail "failing suite: exit $status, expected 1"
grep -q '^1 passed, 2 failed$' "$out/text" || fail "failing suite: no '1 passed, 2 failed' summary"
grep -q 'expected allow, got deny' "$out/text" || fail "failing suite: wrong result not reported"
grep -q "policy image-tags denied too" "$out/text" || fail "failing suite: unexpected denying policy not reported"
grep -q "no message contains 'this text appears nowhere'" "$out/text" || fail "failing suite: message not reported"
grep -q 'field /spec/containers/0/image is "ubuntu", expected "ubuntu:24.04"' "$out/text" || fail "failing suite: field not reported"

"$bin" test -o junit "$suites/failing.yaml" >"$out/junit.xml" 2>"$out/junit.err"; status=$?
[ $status -eq 1 ] || fail "junit: exit $status, expected 1"
grep -q '<testsuites name="gpu-admit" tests="3" failures="2">' "$out/junit.xml" || fail "junit: no testsuites totals"
[ "$(grep -c '<failure message=' "$out/junit.xml")" -eq 2 ] || fail "junit: expected 2 failure elements"
grep -q '^1 passed, 2 failed$' "$out/junit.err" || fail "junit: summary not on stderr"

"$bin" test "$suites/bad-key.yaml" >"$out/bad" 2>&1; status=$?
cat "$out/bad"
[ $status -eq 2 ] || fail "bad suite: exit $status, expected 2"
grep -q "bad-key.yaml:5:15: cases\[0\].expected: unknown key 'expected'" "$out/bad" || fail "bad suite: message must name file, line and key"
echo "policy suite runner: ok"
