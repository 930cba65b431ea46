#!/usr/bin/env bash
# Java SunPKCS11 interoperability: the JCA checks of Interop.java (run as a single-file source
# program), then the JDK's own tools on the same token: keytool makes EC and RSA key pairs
# with self-signed certificates, jarsigner signs a jar with each and verifies it without the
# token, pkcs11-tool sees what Java stored, a wrong PIN changes nothing, and the audit trail
# of it all verifies.
#
#   pkcs11-tests/java/run.sh [MODULE]
#
# MODULE defaults to $ECM_HSM_MODULE, then to target/debug/libecm_hsm.so in the repository,
# built first. Needs java, keytool, jar and jarsigner (Debian: openjdk-17-jdk-headless) and
# pkcs11-tool (opensc). Output as in ../run.sh; the exit status is non-zero if any failed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

# shellcheck source=pkcs11-tests/lib.sh
. "$HERE/../lib.sh"
MODULE=$(module_path "${1:-${ECM_HSM_MODULE:-}}")
cargo build --quiet --manifest-path "$ROOT/Cargo.toml" --bin ecm-hsm
CLI=$ROOT/target/debug/ecm-hsm

SO_PIN=so-pin-2468
USER_PIN=user-pin-java
LABEL=ecm-java

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ecm-hsm-java.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export ECM_HSM_DIR=$WORK/tokens
unset ECM_HSM_CONF # the config must come from $ECM_HSM_DIR/ecm-hsm.toml
mkdir -p "$ECM_HSM_DIR"
printf 'pin_kdf_iterations = 1000\n' >"$ECM_HSM_DIR/ecm-hsm.toml"

STEP_LOG=$WORK/step.log
PASSED=0
FAILED=0
SKIPPED=0
SKIP_REASON=

# The provider configurations: plain, and with the templates ECDH needs (Interop.java).
CONFIG=$WORK/p11.cfg
DERIVE_CONFIG=$WORK/p11-derive.cfg
cat >"$CONFIG" <<EOF
name = ecm
library = $MODULE
slotListIndex = 0
EOF
cat "$CONFIG" - >"$DERIVE_CONFIG" <<'EOF'
attributes(generate, CKO_PRIVATE_KEY, CKK_EC) = {
  CKA_DERIVE = true
}
attributes(generate, CKO_SECRET_KEY, CKK_GENERIC_SECRET) = {
  CKA_SENSITIVE = false
  CKA_EXTRACTABLE = true
}
EOF
sed -i 's/^name = ecm$/name = ecm-derive/' "$DERIVE_CONFIG"

# keytool and jarsigner load the provider the same way; the store password is the user PIN.
store_args() {
    printf '%s\n' -keystore NONE -storetype PKCS11 -addprovider SunPKCS11 \
        -providerArg "$CONFIG" -storepass "$1"
}
keytool_p11() {
    local pin=$1
    shift
    mapfile -t args < <(store_args "$pin")
    keytool "$@" "${args[@]}"
}
p11u() { p11 --login --pin "$USER_PIN" "$@"; }

t_init() {
    x p11 --init-token --slot 0 --label "$LABEL" --so-pin "$SO_PIN" && rc_is 0 || return 1
    x p11 --slot 0 --init-pin --login --so-pin "$SO_PIN" --pin "$USER_PIN" && rc_is 0 &&
        has "User PIN successfully initialized"
}

# Interop.java's own checks, one line each, counted as steps.
run_interop() {
    local line
    echo "# java Interop.java (JCA through SunPKCS11)"
    RC=0
    OUT=$(java "$HERE/Interop.java" "$CONFIG" "$DERIVE_CONFIG" "$USER_PIN" 2>&1) || RC=$?
    while IFS= read -r line; do
        case $line in
        "ok - "*) PASSED=$((PASSED + 1)) ;;
        "not ok - "*) FAILED=$((FAILED + 1)) ;;
        esac
        echo "$line"
    done <<<"$OUT"
    # A crash before any check (or after the last) would leave the counts short.
    if [[ $RC -ne 0 ]] && ! grep -q '^not ok - ' <<<"$OUT"; then
        echo "not ok - Interop.java exited with status $RC before its checks"
        FAILED=$((FAILED + 1))
    fi
}

t_keytool_genkeypair() {
    x keytool_p11 "$USER_PIN" -genkeypair -alias java-ec -keyalg EC -groupname secp256r1 \
        -dname CN=java-ec -validity 30 && rc_is 0 || return 1
    x keytool_p11 "$USER_PIN" -genkeypair -alias java-rsa -keyalg RSA -keysize 2048 \
        -dname CN=java-rsa -validity 30 && rc_is 0 || return 1
    x keytool_p11 "$USER_PIN" -list && rc_is 0 && has "java-ec, PrivateKeyEntry" &&
        has "java-rsa, PrivateKeyEntry" && has "java-kept, SecretKeyEntry" &&
        lacks "java-temporary"
}

# Each certificate keytool stored is paired with its private key by CKA_ID (what SunPKCS11's
# KeyStore sets), and pkcs11-tool reads the same pairing.
t_pairs_seen_by_pkcs11_tool() {
    local alias id
    x p11u --list-objects && rc_is 0 || return 1
    for alias in java-ec java-rsa; do
        id=$(awk -v a="$alias" '/^Certificate Object/{c=1} c&&/label:/{l=$2} c&&/ID:/{if(l==a){print $2; exit} c=0}' <<<"$OUT")
        [[ -n $id ]] || {
            echo "FAIL: no certificate labelled $alias"
            return 1
        }
        awk -v i="$id" '/^Private Key Object/{k=1} k&&/ID:/{if($2==i) f=1; k=0} END{exit !f}' <<<"$OUT" || {
            echo "FAIL: no private key with the CKA_ID $id of certificate $alias"
            return 1
        }
        echo "$alias: certificate and private key share CKA_ID $id"
    done
}

t_jarsigner() {
    local alias
    printf 'signed by the token\n' >"$WORK/payload.txt"
    (cd "$WORK" && jar cf unsigned.jar payload.txt) || return 1
    for alias in java-ec java-rsa; do
        mapfile -t args < <(store_args "$USER_PIN")
        x jarsigner "${args[@]}" -signedjar "$WORK/$alias.jar" "$WORK/unsigned.jar" "$alias" &&
            rc_is 0 || return 1
        # Verified by the JDK alone, without the token or the provider.
        x jarsigner -verify -verbose:summary "$WORK/$alias.jar" && rc_is 0 && has "jar verified." ||
            return 1
    done
}

t_wrong_pin() {
    x keytool_p11 wrong-pin-0 -list && rc_nonzero || return 1
    x p11u --list-slots && rc_is 0 && lacks "PIN locked" || return 1
    x keytool_p11 "$USER_PIN" -list && rc_is 0 && has "Your keystore contains 3 entries"
}

t_java_key_seen() {
    x p11u --list-objects --type secrkey && rc_is 0 && has "label:      java-kept" &&
        lacks "java-temporary"
}

t_audit() {
    x env ECM_HSM_PIN="$USER_PIN" "$CLI" audit verify && rc_is 0 || return 1
    x "$CLI" audit export --format csv && rc_is 0 && has ",sign," && has ",generate," && has ",derive,"
}

step "token initialized with pkcs11-tool" t_init
if ! have java || ! have keytool || ! have jarsigner || ! have jar; then
    echo "ok - Java checks # SKIP java, keytool, jar or jarsigner not installed (openjdk-17-jdk-headless)"
    echo "$PASSED passed, $FAILED failed"
    [[ $FAILED -eq 0 ]]
    exit
fi
run_interop
step "keytool -genkeypair (EC P-256, RSA-2048, self-signed certificates) and -list" t_keytool_genkeypair
step "pkcs11-tool: each certificate has its private key's CKA_ID" t_pairs_seen_by_pkcs11_tool
step "jarsigner signs with each token key; the JDK verifies the jars without the token" t_jarsigner
step "a wrong PIN given to keytool is refused and changes nothing" t_wrong_pin
step "pkcs11-tool finds the secret key Java stored (java-kept), not the one it deleted" t_java_key_seen
step "the audit trail of the Java clients verifies (ecm-hsm audit verify, export)" t_audit

echo "$PASSED passed, $FAILED failed"
[[ $FAILED -eq 0 ]]
