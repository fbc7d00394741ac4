#!/usr/bin/env bash
# Proves the suite's skip policy with a real missing capability: a capture test run with tcpdump
# removed from PATH must FAIL under CI=true (naming tcpdump) and only skip without it.
#   ci_policy_test.sh TRAFFIC_AUDIT_TEST_BINARY
set -uo pipefail
bin=$1
filter=TrafficAuditTest.CleanExchangePassesWithAllowlistAndLedger
empty_path=$(mktemp -d)  # a PATH with no tcpdump on it (the test binary needs no other tool)
trap 'rm -rf "$empty_path"' EXIT
status=0

out=$(env PATH="$empty_path" CI=true "$bin" --gtest_filter="$filter" 2>&1)
code=$?
if [ "$code" -eq 0 ]; then
  echo "FAIL: with tcpdump off PATH and CI=true the capture test exited 0:"; echo "$out"; status=1
elif ! grep -q "tcpdump is not installed" <<<"$out"; then
  echo "FAIL: the CI=true failure does not name tcpdump:"; echo "$out"; status=1
else
  echo "ok: CI=true without tcpdump fails (exit $code): $(grep -m1 'tcpdump is not installed' <<<"$out")"
fi

out=$(env -u CI PATH="$empty_path" "$bin" --gtest_filter="$filter" 2>&1)
code=$?
if [ "$code" -ne 0 ] || ! grep -q "\[  SKIPPED \]" <<<"$out"; then
  echo "FAIL: without CI the test should skip and exit 0 (exit $code):"; echo "$out"; status=1
else
  echo "ok: without CI=true it skips with the reason"
fi
exit $status
