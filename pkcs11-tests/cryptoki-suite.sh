#!/usr/bin/env bash
# The `cryptoki` crate's own test suite (the Rust binding's integration tests, which load the
# module `TEST_PKCS11_MODULE` names and are written against SoftHSMv2 and Kryoptic) run
# unmodified against libecm_hsm.so: a third party's view of the standard.
#
# The crate's source is the copy Cargo already fetched as this project's dev-dependency (the
# version Cargo.lock pins); its own dev-dependencies come from crates.io. Its tests run one at
# a time (they share one token, as the crate runs them) on a fresh token directory with the
# test settings.
#
# Every test must pass except those in cryptoki-suite/expected-failures.txt, each listed with
# the reason this module answers otherwise than the test expects (a choice the standard
# leaves open, or something AWS-LC lacks). A listed test that passes fails the run too, so
# the list stays true.
#
#   pkcs11-tests/cryptoki-suite.sh
#
# Exits non-zero on an unexpected failure or an unexpected pass.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=pkcs11-tests/lib.sh
. "$HERE/lib.sh"

MODULE=$(module_path "${ECM_HSM_MODULE:-}")
suite_workdir cryptoki
suite_token_dir "$WORK/tokens"
unset ECM_HSM_SERVICE

# The cryptoki crate's source, as Cargo resolved it for this project.
crate_dir=$(cargo metadata --format-version 1 --manifest-path "$ROOT/Cargo.toml" |
    python3 -c 'import json, os, sys
packages = json.load(sys.stdin)["packages"]
print(next(os.path.dirname(p["manifest_path"]) for p in packages if p["name"] == "cryptoki"))')
echo "# cryptoki suite from $crate_dir"
cp -r "$crate_dir" "$WORK/cryptoki"

# wait_for_slot_event: the test expects CKR_FUNCTION_NOT_SUPPORTED (as SoftHSMv2 answers); here
# a blocking C_WaitForSlotEvent waits for a token event or C_Finalize, as the standard says, so
# the test would block for ever. It is skipped, not failed.
export TEST_PKCS11_MODULE=$MODULE
export CARGO_TARGET_DIR=$ROOT/target/cryptoki-suite # kept between runs: the crate rarely changes
(cd "$WORK/cryptoki" && RUST_BACKTRACE=0 cargo test --no-fail-fast -- --test-threads=1 --skip wait_for_slot_event) \
    >"$WORK/suite.log" 2>&1 || true

sed -n 's/^test \([A-Za-z0-9_:]*\) \.\.\. ok$/\1/p' "$WORK/suite.log" | sort -u >"$WORK/passed"
sed -n 's/^test \([A-Za-z0-9_:]*\) \.\.\. FAILED$/\1/p' "$WORK/suite.log" | sort -u >"$WORK/failed"
status=0
against_expected_failures "the cryptoki suite" "$HERE/cryptoki-suite/expected-failures.txt" \
    "$WORK/passed" "$WORK/failed" || status=$?
for t in ${UNEXPECTED:-}; do
    echo "--- $t"
    awk -v t="---- $t stdout ----" '$0 == t { on = 1 } on { print } on && /^$/ { n++ } n > 1 { exit }' \
        "$WORK/suite.log" | head -n 30
done
if [[ ! -s $WORK/passed ]]; then
    tail -n 60 "$WORK/suite.log"
fi
echo "# cryptoki suite: $(wc -l <"$WORK/passed") passed, $(wc -l <"$WORK/failed") failed ($EXPECTED_COUNT expected, listed with their reasons)"
exit $status
