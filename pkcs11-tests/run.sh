#!/usr/bin/env bash
# Interoperability checks: drives the built ecm-hsm module with real PKCS#11 consumers
# (OpenSC pkcs11-tool, GnuTLS p11tool, p11-kit, and a small C fork test).
#
#   pkcs11-tests/run.sh [MODULE]
#
# MODULE defaults to $ECM_HSM_MODULE, then to target/debug/libecm_hsm.so in the repository,
# built first with `cargo build --lib`.
# Each step prints `ok - <step>` or `not ok - <step>` (followed by the commands it ran and
# their output); a step the tools cannot perform prints `ok - <step> # SKIP <reason>`.
# The last line is `N passed, M failed`; the exit status is non-zero if any step failed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)

# shellcheck source=pkcs11-tests/lib.sh
. "$HERE/lib.sh"
suite_begin interop "${1:-}"

SO_PIN=so-pin-1234
USER_PIN=user-pin-1
NEW_PIN=user-pin-2
LABEL=ecm-interop
LABEL2=ecm-reinit

# ---------------------------------------------------------------- harness

# step, skip, x, xo, rc_is, has, lacks, ... (shared with interop.sh)

# ---------------------------------------------------------------- steps

t_initial_slots() {
    x p11 --list-slots && rc_is 0 || return 1
    local all=$OUT
    slot 0 && has "token state:   uninitialized" || return 1
    OUT=$all
    lacks "Slot 1 "
}

t_init_token() {
    x p11 --init-token --slot 0 --label "$LABEL" --so-pin "$SO_PIN" && rc_is 0 &&
        has "Token successfully initialized"
}

t_slots_after_init() {
    x p11 --list-slots && rc_is 0 || return 1
    local all=$OUT
    slot 0 && has "token label        : $LABEL" && flags_line && has "token initialized" &&
        lacks "PIN initialized" || return 1
    OUT=$all
    slot 1 && has "token state:   uninitialized"
}

t_init_pin() {
    x p11 --slot 0 --init-pin --login --so-pin "$SO_PIN" --pin "$USER_PIN" && rc_is 0 &&
        has "User PIN successfully initialized" || return 1
    x p11 --list-slots && rc_is 0 && slot 0 && flags_line && has "PIN initialized"
}

t_wrong_pin() {
    x p11 --slot 0 --login --pin wrong-pin-0 --list-objects && rc_nonzero &&
        has "CKR_PIN_INCORRECT" || return 1
    x p11 --list-slots && rc_is 0 && slot 0 && flags_line && has "user PIN count low"
}

t_right_pin_clears_count_low() {
    x p11 --slot 0 --login --pin "$USER_PIN" --list-objects && rc_is 0 || return 1
    x p11 --list-slots && rc_is 0 && slot 0 && flags_line && lacks "count low" &&
        has "PIN initialized"
}

# t_keygen KEY_TYPE LABEL LISTED: --keygen of a secret key, then --list-objects --login shows
# it as `Secret Key Object; LISTED` with its label.
t_keygen() {
    x p11 --slot 0 --keygen --key-type "$1" --label "$2" --login --pin "$USER_PIN" &&
        rc_is 0 && has "Key generated" || return 1
    x p11 --slot 0 --list-objects --login --pin "$USER_PIN" && rc_is 0 &&
        has "Secret Key Object; $3" && has "label:      $2"
}

# pkcs11-tool 0.23 sends CKA_PRIVATE=false unless --private is given, so the key that must be
# hidden before login is generated with --private.
t_private_key_hidden() {
    x p11 --slot 0 --keygen --key-type AES:16 --label kpriv --private --login --pin "$USER_PIN" &&
        rc_is 0 && has "Key generated" || return 1
    x p11 --slot 0 --list-objects && rc_is 0 && lacks "kpriv" && has "label:      k1" || return 1
    x p11 --slot 0 --list-objects --login --pin "$USER_PIN" && rc_is 0 &&
        has "label:      kpriv" && has "Secret Key Object; AES length 16"
}

t_random() {
    xo "$WORK/rand1" p11 --slot 0 --generate-random 32 && rc_is 0 || return 1
    xo "$WORK/rand2" p11 --slot 0 --generate-random 32 && rc_is 0 || return 1
    local n1 n2
    n1=$(wc -c <"$WORK/rand1")
    n2=$(wc -c <"$WORK/rand2")
    [[ $n1 -eq 32 && $n2 -eq 32 ]] || {
        echo "FAIL: expected 32 bytes, got $n1 and $n2"
        return 1
    }
    if cmp -s "$WORK/rand1" "$WORK/rand2"; then
        echo "FAIL: two calls returned the same bytes"
        return 1
    fi
}

t_mechanisms() {
    x p11 --slot 0 --list-mechanisms && rc_is 0 && has "AES-GCM" && has "SHA256" &&
        has "AES-KEY-GEN" && has "GENERIC-SECRET-KEY-GEN" && has "SHA-1" && has "SHA384" &&
        has "SHA512"
}

# hash MECHANISM SUMTOOL FILE
t_hash() {
    local mech=$1 tool=$2 file=$3 got want
    have "$tool" || {
        skip "$tool not installed"
        return 0
    }
    x p11 --slot 0 --hash --mechanism "$mech" --input-file "$file" --output-file "$WORK/digest" &&
        rc_is 0 || return 1
    got=$(hex "$WORK/digest")
    want=$("$tool" <"$file" | cut -d' ' -f1)
    echo "pkcs11-tool: $got"
    echo "$tool: $want"
    [[ $got == "$want" ]] || {
        echo "FAIL: digests differ"
        return 1
    }
}

# SHA-3 digests of the standard input, as the coreutils sums print them (OpenSSL has them;
# coreutils 9.1 has no sha3 sums).
sha3_224sum() { openssl dgst -sha3-224 -r | cut -d' ' -f1; }
sha3_512sum() { openssl dgst -sha3-512 -r | cut -d' ' -f1; }

# An HMAC-SHA3-256 by the token with a generic secret it generated, checked against OpenSSL's
# HMAC under the key's value read back (made extractable, as pkcs11-tool marks it sensitive).
t_sha3_hmac() {
    local key got want
    have openssl || {
        skip "openssl not installed"
        return 0
    }
    x p11 --slot 0 --login --pin "$USER_PIN" --keygen --key-type GENERIC:32 --label hmac-sha3 --id 05a3 \
        --usage-sign --extractable &&
        rc_is 0 || return 1
    x p11 --slot 0 --login --pin "$USER_PIN" --sign --mechanism SHA3-256-HMAC --id 05a3 \
        --input-file "$WORK/hash-input" --output-file "$WORK/hmac" && rc_is 0 || return 1
    x p11 --slot 0 --login --pin "$USER_PIN" --read-object --type secrkey --id 05a3 \
        --output-file "$WORK/hmac-key" && rc_is 0 || return 1
    key=$(hex "$WORK/hmac-key")
    got=$(hex "$WORK/hmac")
    want=$(openssl mac -digest SHA3-256 -macopt "hexkey:$key" -in "$WORK/hash-input" HMAC | tr 'A-F' 'a-f')
    echo "pkcs11-tool: $got"
    echo "openssl: $want"
    [[ ${#got} == 64 && $got == "$want" ]] || {
        echo "FAIL: MACs differ"
        return 1
    }
}

t_gcm_round_trip() {
    local help
    help=$(pkcs11-tool --help 2>&1 || true)
    if ! grep -q -- '--aad' <<<"$help" || ! grep -q -- '--tag-bits-len' <<<"$help"; then
        skip "this pkcs11-tool has no --aad/--tag-bits-len (GCM parameters need OpenSC >= 0.24; 0.23 rejects AES-GCM in --encrypt)"
        return 0
    fi
    head -c 1000 /dev/urandom >"$WORK/plain"
    x p11 --slot 0 --login --pin "$USER_PIN" --encrypt --mechanism AES-GCM --label k1 \
        --iv 000102030405060708090a0b --aad 0a0b0c --tag-bits-len 128 \
        --input-file "$WORK/plain" --output-file "$WORK/cipher" && rc_is 0 || return 1
    local n
    n=$(wc -c <"$WORK/cipher")
    [[ $n -eq 1016 ]] || {
        echo "FAIL: ciphertext is $n bytes, expected 1000 + 16-byte tag"
        return 1
    }
    x p11 --slot 0 --login --pin "$USER_PIN" --decrypt --mechanism AES-GCM --label k1 \
        --iv 000102030405060708090a0b --aad 0a0b0c --tag-bits-len 128 \
        --input-file "$WORK/cipher" --output-file "$WORK/replain" && rc_is 0 &&
        same_file "$WORK/plain" "$WORK/replain"
}

t_data_write() {
    head -c 300 /dev/urandom >"$WORK/data1"
    x p11 --slot 0 --login --pin "$USER_PIN" --write-object "$WORK/data1" --type data \
        --label d1 --application-label ecm-app && rc_is 0 && has "Created Data Object" || return 1
    x p11 --slot 0 --login --pin "$USER_PIN" --list-objects && rc_is 0 && has "Data object" &&
        has "label:          'd1'" && has "application:    'ecm-app'"
}

t_data_read() {
    x p11 --slot 0 --login --pin "$USER_PIN" --read-object --type data --label d1 \
        --output-file "$WORK/data1.out" && rc_is 0 && same_file "$WORK/data1" "$WORK/data1.out"
}

t_data_delete() {
    x p11 --slot 0 --login --pin "$USER_PIN" --delete-object --type data --label d1 && rc_is 0 ||
        return 1
    x p11 --slot 0 --login --pin "$USER_PIN" --list-objects && rc_is 0 && lacks "Data object" &&
        lacks "'d1'" && has "label:      k1" || return 1
    x p11 --slot 0 --login --pin "$USER_PIN" --read-object --type data --label d1 \
        --output-file "$WORK/data1.gone" && rc_nonzero
}

t_selftest() {
    x p11 --slot 0 --test --login --pin "$USER_PIN" && rc_is 0 && has "No errors" &&
        lacks_re 'error|failed' "No errors"
}

t_change_pin() {
    x p11 --slot 0 --change-pin --pin "$USER_PIN" --new-pin "$NEW_PIN" && rc_is 0 &&
        has "PIN successfully changed" || return 1
    x p11 --slot 0 --login --pin "$NEW_PIN" --list-objects && rc_is 0 && has "kpriv" || return 1
    x p11 --slot 0 --login --pin "$USER_PIN" --list-objects && rc_nonzero &&
        has "CKR_PIN_INCORRECT" || return 1
    # The wrong attempt above must be cleared again by a right one.
    x p11 --slot 0 --login --pin "$NEW_PIN" --list-objects && rc_is 0 || return 1
    x p11 --list-slots && rc_is 0 && slot 0 && flags_line && lacks "count low"
}

t_persistence() {
    [[ -f $ECM_HSM_DIR/token-0.sqlite ]] || {
        echo "FAIL: no $ECM_HSM_DIR/token-0.sqlite"
        ls -la "$ECM_HSM_DIR"
        return 1
    }
    x p11 --slot 0 --login --pin "$NEW_PIN" --list-objects && rc_is 0 &&
        has "label:      k1" && has "label:      kpriv" && has "label:      g1" &&
        has "Secret Key Object; AES length 32" &&
        has "Secret Key Object; Generic secret length 32"
}

t_fork() {
    have cc || {
        skip "no C compiler (cc) installed"
        return 0
    }
    x cc -o "$WORK/fork_test" "$HERE/fork_test.c" -ldl && rc_is 0 || return 1
    x "$WORK/fork_test" "$MODULE" 0 "$NEW_PIN" && rc_is 0 && has "all checks passed" &&
        lacks "FAIL"
}

t_p11tool_tokens() {
    have p11tool || {
        skip "p11tool (gnutls-bin) not installed"
        return 0
    }
    x p11tool --batch --provider "$MODULE" --list-tokens && rc_is 0 && has "Label: $LABEL" &&
        has "token=$LABEL"
}

t_p11tool_objects() {
    have p11tool || {
        skip "p11tool (gnutls-bin) not installed"
        return 0
    }
    # Without login only the public keys are listed...
    x p11tool --batch --provider "$MODULE" --list-all "pkcs11:token=$LABEL" && rc_is 0 &&
        has "Label: k1" && lacks "Label: kpriv" || return 1
    # ... with login (PIN from GNUTLS_PIN) the private one too.
    x env GNUTLS_PIN="$NEW_PIN" p11tool --batch --provider "$MODULE" --list-all --login \
        "pkcs11:token=$LABEL" && rc_is 0 && has "Label: k1" && has "Label: kpriv" &&
        has "Label: g1" && has "Type: Secret key" && has "CKA_PRIVATE"
}

t_p11tool_random() {
    have p11tool || {
        skip "p11tool (gnutls-bin) not installed"
        return 0
    }
    xo "$WORK/rand3" p11tool --batch --provider "$MODULE" --generate-random 32 \
        "pkcs11:token=$LABEL" && rc_is 0 || return 1
    local n
    n=$(wc -c <"$WORK/rand3")
    [[ $n -eq 32 ]] || {
        echo "FAIL: expected 32 bytes, got $n"
        return 1
    }
}

# OpenSC's pkcs11-spy sits between a tool and a module and writes into the interface record
# the module hands out; the module's tables must be writable for that to work. The spy of
# OpenSC 0.23 wraps interfaces up to 3.0 and passes the module's default, 3.2, through
# unwatched: ECM_HSM_DEFAULT_INTERFACE=3.0 makes 3.0 the default for it.
t_pkcs11_spy() {
    local spy
    spy=$(first_file /usr/lib/x86_64-linux-gnu/pkcs11/pkcs11-spy.so /usr/lib/*/pkcs11/pkcs11-spy.so)
    [[ -n $spy ]] || {
        skip "pkcs11-spy.so (opensc) not found"
        return 0
    }
    x env ECM_HSM_DEFAULT_INTERFACE=3.0 PKCS11SPY="$MODULE" PKCS11SPY_OUTPUT="$WORK/spy.log" pkcs11-tool --module "$spy" \
        --list-slots && rc_is 0 && has "token label        : $LABEL" || return 1
    grep -q "C_GetSlotList" "$WORK/spy.log" || {
        echo "FAIL: the spy log does not show the calls"
        return 1
    }
}

# p11-kit only loads modules named in its configuration; as root the per-user config is
# ignored and the system one must not be touched, so `p11-kit list-modules` cannot see an
# arbitrary module. `p11-kit server --provider MODULE` can: it serves the token over a unix
# socket, and p11-kit-client.so (P11_KIT_SERVER_ADDRESS) is then used through pkcs11-tool.
t_p11kit_server() {
    have p11-kit || {
        skip "p11-kit not installed"
        return 0
    }
    local client
    client=$(first_file /usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so \
        /usr/lib/*/pkcs11/p11-kit-client.so /usr/lib64/pkcs11/p11-kit-client.so \
        /usr/lib/pkcs11/p11-kit-client.so)
    [[ -n $client ]] || {
        skip "p11-kit-client.so not found, cannot connect to a p11-kit server"
        return 0
    }
    local sock=$WORK/p11-kit.sock
    echo "\$ p11-kit server --foreground --provider $MODULE --name $sock pkcs11:token=$LABEL &"
    p11-kit server --foreground --provider "$MODULE" --name "$sock" "pkcs11:token=$LABEL" \
        >"$WORK/p11-kit-server.log" 2>&1 &
    SERVER_PID=$!
    local i
    for i in $(seq 50); do
        [[ -S $sock ]] && break
        sleep 0.1
    done
    local ok=0
    if [[ -S $sock ]]; then
        x env P11_KIT_SERVER_ADDRESS="unix:path=$sock" pkcs11-tool --module "$client" \
            --list-slots && rc_is 0 && has "token label        : $LABEL" &&
            x env P11_KIT_SERVER_ADDRESS="unix:path=$sock" pkcs11-tool --module "$client" \
                --login --pin "$NEW_PIN" --list-objects && rc_is 0 && has "label:      k1" &&
            has "label:      kpriv" && ok=1
    else
        echo "FAIL: the server socket $sock did not appear"
    fi
    stop_pid SERVER_PID
    echo "--- p11-kit server log:"
    cat "$WORK/p11-kit-server.log"
    [[ $ok -eq 1 ]]
}

t_reinit_wrong_so_pin() {
    x p11 --init-token --slot 0 --label "$LABEL2" --so-pin wrong-so-pin && rc_nonzero &&
        has "CKR_PIN_INCORRECT" || return 1
    x p11 --slot 0 --login --pin "$NEW_PIN" --list-objects && rc_is 0 && has "label:      k1"
}

t_reinit() {
    x p11 --init-token --slot 0 --label "$LABEL2" --so-pin "$SO_PIN" && rc_is 0 &&
        has "Token successfully initialized" || return 1
    x p11 --list-slots && rc_is 0 || return 1
    local all=$OUT
    slot 0 && has "token label        : $LABEL2" && flags_line && has "token initialized" &&
        lacks "PIN initialized" || return 1
    OUT=$all
    # Still one free slot, not a second new one.
    slot 1 && has "token state:   uninitialized" || return 1
    OUT=$all
    lacks "Slot 2 " || return 1
    # No objects, public or private (the SO can see both kinds a user could).
    x p11 --slot 0 --list-objects && rc_is 0 && lacks "Object" && lacks "label:" || return 1
    x p11 --slot 0 --session-rw --login --login-type so --so-pin "$SO_PIN" --list-objects &&
        rc_is 0 &&
        lacks "Object" && lacks "label:" || return 1
    # The old user PIN is gone with the objects.
    x p11 --slot 0 --login --pin "$NEW_PIN" --list-objects && rc_nonzero
}

# ---------------------------------------------------------------- run

steps_preflight

head -c 70001 /dev/urandom >"$WORK/hash-input"
: >"$WORK/empty"

step "pkcs11-tool --list-slots: slot 0 uninitialized, no other slot" t_initial_slots
step "pkcs11-tool --init-token slot 0" t_init_token
step "--list-slots after init: label, 'token initialized', new uninitialized slot 1" t_slots_after_init
step "pkcs11-tool --init-pin: flags show 'PIN initialized'" t_init_pin
step "wrong PIN: CKR_PIN_INCORRECT, flags show 'user PIN count low'" t_wrong_pin
step "right PIN logs in and clears 'count low'" t_right_pin_clears_count_low
step "--keygen AES:32 k1; --list-objects --login shows it" t_keygen AES:32 k1 "AES length 32"
step "--keygen --private AES:16 kpriv: hidden without --login, shown with it" t_private_key_hidden
step "--keygen GENERIC:32 g1" t_keygen GENERIC:32 g1 "Generic secret length 32"
step "--generate-random 32 gives 32 (fresh) bytes" t_random
step "--list-mechanisms lists AES-GCM, SHA256 and the rest" t_mechanisms
step "--hash SHA-1 matches sha1sum" t_hash SHA-1 sha1sum "$WORK/hash-input"
step "--hash SHA224 matches sha224sum" t_hash SHA224 sha224sum "$WORK/hash-input"
step "--hash SHA256 matches sha256sum" t_hash SHA256 sha256sum "$WORK/hash-input"
step "--hash SHA384 matches sha384sum" t_hash SHA384 sha384sum "$WORK/hash-input"
step "--hash SHA512 matches sha512sum" t_hash SHA512 sha512sum "$WORK/hash-input"
step "--hash SHA256 of an empty file matches sha256sum" t_hash SHA256 sha256sum "$WORK/empty"
step "--hash SHA3-224 matches OpenSSL's sha3-224" t_hash SHA3-224 sha3_224sum "$WORK/hash-input"
step "--hash SHA3-512 matches OpenSSL's sha3-512" t_hash SHA3-512 sha3_512sum "$WORK/hash-input"
step "--sign SHA3-256-HMAC with a generic key matches OpenSSL's HMAC" t_sha3_hmac
step "--encrypt/--decrypt AES-GCM round trip" t_gcm_round_trip
step "--write-object data d1 (application label)" t_data_write
step "--read-object data d1 returns the same bytes" t_data_read
step "--delete-object data d1 removes it" t_data_delete
step "pkcs11-tool --test --login" t_selftest
step "--change-pin: new PIN works, old PIN fails" t_change_pin
step "objects persist across processes (token-0.sqlite)" t_persistence
step "fork_test: child re-initializes, parent session survives" t_fork
step "p11tool --list-tokens shows the token" t_p11tool_tokens
step "p11tool --list-all (with and without --login, GNUTLS_PIN)" t_p11tool_objects
step "p11tool --generate-random 32" t_p11tool_random
step "p11-kit server --provider + p11-kit-client.so lists token and objects" t_p11kit_server
step "pkcs11-spy between pkcs11-tool and the module" t_pkcs11_spy
step "--init-token with a wrong SO PIN fails and keeps the objects" t_reinit_wrong_so_pin
step "--init-token again with the SO PIN wipes objects and user PIN" t_reinit

steps_summary
