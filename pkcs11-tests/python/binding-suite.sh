#!/usr/bin/env bash
# python-pkcs11's own test suite (the tests/ of its source distribution, at the version
# requirements.txt pins, written against SoftHSMv2) run unmodified against libecm_hsm.so.
#
# Its source comes from PyPI (`pip download --no-binary`), its test-only dependency
# (`parameterized`) too. The token is a fresh one, labelled TEST, with the test settings and
# `rsa_min_bits = 1024`: the suite generates 1024-bit RSA keys in every RSA test, which this
# module makes only where that setting allows (README, RSA key sizes).
#
# Every test must pass or skip except those in binding-suite/expected-failures.txt, each
# listed with its reason; a listed test that passes fails the run too, so the list stays true.
#
#   pkcs11-tests/python/binding-suite.sh
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=pkcs11-tests/lib.sh
. "$HERE/../lib.sh"
PYTHON=${PYTHON:-python3}
export PIP_BREAK_SYSTEM_PACKAGES=1 PYTHONDONTWRITEBYTECODE=1

version=$(sed -n 's/^python-pkcs11==//p' "$HERE/requirements.txt")
"$PYTHON" -m pip install -q --disable-pip-version-check --root-user-action=ignore \
    -r "$HERE/requirements.txt" parameterized==0.9.0

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ecm-hsm-pysuite.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

"$PYTHON" -m pip download -q --disable-pip-version-check --no-deps --no-binary python-pkcs11 \
    "python-pkcs11==$version" -d "$WORK/dist"
tar xzf "$WORK/dist/python_pkcs11-$version.tar.gz" -C "$WORK"
# Only the tests (a package named `tests`, as its relative imports need): the package itself
# is the installed wheel.
mkdir "$WORK/run"
cp -r "$WORK/python_pkcs11-$version/tests" "$WORK/run/tests"

# The admin tool initializes the token; the module is $ECM_HSM_MODULE, else this build's.
cargo build --quiet --manifest-path "$ROOT/Cargo.toml" --lib --bin ecm-hsm
MODULE=${ECM_HSM_MODULE:-$ROOT/target/debug/libecm_hsm.so}
unset ECM_HSM_SERVICE ECM_HSM_CONF
export ECM_HSM_DIR=$WORK/tokens
mkdir -m 700 "$ECM_HSM_DIR"
printf 'test_settings = true\npin_kdf_iterations = 1000\nrsa_min_bits = 1024\n' >"$ECM_HSM_DIR/ecm-hsm.toml"
chmod 600 "$ECM_HSM_DIR/ecm-hsm.toml"
ECM_HSM_SO_PIN=12345678 ECM_HSM_NEW_PIN=12345678 "$ROOT/target/debug/ecm-hsm" init --label TEST >/dev/null

cd "$WORK/run"
PKCS11_MODULE=$MODULE PKCS11_TOKEN_LABEL=TEST PKCS11_TOKEN_PIN=12345678 \
    "$PYTHON" -m pytest -q -p no:cacheprovider -rA tests >"$WORK/suite.log" 2>&1 || true

sed -n 's/^PASSED \(tests\/[^ ]*\).*/\1/p' "$WORK/suite.log" | sort -u >"$WORK/passed"
sed -n 's/^FAILED \(tests\/[^ ]*\).*/\1/p; s/^ERROR \(tests\/[^ ]*\).*/\1/p' "$WORK/suite.log" |
    sort -u >"$WORK/failed"
# The list names tests as pytest does, below tests/.
sed -i 's/^tests\///' "$WORK/passed" "$WORK/failed"
status=0
against_expected_failures "python-pkcs11's suite" "$HERE/binding-suite/expected-failures.txt" \
    "$WORK/passed" "$WORK/failed" || status=$?
if ((status != 0)); then
    grep -E '^(E  |FAILED|ERROR)' "$WORK/suite.log" | head -n 40
fi
tail -n 1 "$WORK/suite.log"
echo "# python-pkcs11 $version's own suite: $(wc -l <"$WORK/passed") passed, $(wc -l <"$WORK/failed") failed ($EXPECTED_COUNT expected, listed with their reasons)"
exit $status
