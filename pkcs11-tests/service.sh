#!/usr/bin/env bash
# The pkcs11-tests set with libecm_hsm.so in client mode (issue 14): for each suite, starts
# `ecm-hsm serve --socket` in the foreground as a background process of this script, on a
# fresh token directory with the test settings, and runs the suite with ECM_HSM_SERVICE
# pointing at it (and ECM_HSM_DIR at the service's directory, where the suites look for
# token files and run the admin tool). Suites: run.sh, interop.sh, python/run.sh,
# java/run.sh, and the hierarchy demo.
#
# Each service holds a service key of its own (ECM_HSM_SERVICE_KEY_FILE, a fresh 32-byte
# file), so every token the suites make through it is in service custody (the token key
# sealed for the service, PINs only verifiers): the suites exercise the production mode.
# The suites' in-process steps on the token files (`audit verify`, `audit export`) run as
# on the service's host, with the same key file.
#
#   pkcs11-tests/service.sh [SUITE...]     (SUITE: run interop python java demo)
#
# The admin tool is a client too (ECM_HSM_SERVICE): the demo and the suites' admin-tool steps
# go through the service, except `audit verify`/`audit export`, which read the token files
# in-process on the service's directory (ECM_HSM_DIR; they say so); the demo's token is then
# checked through the service with pkcs11-tool.
# Exits non-zero if a suite fails or a service cannot start.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=pkcs11-tests/lib.sh
. "$HERE/lib.sh"

cargo build --quiet --manifest-path "$ROOT/Cargo.toml" --lib --bin ecm-hsm
CLI=$ROOT/target/debug/ecm-hsm
# Built once here; each suite takes it as it is.
export ECM_HSM_MODULE=$ROOT/target/debug/libecm_hsm.so

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ecm-hsm-svc.XXXXXX")
SERVICE_PID=
stop_service() {
    stop_pid SERVICE_PID
    unset ECM_HSM_SERVICE ECM_HSM_SERVICE_KEY_FILE
}
trap 'stop_service; rm -rf "$WORK"' EXIT

# start_service NAME: a service on $WORK/NAME/tokens; exports ECM_HSM_DIR and ECM_HSM_SERVICE.
start_service() {
    local dir=$WORK/$1
    mkdir -p "$dir/tokens"
    chmod 700 "$dir/tokens"
    printf 'test_settings = true\npin_kdf_iterations = 1000\n' >"$dir/tokens/ecm-hsm.toml"
    chmod 600 "$dir/tokens/ecm-hsm.toml" # a settings file others may write is refused
    (umask 077 && head -c 32 /dev/urandom >"$dir/service.key")
    (unset ECM_HSM_SERVICE ECM_HSM_CONF LISTEN_FDS CREDENTIALS_DIRECTORY &&
        ECM_HSM_DIR=$dir/tokens ECM_HSM_SERVICE_KEY_FILE=$dir/service.key exec "$CLI" serve \
            --socket "$dir/service.sock" --mode 0600) >"$dir/service.log" 2>&1 &
    SERVICE_PID=$!
    # Until the socket exists, with a deadline (never a fixed sleep).
    local deadline=$((SECONDS + 60))
    until [[ -S $dir/service.sock ]]; do
        if ! kill -0 "$SERVICE_PID" 2>/dev/null || ((SECONDS > deadline)); then
            echo "FAIL: the service for $1 did not start:"
            sed 's/^/    # /' "$dir/service.log"
            return 1
        fi
        sleep 0.1
    done
    export ECM_HSM_DIR=$dir/tokens
    export ECM_HSM_SERVICE=unix:$dir/service.sock
    export ECM_HSM_SERVICE_KEY_FILE=$dir/service.key
}

# The hierarchy demo with the debug admin tool, then its token seen through the service.
demo() {
    ECM_HSM_BIN=$CLI "$HERE/hierarchy-demo.sh"
    local out
    out=$(pkcs11-tool --module "$ECM_HSM_MODULE" --list-token-slots 2>&1)
    echo "$out"
    grep -q "demo-" <<<"$out" || {
        echo "FAIL: the demo's token is not listed through the service"
        return 1
    }
    grep -q "via the key service" <<<"$out" || {
        echo "FAIL: the slot does not say it is reached through the service"
        return 1
    }
    grep -q "ecm-hsm TEST svc" <<<"$out" || {
        echo "FAIL: the token does not say it is in service custody"
        return 1
    }
    out=$(ECM_HSM_PIN=${DEMO_PIN:-demo-user-pin} "$CLI" status 2>&1) || true
    grep -q "^custody: service" <<<"$out" || {
        echo "FAIL: \`ecm-hsm status\` through the service does not show service custody:"
        echo "$out"
        return 1
    }
}

suite_command() {
    case $1 in
    run) echo "$HERE/run.sh" ;;
    interop) echo "$HERE/interop.sh" ;;
    python) echo "$HERE/python/run.sh" ;;
    java) echo "$HERE/java/run.sh" ;;
    demo) echo demo ;;
    *) return 1 ;;
    esac
}

suites=("$@")
[[ ${#suites[@]} -gt 0 ]] || suites=(run interop python java demo)
failed=()
for suite in "${suites[@]}"; do
    command=$(suite_command "$suite") || {
        echo "unknown suite $suite (run, interop, python, java, demo)" >&2
        exit 2
    }
    echo "## $suite through the key service"
    if start_service "$suite"; then
        status=0
        "$command" || status=$?
        if ! kill -0 "$SERVICE_PID" 2>/dev/null; then
            echo "FAIL: the service died during $suite:"
            sed 's/^/    # /' "$WORK/$suite/service.log"
            status=1
        fi
        stop_service
        [[ $status -eq 0 ]] || failed+=("$suite")
    else
        failed+=("$suite")
    fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "# through the service, failed: ${failed[*]}"
    exit 1
fi
echo "# through the service, passed: ${suites[*]}"
