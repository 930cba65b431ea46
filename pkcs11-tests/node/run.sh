#!/usr/bin/env bash
# Node.js client suite: installs the pinned client package (package-lock.json: pkcs11js, a
# native addon built by node-gyp with python3, make and g++) with `npm ci`, and runs the test
# files under test/ with node's built-in test runner against the module.
#
#   pkcs11-tests/node/run.sh [NODE --test ARGS...]     # ECM_NODE_ALL=1: also the pending files
#
# The module is $ECM_HSM_MODULE, else target/debug/libecm_hsm.so of this repository, built
# first with `cargo build --lib`. Each test file runs in its own process with its own
# temporary ECM_HSM_DIR (test/helpers.js), initializing the token itself through PKCS#11.
# The last line is `N passed, M failed`; the exit status is non-zero if a test failed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

# npm ci is idempotent: it removes node_modules and installs exactly the lock file.
(cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)

if [[ -z ${ECM_HSM_MODULE:-} ]]; then
    cargo build --quiet --manifest-path "$ROOT/Cargo.toml" --lib
fi
unset ECM_HSM_CONF
cd "$HERE"

# Tests of behaviour still being implemented elsewhere: not run (one SKIP line each) until
# the feature lands; ECM_NODE_ALL=1 runs them too. None at present.
pending=()
files=()
skipped=0
for f in test/*.test.js; do
    if [[ -z ${ECM_NODE_ALL:-} && " ${pending[*]} " == *" ${f#test/} "* ]]; then
        echo "# SKIP $f (pending; ECM_NODE_ALL=1 runs it)"
        skipped=$((skipped + 1))
        continue
    fi
    files+=("$f")
done

tap=$(mktemp)
trap 'rm -f "$tap"' EXIT
status=0
node --test --test-reporter=spec --test-reporter-destination=stdout \
    --test-reporter=tap --test-reporter-destination="$tap" \
    "$@" "${files[@]}" || status=$?

passed=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$tap" | tail -n 1)
failed=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$tap" | tail -n 1)
cancelled=$(sed -n 's/^# cancelled \([0-9]*\)$/\1/p' "$tap" | tail -n 1)
failed=$((${failed:-0} + ${cancelled:-0}))
if [[ -z $passed ]]; then
    passed=0
    failed=$((failed + 1)) # the runner gave no summary: count that as a failure
fi
[[ $status -ne 0 && $failed -eq 0 ]] && failed=1
[[ $skipped -gt 0 ]] && echo "# $skipped skipped"
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
