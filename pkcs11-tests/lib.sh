# Shared harness of the pkcs11-tests scripts (run.sh, interop.sh, package.sh, service.sh);
# sourced, not run.
#
# A suite of steps calls `suite_begin` (or, with a work directory and module of its own,
# `steps_begin`) before its first `step`, and ends with `steps_summary`.
# shellcheck shell=bash

# suite_begin TAG [MODULE]: the start of a suite of steps run against the module: MODULE
# (module_path of MODULE, else of $ECM_HSM_MODULE), the work directory (suite_workdir TAG),
# the token directory $WORK/tokens (suite_token_dir) and the step counters (steps_begin).
suite_begin() {
    MODULE=$(module_path "${2:-${ECM_HSM_MODULE:-}}")
    suite_workdir "$1"
    suite_token_dir "$WORK/tokens"
    steps_begin
}

# suite_workdir TAG: the suite's work directory $WORK, removed at exit after the server the
# suite may have started in the background ($SERVER_PID) is stopped.
suite_workdir() {
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/ecm-hsm-$1.XXXXXX")
    SERVER_PID=
    trap 'stop_pid SERVER_PID; rm -rf "$WORK"' EXIT
}

# stop_pid VAR: kills the background process whose pid the variable named VAR holds (if it
# holds one), reaps it and empties VAR.
stop_pid() {
    local -n pid_of=$1
    if [[ -n $pid_of ]]; then
        kill "$pid_of" 2>/dev/null || true
        wait "$pid_of" 2>/dev/null || true
        pid_of=
    fi
}

# steps_begin: the counters `step` keeps and its log file, $WORK/step.log.
steps_begin() {
    PASSED=0
    FAILED=0
    SKIPPED=0
    STEP_LOG=$WORK/step.log
    SKIP_REASON=
}

t_module_exists() {
    echo "module: $MODULE"
    [[ -f $MODULE ]] || {
        echo "FAIL: $MODULE does not exist (run cargo build)"
        return 1
    }
}

# steps_preflight: the first lines of a suite run with pkcs11-tool: names the module and token
# directory, then ends the suite (failed) unless the module file exists and pkcs11-tool is
# installed.
steps_preflight() {
    echo "# module: $MODULE"
    echo "# ECM_HSM_DIR: $ECM_HSM_DIR"
    step "module file exists" t_module_exists
    if [[ $FAILED -ne 0 ]]; then
        echo "$PASSED passed, $FAILED failed"
        exit 1
    fi
    have pkcs11-tool || {
        echo "not ok - pkcs11-tool (opensc) is installed"
        echo "$PASSED passed, 1 failed"
        exit 1
    }
}

# steps_summary: the suite's last lines, `# N skipped` (if any) and `N passed, M failed`; its
# status, the script's last, is non-zero if a step failed.
steps_summary() {
    [[ $SKIPPED -eq 0 ]] || echo "# $SKIPPED skipped"
    echo "$PASSED passed, $FAILED failed"
    [[ $FAILED -eq 0 ]]
}

# module_path [PATH]: PATH made absolute (p11-kit, dlopen() and the OpenSSL engine's
# MODULE_PATH would otherwise search the library path); without PATH, the repository's debug
# module, built first so that it is never a stale copy (`cargo test` builds the library but
# does not refresh target/debug/libecm_hsm.so). Needs ROOT.
module_path() {
    local module=$1
    if [[ -z $module ]]; then
        cargo build --quiet --manifest-path "$ROOT/Cargo.toml" --lib >&2
        module=$ROOT/target/debug/libecm_hsm.so
    fi
    case $module in
    /*) echo "$module" ;;
    *) echo "$PWD/$module" ;;
    esac
}

# step NAME FUNCTION [ARGS...]: runs FUNCTION (which returns non-zero on failure, or calls
# `skip REASON; return 0`), records the result and prints its log on failure.
step() {
    local name=$1
    shift
    SKIP_REASON=
    : >"$STEP_LOG"
    if "$@" >>"$STEP_LOG" 2>&1; then
        if [[ -n $SKIP_REASON ]]; then
            echo "ok - $name # SKIP $SKIP_REASON"
            SKIPPED=$((SKIPPED + 1))
        else
            echo "ok - $name"
            PASSED=$((PASSED + 1))
        fi
    else
        echo "not ok - $name"
        sed 's/^/    # /' "$STEP_LOG"
        FAILED=$((FAILED + 1))
    fi
}

skip() { SKIP_REASON=$1; }

# x CMD...: runs CMD, capturing stdout+stderr in $OUT and the exit code in $RC; logs both.
x() {
    echo "\$ $*"
    RC=0
    OUT=$("$@" 2>&1) || RC=$?
    [[ -z $OUT ]] || printf '%s\n' "$OUT"
    echo "[exit $RC]"
}

# xo FILE CMD...: like x, but stdout goes to FILE (binary output) and only stderr to $OUT.
xo() {
    local file=$1
    shift
    echo "\$ $* > $file"
    RC=0
    OUT=$("$@" 2>&1 >"$file") || RC=$?
    [[ -z $OUT ]] || printf '%s\n' "$OUT"
    echo "[exit $RC, $(wc -c <"$file") bytes of output]"
}

rc_is() {
    [[ $RC -eq $1 ]] || {
        echo "FAIL: expected exit status $1, got $RC"
        return 1
    }
}
rc_nonzero() {
    [[ $RC -ne 0 ]] || {
        echo "FAIL: expected a non-zero exit status"
        return 1
    }
}
has() {
    grep -qF -- "$1" <<<"$OUT" || {
        echo "FAIL: output does not contain: $1"
        return 1
    }
}
lacks() {
    if grep -qF -- "$1" <<<"$OUT"; then
        echo "FAIL: output unexpectedly contains: $1"
        return 1
    fi
}
# lacks_re REGEX [EXCEPT]: no line of $OUT matches the (case-insensitive, extended) REGEX,
# apart from lines equal to EXCEPT.
lacks_re() {
    local bad
    bad=$(grep -iE -- "$1" <<<"$OUT" | grep -vxF -- "${2:-}" || true)
    if [[ -n $bad ]]; then
        echo "FAIL: output has a line matching /$1/:"
        sed 's/^/      /' <<<"$bad"
        return 1
    fi
}
# slot N: narrows $OUT (pkcs11-tool --list-slots output) to the block of slot N.
slot() {
    local all=$OUT
    OUT=$(awk -v n="$1" '/^Slot /{p=($2==n)} p' <<<"$all")
    [[ -n $OUT ]] || {
        echo "FAIL: no 'Slot $1' in the slot list"
        return 1
    }
}
# flags_line: narrows $OUT to the token flags line.
flags_line() {
    OUT=$(grep -F 'token flags' <<<"$OUT" || true)
    echo "(flags: ${OUT:-<none>})"
}
hex() { od -An -v -tx1 "$1" | tr -d ' \n'; }
same_file() {
    cmp -s "$1" "$2" || {
        echo "FAIL: $1 and $2 differ"
        return 1
    }
}

# first_file PATH...: the first PATH that is a file (the others may be unexpanded globs), or
# nothing.
first_file() {
    local c
    for c in "$@"; do
        if [[ -f $c ]]; then
            echo "$c"
            return 0
        fi
    done
}

p11() { pkcs11-tool --module "$MODULE" "$@"; }
have() { command -v "$1" >/dev/null 2>&1; }

# suite_token_dir DIR: the token directory of a suite. In-process (the default) it is DIR,
# made with the test settings. With ECM_HSM_SERVICE set (service.sh), the module is a client
# of a service that service.sh started on ECM_HSM_DIR: that directory is kept (the suite's
# checks of token files and its admin-tool calls look there) and nothing is written into it.
suite_token_dir() {
    unset ECM_HSM_CONF # the config must come from $ECM_HSM_DIR/ecm-hsm.toml
    if [[ -n ${ECM_HSM_SERVICE:-} ]]; then
        [[ -n ${ECM_HSM_DIR:-} && -d $ECM_HSM_DIR ]] || {
            echo "ECM_HSM_SERVICE is set but ECM_HSM_DIR names no service directory" >&2
            exit 2
        }
        echo "# client mode: service $ECM_HSM_SERVICE on $ECM_HSM_DIR" >&2
        return 0
    fi
    export ECM_HSM_DIR=$1
    mkdir -p "$ECM_HSM_DIR"
    printf 'test_settings = true\npin_kdf_iterations = 1000\n' >"$ECM_HSM_DIR/ecm-hsm.toml"
    chmod 600 "$ECM_HSM_DIR/ecm-hsm.toml" # a settings file others may write is refused
}

# against_expected_failures SUITE LIST PASSED FAILED: judges a third party's test suite run
# against the module. PASSED and FAILED are files of test names, one per line; LIST is the
# suite's list of expected failures (a test name and its reason per line, `#` comments).
# Prints what is wrong and returns non-zero if no test passed, a test failed that LIST does
# not name, or a test LIST names passed (so the list stays true); the failures' details are
# the caller's to print. Sets EXPECTED_COUNT.
against_expected_failures() {
    local suite=$1 list=$2 passed=$3 failed=$4 expected status=0
    expected=$(grep -v '^#' "$list" | awk 'NF { print $1 }' | sort -u)
    EXPECTED_COUNT=$(grep -c . <<<"$expected" || true)
    if [[ ! -s $passed ]]; then
        echo "FAIL: no test of $suite passed"
        return 1
    fi
    UNEXPECTED=$(comm -23 <(sort -u "$failed") <(echo "$expected"))
    if [[ -n $UNEXPECTED ]]; then
        echo "FAIL: tests of $suite that failed and are not expected to:"
        sed 's/^/    /' <<<"$UNEXPECTED"
        status=1
    fi
    local now_passing
    now_passing=$(comm -12 <(sort -u "$passed") <(echo "$expected"))
    if [[ -n $now_passing ]]; then
        echo "FAIL: tests listed in $list that pass now (remove them):"
        sed 's/^/    /' <<<"$now_passing"
        status=1
    fi
    return $status
}
