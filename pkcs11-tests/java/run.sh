#!/usr/bin/env bash
# Java SunPKCS11 interoperability: the JCA checks of Interop.java (run as a single-file source
# program), then the JDK's own tools on the same token: keytool makes EC and RSA key pairs
# with self-signed certificates, jarsigner signs a jar with each and verifies it without the
# token, JSSE serves TLS 1.3 and 1.2 with each key (Tls.java), pkcs11-tool sees what Java
# stored, a wrong PIN changes nothing, and the audit trail of it all verifies.
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
suite_token_dir "$WORK/tokens"

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
# -providerName makes keytool generate key pairs and sign with the token's provider (by
# default the JDK's software providers come first: the key would be made in software and
# imported).
store_args() {
    printf '%s\n' -keystore NONE -storetype PKCS11 -addprovider SunPKCS11 \
        -providerArg "$CONFIG" -providerName SunPKCS11-ecm -storepass "$1"
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

# private_key_block ID: the lines of the private key with that CKA_ID in $OUT (pkcs11-tool
# --list-objects), from its header to the next object's.
private_key_block() {
    awk -v id="$1" '
        /^[A-Za-z].* Object/ { if (key && match_id) printf "%s", block; key = /^Private Key Object/; match_id = 0; block = "" }
        key { block = block $0 "\n" }
        key && $1 == "ID:" && $2 == id { match_id = 1 }
        END { if (key && match_id) printf "%s", block }' <<<"$OUT"
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
        # Generated on the token, the key has CKA_LOCAL (pkcs11-tool's "local"): keytool did
        # not make it in software and import it.
        private_key_block "$id" | grep -q '^ *Access:.*local' || {
            echo "FAIL: no private key generated on the token with the CKA_ID $id of certificate $alias"
            return 1
        }
        echo "$alias: certificate and private key (local) share CKA_ID $id"
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

# Tls.java: a JSSE server whose key is on the token, a client trusting only its certificate.
t_tls() {
    local alias=$1 protocol=$2 suite=$3
    x java "$HERE/Tls.java" "$CONFIG" "$USER_PIN" "$alias" "$protocol" && rc_is 0 &&
        has "handshake: $protocol $suite"
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

# The export's operations and mechanisms (CSV columns 7 and 11) include what the steps above
# did on the token: key pairs generated (RSA 0x0, EC 0x1040), RSA-PSS (0xd, TLS 1.3) and ECDSA
# (0x1044) signatures, an ECDH derivation (0x1050).
t_audit() {
    local done want
    x env ECM_HSM_PIN="$USER_PIN" "$CLI" audit verify && rc_is 0 && has "chain intact" || return 1
    xo "$WORK/audit.csv" "$CLI" audit export --format csv && rc_is 0 || return 1
    done=$(awk -F, 'NR > 1 && $12 == "0x00000000" { print $7 " " $11 }' "$WORK/audit.csv" | sort -u)
    for want in "generate_key_pair 0x00000000" "generate_key_pair 0x00001040" \
        "sign 0x0000000d" "sign 0x00001044" "derive 0x00001050"; do
        grep -qxF "$want" <<<"$done" || {
            echo "FAIL: no successful '$want' record in the export; it has:"
            sed 's/^/      /' <<<"$done"
            return 1
        }
    done
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
step "pkcs11-tool: each certificate has its private key's CKA_ID; the keys were made on the token" t_pairs_seen_by_pkcs11_tool
step "jarsigner signs with each token key; the JDK verifies the jars without the token" t_jarsigner
step "TLS 1.3 on loopback, JSSE server key on the token (EC P-256)" t_tls java-ec TLSv1.3 TLS_AES_
step "TLS 1.3 on loopback, JSSE server key on the token (RSA-2048, RSA-PSS)" t_tls java-rsa TLSv1.3 TLS_AES_
step "TLS 1.2 on loopback, JSSE server key on the token (ECDHE-ECDSA)" t_tls java-ec TLSv1.2 TLS_ECDHE_ECDSA_
step "TLS 1.2 on loopback, JSSE server key on the token (ECDHE-RSA)" t_tls java-rsa TLSv1.2 TLS_ECDHE_RSA_
step "a wrong PIN given to keytool is refused and changes nothing" t_wrong_pin
step "pkcs11-tool finds the secret key Java stored (java-kept), not the one it deleted" t_java_key_seen
step "the audit trail of the Java clients verifies (ecm-hsm audit verify, export)" t_audit

echo "$PASSED passed, $FAILED failed"
[[ $FAILED -eq 0 ]]
