#!/usr/bin/env bash
# Interoperability with real tools that use the module's keys: OpenSC pkcs11-tool (RSA and EC
# key pairs, signatures, RSA-OAEP, AES key wrap, objects), OpenSSL 3 through the pkcs11
# engine (libengine-pkcs11-openssl: signing, a self-signed certificate, TLS handshakes on
# loopback) and GnuTLS p11tool (key generation, --test-sign). Every signature and ciphertext
# made on one side is checked on the other with plain openssl (no engine) against the public
# keys exported from the token.
#
#   pkcs11-tests/interop.sh [MODULE]
#
# MODULE defaults to $ECM_HSM_MODULE, then to target/debug/libecm_hsm.so in the repository,
# built first with `cargo build --lib`. Output as in run.sh: `ok - <step>`, `not ok - <step>`
# (followed by the commands it ran and their output), `ok - <step> # SKIP <reason>`, and a
# last line `N passed, M failed`; the exit status is non-zero if any step failed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)

# shellcheck source=pkcs11-tests/lib.sh
. "$HERE/lib.sh"
suite_begin tools "${1:-}"
# Plain openssl must be plain: no caller's config loading an engine or provider. The engine
# steps name their own config (ossl_engine).
unset OPENSSL_CONF OPENSSL_ENGINES

SO_PIN=so-pin-5678
USER_PIN=user-pin-9
LABEL=ecm-tools

# ---------------------------------------------------------------- harness

# step, skip, x, xo, rc_is, has, lacks, ... (shared with run.sh)

# pkcs11-tool on the token, logged in as the user.
p11u() { p11 --slot 0 --login --pin "$USER_PIN" "$@"; }

# need_openssl: for steps whose token half ran; `need_openssl || return 0` skips the rest.
need_openssl() {
    have openssl && return 0
    skip "openssl not installed: only the token side was checked"
    return 1
}

# hex2bin HEX FILE / tlv TAG HEX: DER built by hand, for public keys and ECDSA signatures.
hex2bin() { printf '%b' "$(sed 's/../\\x&/g' <<<"$1")" >"$2"; }
tlv() {
    local n=$((${#2} / 2))
    if ((n < 128)); then
        printf '%s%02x%s' "$1" "$n" "$2"
    elif ((n < 256)); then
        printf '%s81%02x%s' "$1" "$n" "$2"
    else
        printf '%s82%04x%s' "$1" "$n" "$2"
    fi
}
# der_int HEX: a DER INTEGER of the unsigned big-endian HEX.
der_int() {
    local h=$1
    while [[ ${#h} -gt 2 && ${h:0:2} == 00 ]]; do h=${h:2}; done
    ((16#${h:0:2} < 128)) || h=00$h
    tlv 02 "$h"
}
# rs_to_der RAW DER: PKCS#11's ECDSA signature r||s as the DER ECDSA-Sig-Value openssl reads.
rs_to_der() {
    local h n
    h=$(hex "$1")
    n=$((${#h} / 2))
    hex2bin "$(tlv 30 "$(der_int "${h:0:n}")$(der_int "${h:n}")")" "$2"
}
# ec_attr ID ATTR: the hex value pkcs11-tool --list-objects prints for ATTR (EC_POINT or
# EC_PARAMS) of the EC public key with CKA_ID ID.
ec_attr() {
    p11 --slot 0 --list-objects --type pubkey 2>/dev/null | awk -v id="$1" -v a="$2:" '
        function done() { if (pub && idok && v != "") { print v; found = 1; exit } }
        /^[^ \t]/ { done(); pub = ($0 ~ /^Public Key Object; EC/); idok = 0; v = ""; next }
        $1 == a { v = $2 }
        $1 == "ID:" && $2 == id { idok = 1 }
        END { if (!found) done() }' || true
}
# ec_spki ID FILE: writes the SubjectPublicKeyInfo (DER) made of the key's CKA_EC_PARAMS and
# CKA_EC_POINT (a DER OCTET STRING holding the uncompressed point).
ec_spki() {
    local params attr point len
    params=$(ec_attr "$1" EC_PARAMS)
    attr=$(ec_attr "$1" EC_POINT)
    echo "CKA_EC_PARAMS: $params"
    echo "CKA_EC_POINT:  $attr"
    [[ -n $params && ${attr:0:2} == 04 ]] || {
        echo "FAIL: no EC_PARAMS, or EC_POINT is not an OCTET STRING"
        return 1
    }
    len=$((16#${attr:2:2}))
    case $len in
    129) point=${attr:6} len=$((16#${attr:4:2})) ;;
    130) point=${attr:8} len=$((16#${attr:4:4})) ;;
    *) point=${attr:4} ;;
    esac
    [[ $((${#point} / 2)) -eq $len && ${point:0:2} == 04 ]] || {
        echo "FAIL: EC_POINT is not an OCTET STRING of its length holding an uncompressed point"
        return 1
    }
    hex2bin "$(tlv 30 "$(tlv 30 "06072a8648ce3d0201$params")$(tlv 03 "00$point")")" "$2"
}

SHA256_DIGESTINFO=3031300d060960864801650304020105000420

# ---------------------------------------------------------------- pkcs11-tool

t_init() {
    x p11 --init-token --slot 0 --label "$LABEL" --so-pin "$SO_PIN" && rc_is 0 &&
        has "Token successfully initialized" || return 1
    x p11 --slot 0 --init-pin --login --so-pin "$SO_PIN" --pin "$USER_PIN" && rc_is 0 &&
        has "User PIN successfully initialized" || return 1
    x p11 --list-slots && rc_is 0 && has "token label        : $LABEL" && has "PIN initialized"
}

# keypairgen KEYTYPE ID LABEL EXPECT...: generates, then each EXPECT is in the output.
t_keypairgen() {
    local type=$1 id=$2 label=$3 e
    shift 3
    x p11u --keypairgen --key-type "$type" --id "$id" --label "$label" && rc_is 0 &&
        has "Key pair generated" && has "label:      $label" && has "ID:         $id" || return 1
    for e in "$@"; do has "$e" || return 1; done
    # Both halves are on the token afterwards, the private one only after login.
    x p11 --slot 0 --list-objects --type privkey && rc_is 0 && lacks "label:      $label" ||
        return 1
    x p11u --list-objects --type privkey && rc_is 0 && has "label:      $label" || return 1
    x p11 --slot 0 --list-objects --type pubkey && rc_is 0 && has "label:      $label"
}

# read_pubkey ID WANT: --read-object --type pubkey exports a DER SubjectPublicKeyInfo that
# plain openssl reads and whose text has WANT; saved as $WORK/pub-ID.der for the later steps.
t_read_pubkey_rsa() {
    local id=$1 want=$2
    x p11 --slot 0 --read-object --type pubkey --id "$id" -o "$WORK/pub-$id.der" && rc_is 0 ||
        return 1
    need_openssl || return 0
    x openssl pkey -pubin -inform DER -in "$WORK/pub-$id.der" -noout -text && rc_is 0 &&
        has "$want" && has "Exponent: 65537"
}

# EC public keys are also rebuilt from CKA_EC_PARAMS/CKA_EC_POINT and must match the export.
# OpenSC 0.23's pkcs11-tool cannot export P-384 keys at all ("cannot create EVP_PKEY", with
# SoftHSMv2's keys too); then the rebuilt key stands in and the step is a SKIP.
t_read_pubkey_ec() {
    local id=$1 want=$2 curve=$3
    ec_spki "$id" "$WORK/spki-$id.der" || return 1
    if have openssl; then
        x openssl pkey -pubin -inform DER -in "$WORK/spki-$id.der" -noout -text && rc_is 0 &&
            has "$want" && has "NIST CURVE: $curve" || return 1
    fi
    x p11 --slot 0 --read-object --type pubkey --id "$id" -o "$WORK/pub-$id.der"
    if [[ $RC -ne 0 ]] && grep -qF "cannot create EVP_PKEY" <<<"$OUT"; then
        cp "$WORK/spki-$id.der" "$WORK/pub-$id.der"
        local v
        v=$(dpkg-query -W -f='${Version}' opensc 2>/dev/null || true)
        skip "pkcs11-tool${v:+ (opensc $v)} --read-object fails on $curve public keys ('cannot create EVP_PKEY', SoftHSMv2's too); the key rebuilt from CKA_EC_PARAMS/CKA_EC_POINT is used instead"
        return 0
    fi
    rc_is 0 || return 1
    same_file "$WORK/pub-$id.der" "$WORK/spki-$id.der" || return 1
    need_openssl || return 0
    x openssl pkey -pubin -inform DER -in "$WORK/pub-$id.der" -noout -text && rc_is 0 &&
        has "$want" && has "NIST CURVE: $curve"
}

# verify_on_token ID MECH INPUT SIG [ARGS]: pkcs11-tool --verify says valid (it exits 0 either
# way, so the message is what counts); on INPUT with its first byte changed it says invalid.
# (Changed, not extended: raw ECDSA truncates a longer input to the order's size, and
# pkcs11-tool checks the length of RSA-PKCS-PSS input.)
verify_on_token() {
    local id=$1 mech=$2 in=$3 sig=$4 first
    shift 4
    x p11u --verify -m "$mech" --id "$id" -i "$in" --signature-file "$sig" "$@" && rc_is 0 &&
        has "Signature is valid" || return 1
    first=$(head -c 1 "$in" | od -An -tx1 | tr -d ' \n')
    hex2bin "$(printf '%02x' $((16#$first ^ 1)))" "$WORK/tampered"
    tail -c +2 "$in" >>"$WORK/tampered"
    x p11u --verify -m "$mech" --id "$id" -i "$WORK/tampered" --signature-file "$sig" "$@" &&
        lacks "Signature is valid" && has "Invalid signature"
}

# RSA-PKCS over a SHA-256 DigestInfo is an ordinary sha256WithRSAEncryption signature.
t_sign_rsa_pkcs() {
    local id=$1 sig=$WORK/sig-rsa-pkcs-$1
    hex2bin "$SHA256_DIGESTINFO$(sha256sum <"$WORK/msg" | cut -d' ' -f1)" "$WORK/digestinfo"
    x p11u --sign -m RSA-PKCS --id "$id" -i "$WORK/digestinfo" -o "$sig" && rc_is 0 || return 1
    verify_on_token "$id" RSA-PKCS "$WORK/digestinfo" "$sig" || return 1
    need_openssl || return 0
    x openssl dgst -sha256 -verify "$WORK/pub-$id.der" -keyform DER -signature "$sig" \
        "$WORK/msg" && rc_is 0 && has "Verified OK" || return 1
    xo "$WORK/recovered" openssl pkeyutl -verifyrecover -pubin -keyform DER \
        -inkey "$WORK/pub-$id.der" -in "$sig" && rc_is 0 &&
        same_file "$WORK/recovered" "$WORK/digestinfo"
}

t_sign_sha256_rsa_pkcs() {
    local id=$1 sig=$WORK/sig-sha256-rsa-pkcs-$1
    x p11u --sign -m SHA256-RSA-PKCS --id "$id" -i "$WORK/msg" -o "$sig" && rc_is 0 || return 1
    verify_on_token "$id" SHA256-RSA-PKCS "$WORK/msg" "$sig" || return 1
    need_openssl || return 0
    x openssl dgst -sha256 -verify "$WORK/pub-$id.der" -keyform DER -signature "$sig" \
        "$WORK/msg" && rc_is 0 && has "Verified OK"
}

# pkcs11-tool 0.23 takes --hash-algorithm only with RSA-PKCS-PSS (the SHA*-RSA-PKCS-PSS
# mechanisms name their hash), --mgf and --salt-len with both.
t_sign_sha256_rsa_pss() {
    local id=$1 sig=$WORK/sig-sha256-rsa-pss-$1
    local pss=(--mgf MGF1-SHA256 --salt-len 32)
    x p11u --sign -m SHA256-RSA-PKCS-PSS --id "$id" -i "$WORK/msg" -o "$sig" "${pss[@]}" &&
        rc_is 0 && has "PSS parameters: hashAlg=SHA256, mgf=MGF1-SHA256, salt_len=32 B" ||
        return 1
    verify_on_token "$id" SHA256-RSA-PKCS-PSS "$WORK/msg" "$sig" "${pss[@]}" || return 1
    need_openssl || return 0
    x openssl dgst -sha256 -verify "$WORK/pub-$id.der" -keyform DER -sigopt rsa_padding_mode:pss \
        -sigopt rsa_pss_saltlen:32 -sigopt rsa_mgf1_md:sha256 -signature "$sig" "$WORK/msg" &&
        rc_is 0 && has "Verified OK"
}

t_sign_rsa_pss() {
    local id=$1 sig=$WORK/sig-rsa-pss-$1
    local pss=(--hash-algorithm SHA256 --mgf MGF1-SHA256 --salt-len 32)
    hex2bin "$(sha256sum <"$WORK/msg" | cut -d' ' -f1)" "$WORK/msg.sha256"
    x p11u --sign -m RSA-PKCS-PSS --id "$id" -i "$WORK/msg.sha256" -o "$sig" "${pss[@]}" &&
        rc_is 0 && has "PSS parameters: hashAlg=SHA256, mgf=MGF1-SHA256, salt_len=32 B" ||
        return 1
    verify_on_token "$id" RSA-PKCS-PSS "$WORK/msg.sha256" "$sig" "${pss[@]}" || return 1
    need_openssl || return 0
    x openssl dgst -sha256 -verify "$WORK/pub-$id.der" -keyform DER -sigopt rsa_padding_mode:pss \
        -sigopt rsa_pss_saltlen:32 -sigopt rsa_mgf1_md:sha256 -signature "$sig" "$WORK/msg" &&
        rc_is 0 && has "Verified OK"
}

# ECDSA on a digest: pkcs11-tool writes PKCS#11's raw r||s (2 x field size); openssl checks
# it once turned into DER.
t_sign_ecdsa() {
    local id=$1 md=$2 field=$3 sig=$WORK/sig-ecdsa-$1
    hex2bin "$("${md}sum" <"$WORK/msg" | cut -d' ' -f1)" "$WORK/msg.$md"
    x p11u --sign -m ECDSA --id "$id" -i "$WORK/msg.$md" -o "$sig" && rc_is 0 || return 1
    local n
    n=$(wc -c <"$sig")
    [[ $n -eq $((2 * field)) ]] || {
        echo "FAIL: raw signature is $n bytes, expected r||s of 2 x $field"
        return 1
    }
    verify_on_token "$id" ECDSA "$WORK/msg.$md" "$sig" || return 1
    need_openssl || return 0
    rs_to_der "$sig" "$sig.der"
    x openssl dgst "-$md" -verify "$WORK/pub-$id.der" -keyform DER -signature "$sig.der" \
        "$WORK/msg" && rc_is 0 && has "Verified OK"
}

t_sign_ecdsa_sha256() {
    local id=$1 sig=$WORK/sig-ecdsa-sha256-$1
    x p11u --sign -m ECDSA-SHA256 --id "$id" -i "$WORK/msg" -o "$sig" \
        --signature-format openssl && rc_is 0 || return 1
    verify_on_token "$id" ECDSA-SHA256 "$WORK/msg" "$sig" --signature-format openssl || return 1
    need_openssl || return 0
    x openssl dgst -sha256 -verify "$WORK/pub-$id.der" -keyform DER -signature "$sig" \
        "$WORK/msg" && rc_is 0 && has "Verified OK"
}

# openssl encrypts to the exported public key (OAEP, SHA-256, MGF1-SHA-256); the token decrypts.
t_oaep() {
    local id=$1
    have openssl || {
        skip "openssl not installed (it makes the ciphertext)"
        return 0
    }
    head -c 190 /dev/urandom >"$WORK/oaep-plain"
    x openssl pkeyutl -encrypt -pubin -keyform DER -inkey "$WORK/pub-$id.der" \
        -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256 \
        -in "$WORK/oaep-plain" -out "$WORK/oaep-cipher-$id" && rc_is 0 || return 1
    x p11u --decrypt -m RSA-PKCS-OAEP --hash-algorithm SHA256 --mgf MGF1-SHA256 --id "$id" \
        -i "$WORK/oaep-cipher-$id" -o "$WORK/oaep-out-$id" && rc_is 0 || return 1
    same_file "$WORK/oaep-plain" "$WORK/oaep-out-$id"
}

have_wrap() {
    local help
    help=$(pkcs11-tool --help 2>&1 || true)
    grep -q -- '--wrap' <<<"$help" && grep -q -- '--unwrap' <<<"$help"
}

# The wrapping keys are made extractable and not sensitive (pkcs11-tool --extractable) only so
# that openssl can redo the wrap with their value.
t_wrap_setup() {
    have_wrap || {
        skip "this pkcs11-tool has no --wrap/--unwrap"
        return 0
    }
    x p11u --keygen --key-type AES:32 --id 20 --label kek --extractable && rc_is 0 &&
        has "Key generated" || return 1
    x p11u --keygen --key-type AES:32 --id 21 --label wrapme --extractable && rc_is 0 || return 1
    x p11u --keygen --key-type GENERIC:20 --id 22 --label wrapme20 --extractable && rc_is 0 ||
        return 1
    x p11u --keygen --key-type AES:32 --id 23 --label stays-inside && rc_is 0 &&
        has "never extractable" || return 1
    local id
    for id in 20 21 22; do
        x p11u --read-object --type secrkey --id "$id" -o "$WORK/secret-$id" && rc_is 0 || return 1
    done
}

# wrap MECH OPENSSL_CIPHER IV ID KEYTYPE NEWID: --wrap the key ID under kek, compare with
# openssl's wrap of its value, --unwrap it as NEWID and compare the value.
t_wrap() {
    local mech=$1 cipher=$2 iv=$3 id=$4 type=$5 newid=$6
    have_wrap || {
        skip "this pkcs11-tool has no --wrap/--unwrap"
        return 0
    }
    x p11u --wrap -m "$mech" --id 20 --application-id "$id" -o "$WORK/wrapped-$id" && rc_is 0 &&
        has "Key wrapped" || return 1
    x p11u --unwrap -m "$mech" --id 20 -i "$WORK/wrapped-$id" --key-type "$type" \
        --application-id "$newid" --application-label "unwrapped-$id" --extractable && rc_is 0 &&
        has "Key unwrapped" && has "label:      unwrapped-$id" || return 1
    x p11u --read-object --type secrkey --id "$newid" -o "$WORK/secret-$newid" && rc_is 0 &&
        same_file "$WORK/secret-$id" "$WORK/secret-$newid" || return 1
    need_openssl || return 0
    xo "$WORK/wrapped-$id.openssl" openssl enc "$cipher" -K "$(hex "$WORK/secret-20")" -iv "$iv" \
        -in "$WORK/secret-$id" && rc_is 0 && same_file "$WORK/wrapped-$id" "$WORK/wrapped-$id.openssl"
}

t_wrap_unextractable() {
    have_wrap || {
        skip "this pkcs11-tool has no --wrap/--unwrap"
        return 0
    }
    x p11u --wrap -m AES-KEY-WRAP --id 20 --application-id 23 -o "$WORK/wrapped-23" &&
        rc_nonzero && has "CKR_KEY_UNEXTRACTABLE"
}

t_delete() {
    x p11u --keypairgen --key-type EC:prime256v1 --id 0e --label doomed && rc_is 0 || return 1
    x p11u --list-objects && rc_is 0 && has "label:      doomed" || return 1
    x p11u --delete-object --type privkey --id 0e && rc_is 0 || return 1
    x p11u --delete-object --type pubkey --id 0e && rc_is 0 || return 1
    x p11u --list-objects && rc_is 0 && lacks "doomed" && has "label:      rsa2048" || return 1
    x p11 --slot 0 --read-object --type pubkey --id 0e -o "$WORK/gone.der" && rc_nonzero
}

t_selftest() {
    x p11u --test && rc_is 0 && has "No errors" && lacks_re 'error|failed' "No errors"
}

# ---------------------------------------------------------------- OpenSSL + pkcs11 engine

ENGINE_SO=
find_engine() {
    if have dpkg; then
        ENGINE_SO=$(dpkg -L libengine-pkcs11-openssl 2>/dev/null | grep '/engines[^/]*/pkcs11\.so$' |
            head -1 || true)
    fi
    if [[ -z $ENGINE_SO ]]; then
        ENGINE_SO=$(first_file /usr/lib/*/engines-3/pkcs11.so /usr/lib64/engines-3/pkcs11.so \
            /usr/lib/engines-3/pkcs11.so)
    fi
}

# need_engine: `need_engine || return 0` skips an engine step.
need_engine() {
    have openssl || {
        skip "openssl not installed"
        return 1
    }
    [[ -n $ENGINE_SO && -f $ENGINE_SO ]] || {
        skip "the OpenSSL pkcs11 engine (libengine-pkcs11-openssl) is not installed"
        return 1
    }
}

write_openssl_cnf() {
    cat >"$WORK/openssl.cnf" <<EOF
openssl_conf = openssl_init

[openssl_init]
engines = engine_section

[engine_section]
pkcs11 = pkcs11_section

[pkcs11_section]
engine_id = pkcs11
dynamic_path = $ENGINE_SO
MODULE_PATH = $MODULE
init = 0
EOF
}

# ossl_engine ARGS: openssl with the engine's config (the PIN comes in the key's URI).
ossl_engine() { OPENSSL_CONF=$WORK/openssl.cnf openssl "$@"; }
key_uri() { echo "pkcs11:token=$LABEL;$1;type=private;pin-value=$USER_PIN"; }

# engine_sign WHAT MD ID: openssl dgst -sign with the token key, plain openssl -verify.
t_engine_sign() {
    local md=$1 id=$2 sig=$WORK/sig-engine-$2
    need_engine || return 0
    x ossl_engine dgst "-$md" -engine pkcs11 -keyform engine -sign "$(key_uri "id=%$id")" \
        -out "$sig" "$WORK/msg" && rc_is 0 && has 'Engine "pkcs11" set.' || return 1
    x openssl dgst "-$md" -verify "$WORK/pub-$id.der" -keyform DER -signature "$sig" "$WORK/msg" &&
        rc_is 0 && has "Verified OK"
}

# self_signed ID LABEL CERT SIGALG: openssl req -x509 signed by the token key; openssl x509 and
# verify accept it, and it carries the token's public key.
t_self_signed() {
    local id=$1 label=$2 cert=$3 sigalg=$4
    need_engine || return 0
    x ossl_engine req -new -x509 -engine pkcs11 -keyform engine -key "$(key_uri "object=$label")" \
        -sha256 -subj /CN=ecm-hsm-test -days 1 -addext "basicConstraints=critical,CA:TRUE" \
        -addext "subjectAltName=IP:127.0.0.1" -out "$cert" && rc_is 0 || return 1
    x openssl x509 -in "$cert" -noout -text && rc_is 0 && has "Subject: CN = ecm-hsm-test" &&
        has "Issuer: CN = ecm-hsm-test" && has "Signature Algorithm: $sigalg" &&
        has "IP Address:127.0.0.1" || return 1
    x openssl verify -CAfile "$cert" "$cert" && rc_is 0 && has "$cert: OK" || return 1
    xo "$WORK/cert-$id.pub" openssl x509 -in "$cert" -noout -pubkey && rc_is 0 || return 1
    xo "$WORK/cert-$id.pub.der" openssl pkey -pubin -in "$WORK/cert-$id.pub" -outform DER &&
        rc_is 0 && same_file "$WORK/cert-$id.pub.der" "$WORK/pub-$id.der"
}

t_store_cert() {
    need_engine || return 0
    [[ -f $WORK/cert-01.pem ]] || {
        echo "FAIL: no certificate (the req step failed)"
        return 1
    }
    x openssl x509 -in "$WORK/cert-01.pem" -outform DER -out "$WORK/cert-01.der" && rc_is 0 ||
        return 1
    x p11u --write-object "$WORK/cert-01.der" --type cert --id 01 --label rsa2048 && rc_is 0 &&
        has "Created certificate" || return 1
    x p11 --slot 0 --list-objects --type cert && rc_is 0 &&
        has "Certificate Object; type = X.509 cert" && has "label:      rsa2048" &&
        has "subject:    DN: CN=ecm-hsm-test" && has "ID:         01" || return 1
    x p11 --slot 0 --read-object --type cert --id 01 -o "$WORK/cert-01.read" && rc_is 0 &&
        same_file "$WORK/cert-01.der" "$WORK/cert-01.read"
}

# tls ID LABEL CERT WANT [S_SERVER ARGS]: openssl s_server with the token key on loopback
# (port 0: the kernel picks a free one, s_server prints it), one connection (-naccept 1,
# bounded by timeout); s_client must verify the certificate and finish the handshake.
t_tls() {
    local label=$1 cert=$2 want=$3
    shift 3
    need_engine || return 0
    [[ -f $cert ]] || {
        echo "FAIL: no certificate $cert (the req step failed)"
        return 1
    }
    local log=$WORK/s_server-$label.log port= i
    : >"$log"
    echo "\$ openssl s_server -engine pkcs11 -keyform engine -key $(key_uri "object=$label") -cert $cert -accept 127.0.0.1:0 -naccept 1 -www $* &"
    OPENSSL_CONF=$WORK/openssl.cnf timeout 30 openssl s_server -engine pkcs11 -keyform engine \
        -key "$(key_uri "object=$label")" -cert "$cert" -accept 127.0.0.1:0 -naccept 1 -www "$@" \
        </dev/null >"$log" 2>&1 &
    SERVER_PID=$!
    for i in $(seq 100); do
        port=$(sed -n 's/^ACCEPT 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$log")
        [[ -n $port ]] && break
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    local ok=0
    if [[ -n $port ]]; then
        x timeout 20 openssl s_client -connect "127.0.0.1:$port" -CAfile "$cert" \
            -verify_return_error -verify_ip 127.0.0.1 </dev/null &&
            rc_is 0 && has "Verify return code: 0 (ok)" && has "$want" &&
            has "subject=CN = ecm-hsm-test" && lacks "no peer certificate available" && ok=1
    else
        echo "FAIL: s_server did not print ACCEPT 127.0.0.1:<port>"
    fi
    stop_pid SERVER_PID
    echo "--- s_server output:"
    cat "$log"
    [[ $ok -eq 1 ]]
}

# ---------------------------------------------------------------- GnuTLS p11tool

need_p11tool() {
    have p11tool && return 0
    skip "p11tool (gnutls-bin) not installed"
    return 1
}
p11tool_u() { GNUTLS_PIN=$USER_PIN p11tool --batch --provider "$MODULE" --login "$@"; }

t_p11tool_list() {
    need_p11tool || return 0
    x p11tool_u --list-all "pkcs11:token=$LABEL" && rc_is 0 &&
        has "Type: Private key (RSA-2048)" && has "Type: Private key (RSA-4096)" &&
        has "Type: Private key (EC/ECDSA-SECP256R1)" && has "Type: Private key (EC/ECDSA-SECP384R1)" &&
        has "Type: Public key (RSA-2048)" && has "Label: rsa4096" && has "Label: ec-p384" &&
        has "token=$LABEL;id=%01;object=rsa2048;type=private" || return 1
    if [[ -f $WORK/cert-01.der ]]; then
        has "Type: X.509 Certificate" || return 1
    fi
}

t_p11tool_generate() {
    need_p11tool || return 0
    x p11tool_u --generate-privkey rsa --bits 2048 --label p11tool-key \
        --outfile "$WORK/p11tool-key.pub" "pkcs11:token=$LABEL" && rc_is 0 || return 1
    grep -q -- "-----BEGIN PUBLIC KEY-----" "$WORK/p11tool-key.pub" || {
        echo "FAIL: no public key written to --outfile"
        return 1
    }
    x p11tool_u --list-privkeys "pkcs11:token=$LABEL;object=p11tool-key" && rc_is 0 &&
        has "Type: Private key (RSA-2048)" && has "Label: p11tool-key" || return 1
    # pkcs11-tool sees it too.
    x p11u --list-objects --type privkey && rc_is 0 && has "label:      p11tool-key" || return 1
    need_openssl || return 0
    x openssl pkey -pubin -in "$WORK/p11tool-key.pub" -noout -text && rc_is 0 &&
        has "Public-Key: (2048 bit)"
}

# test_sign URL ALGO: p11tool signs with the key and verifies the signature itself.
t_p11tool_test_sign() {
    local url=$1 algo=$2
    need_p11tool || return 0
    x p11tool_u --test-sign "$url" && rc_is 0 && has "Signing using $algo... ok" &&
        has "Verifying against private key parameters... ok" &&
        has "Verifying against public key in the token... ok" && lacks_re 'failed|error'
}

# ---------------------------------------------------------------- run

steps_preflight

head -c 3001 /dev/urandom >"$WORK/msg"
find_engine
[[ -z $ENGINE_SO ]] || write_openssl_cnf

step "pkcs11-tool --init-token, --init-pin" t_init
step "pkcs11-tool --keypairgen rsa:2048 (id 01)" t_keypairgen rsa:2048 01 rsa2048 \
    "Private Key Object; RSA" "Public Key Object; RSA 2048 bits"
step "pkcs11-tool --keypairgen rsa:4096 (id 02)" t_keypairgen rsa:4096 02 rsa4096 \
    "Private Key Object; RSA" "Public Key Object; RSA 4096 bits"
step "pkcs11-tool --keypairgen EC:prime256v1 (id 03)" t_keypairgen EC:prime256v1 03 ec-p256 \
    "Private Key Object; EC" "EC_POINT 256 bits" "EC_PARAMS:  06082a8648ce3d030107"
step "pkcs11-tool --keypairgen EC:secp384r1 (id 04)" t_keypairgen EC:secp384r1 04 ec-p384 \
    "Private Key Object; EC" "EC_POINT 384 bits" "EC_PARAMS:  06052b81040022"
step "--read-object --type pubkey rsa2048: openssl reads the DER" t_read_pubkey_rsa 01 \
    "Public-Key: (2048 bit)"
step "--read-object --type pubkey rsa4096: openssl reads the DER" t_read_pubkey_rsa 02 \
    "Public-Key: (4096 bit)"
step "--read-object --type pubkey P-256: openssl reads it, = CKA_EC_PARAMS/EC_POINT" \
    t_read_pubkey_ec 03 "Public-Key: (256 bit)" P-256
step "--read-object --type pubkey P-384: openssl reads it, = CKA_EC_PARAMS/EC_POINT" \
    t_read_pubkey_ec 04 "Public-Key: (384 bit)" P-384
step "--sign/--verify RSA-PKCS (DigestInfo) rsa2048; openssl verifies" t_sign_rsa_pkcs 01
step "--sign/--verify RSA-PKCS (DigestInfo) rsa4096; openssl verifies" t_sign_rsa_pkcs 02
step "--sign/--verify SHA256-RSA-PKCS rsa2048; openssl verifies" t_sign_sha256_rsa_pkcs 01
step "--sign/--verify SHA256-RSA-PKCS rsa4096; openssl verifies" t_sign_sha256_rsa_pkcs 02
step "--sign/--verify SHA256-RSA-PKCS-PSS (MGF1-SHA256, salt 32) rsa2048; openssl verifies" \
    t_sign_sha256_rsa_pss 01
step "--sign/--verify SHA256-RSA-PKCS-PSS (MGF1-SHA256, salt 32) rsa4096; openssl verifies" \
    t_sign_sha256_rsa_pss 02
step "--sign/--verify RSA-PKCS-PSS --hash-algorithm SHA256 rsa2048; openssl verifies" \
    t_sign_rsa_pss 01
step "--sign/--verify ECDSA (raw r||s) P-256; openssl verifies" t_sign_ecdsa 03 sha256 32
step "--sign/--verify ECDSA (raw r||s) P-384; openssl verifies" t_sign_ecdsa 04 sha384 48
step "--sign/--verify ECDSA-SHA256 --signature-format openssl P-256; openssl verifies" \
    t_sign_ecdsa_sha256 03
step "--sign/--verify ECDSA-SHA256 --signature-format openssl P-384; openssl verifies" \
    t_sign_ecdsa_sha256 04
step "openssl OAEP(SHA-256) encrypt, --decrypt RSA-PKCS-OAEP rsa2048" t_oaep 01
step "openssl OAEP(SHA-256) encrypt, --decrypt RSA-PKCS-OAEP rsa4096" t_oaep 02
step "AES key wrap: wrapping and target keys (--keygen --extractable)" t_wrap_setup
step "--wrap/--unwrap AES-KEY-WRAP (RFC 3394) = openssl id-aes256-wrap" t_wrap \
    AES-KEY-WRAP -id-aes256-wrap A6A6A6A6A6A6A6A6 21 AES:32 31
step "--wrap/--unwrap AES-KEY-WRAP-KWP 0x210B (RFC 5649), 20-byte key = openssl id-aes256-wrap-pad" \
    t_wrap 0x210B -id-aes256-wrap-pad A65959A6 22 GENERIC:20 32
step "--wrap of a non-extractable key: CKR_KEY_UNEXTRACTABLE" t_wrap_unextractable
step "openssl dgst -sign via the pkcs11 engine, RSA (id 01); plain openssl verifies" \
    t_engine_sign sha256 01
step "openssl dgst -sign via the pkcs11 engine, P-256 (id 03); plain openssl verifies" \
    t_engine_sign sha256 03
step "openssl dgst -sign via the pkcs11 engine, P-384 (id 04); plain openssl verifies" \
    t_engine_sign sha384 04
step "openssl req -x509 with the token RSA key; x509 -text, verify" t_self_signed 01 rsa2048 \
    "$WORK/cert-01.pem" sha256WithRSAEncryption
step "pkcs11-tool --write-object --type cert (id 01); --list-objects, --read-object" t_store_cert
step "TLS 1.3 on loopback: s_server with the token RSA key, s_client verifies" t_tls rsa2048 \
    "$WORK/cert-01.pem" "New, TLSv1.3, Cipher is"
step "openssl req -x509 with the token P-256 key; x509 -text, verify" t_self_signed 03 ec-p256 \
    "$WORK/cert-03.pem" ecdsa-with-SHA256
step "TLS 1.2 on loopback: s_server with the token P-256 key (ECDHE-ECDSA)" t_tls ec-p256 \
    "$WORK/cert-03.pem" "New, TLSv1.2, Cipher is ECDHE-ECDSA-" -tls1_2
step "p11tool --list-all --login (GNUTLS_PIN)" t_p11tool_list
step "p11tool --generate-privkey rsa --bits 2048 --label p11tool-key" t_p11tool_generate
step "p11tool --test-sign p11tool-key (RSA)" t_p11tool_test_sign \
    "pkcs11:token=$LABEL;object=p11tool-key;type=private" RSA-SHA256
step "p11tool --test-sign ec-p384 (made by pkcs11-tool)" t_p11tool_test_sign \
    "pkcs11:token=$LABEL;object=ec-p384;type=private" ECDSA-SHA256
step "--delete-object privkey+pubkey; --list-objects shows them gone" t_delete
step "pkcs11-tool --test --login" t_selftest

# ================================================================ issue 15 item 4: Ed25519, X25519
# Edwards and Montgomery keys made by pkcs11-tool (CKK_EC_EDWARDS with CKA_EC_PARAMS
# "edwards25519", CKK_EC_MONTGOMERY with "curve25519"), CKM_EDDSA signatures checked by
# pkcs11-tool and by plain openssl against the RFC 8410 SubjectPublicKeyInfo built from
# CKA_EC_POINT (OpenSC 0.23's --read-object exports no Ed25519 key openssl reads).

# ed_spki ID FILE: the Ed25519 SubjectPublicKeyInfo of the public key with CKA_ID ID, from its
# CKA_EC_POINT (a DER OCTET STRING of the 32-byte key).
ed_spki() {
    local attr
    attr=$(ec_attr "$1" EC_POINT)
    echo "CKA_EC_POINT: $attr"
    [[ ${attr:0:4} == 0420 && ${#attr} -eq 68 ]] || {
        echo "FAIL: EC_POINT is not a DER OCTET STRING of 32 bytes"
        return 1
    }
    hex2bin "302a300506032b6570032100${attr:4}" "$2"
}

# t_eddsa ID: sign with CKM_EDDSA; pkcs11-tool and openssl verify; a changed message fails.
t_eddsa() {
    local id=$1
    printf 'EdDSA through ecm-hsm\n' >"$WORK/ed-data"
    printf 'EdDSA through ecm-hsm!\n' >"$WORK/ed-other"
    x p11u --sign --mechanism EDDSA --id "$id" -i "$WORK/ed-data" -o "$WORK/ed-sig" && rc_is 0 ||
        return 1
    [[ $(wc -c <"$WORK/ed-sig") -eq 64 ]] || {
        echo "FAIL: the signature is not 64 bytes"
        return 1
    }
    x p11u --verify --mechanism EDDSA --id "$id" -i "$WORK/ed-data" --signature-file "$WORK/ed-sig" &&
        rc_is 0 && has "Signature is valid" || return 1
    need_openssl || return 0
    ed_spki "$id" "$WORK/ed-pub.der" || return 1
    x openssl pkeyutl -verify -pubin -keyform DER -inkey "$WORK/ed-pub.der" -rawin \
        -in "$WORK/ed-data" -sigfile "$WORK/ed-sig" && rc_is 0 &&
        has "Signature Verified Successfully" || return 1
    x openssl pkeyutl -verify -pubin -keyform DER -inkey "$WORK/ed-pub.der" -rawin \
        -in "$WORK/ed-other" -sigfile "$WORK/ed-sig" && rc_nonzero
}

step "--keypairgen EC:edwards25519 (CKK_EC_EDWARDS)" t_keypairgen EC:edwards25519 0e ed25519 \
    "EC_EDWARDS"
step "--sign/--verify EDDSA Ed25519; openssl verifies" t_eddsa 0e
step "--keypairgen EC:curve25519 (CKK_EC_MONTGOMERY)" t_keypairgen EC:curve25519 0f x25519 \
    "EC_MONTGOMERY"
# ================================================================ end of issue 15 item 4

steps_summary
