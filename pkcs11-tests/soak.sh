#!/usr/bin/env bash
# Soak test: several processes x threads using one token for minutes — logins, key
# generation, AES-GCM, logouts, C_Finalize/C_Initialize rounds (soak/worker.c), DEK rotation by
# the admin CLI beside them, and kill -9 of random workers — then the store and the audit
# trail are checked: every acknowledged key present once and opening its record, no duplicate
# object handle, `ecm-hsm audit verify` clean, no orphaned or unclosed audit segment.
#
#   pkcs11-tests/soak.sh [MODULE]
#
# Settings (environment): SOAK_SECONDS (default 120), SOAK_WORKERS (processes at a time, 4),
# SOAK_THREADS (threads per process, 4), SOAK_KILL_EVERY (seconds between kill -9s, 4).
# Not part of CI (it takes minutes); it stops by itself and removes its temporary directory.
# A known, unfixed defect listed in soak/known-defects.txt is reported as KNOWN, not failed.
# The last line is `N passed, M failed`; the exit status is non-zero if any check failed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=pkcs11-tests/lib.sh
. "$HERE/lib.sh"
MODULE=$(module_path "${1:-${ECM_HSM_MODULE:-}}")

SECONDS_TOTAL=${SOAK_SECONDS:-120}
WORKERS=${SOAK_WORKERS:-4}
THREADS=${SOAK_THREADS:-4}
KILL_EVERY=${SOAK_KILL_EVERY:-4}
USER_PIN=soak-user-pin-1
KNOWN=$HERE/soak/known-defects.txt

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ecm-hsm-soak.XXXXXX")
declare -A PIDS=()  # worker name -> pid, while running
ROTATOR=
cleanup() {
    local pid
    for pid in "${PIDS[@]}" $ROTATOR; do
        kill -9 "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

PASSED=0
FAILED=0
pass() { echo "ok - $1"; PASSED=$((PASSED + 1)); }
fail() { echo "not ok - $1"; FAILED=$((FAILED + 1)); }
known() { grep -E "^$1 " "$KNOWN" 2>/dev/null | head -1 | cut -d' ' -f2-; }

cargo build --quiet --manifest-path "$ROOT/Cargo.toml" --bin ecm-hsm
CLI=$ROOT/target/debug/ecm-hsm
cc -std=gnu17 -O2 -Wall -pthread -o "$WORK/worker" "$HERE/soak/worker.c" -ldl

export ECM_HSM_DIR=$WORK/tokens
unset ECM_HSM_CONF
mkdir -p "$ECM_HSM_DIR"
# The tests' settings: a cheap PIN KDF, so that thousands of logins take seconds.
printf 'test_settings = true\npin_kdf_iterations = 1000\nmax_pin_failures = 5\nbusy_timeout_ms = 20000\n' >"$ECM_HSM_DIR/ecm-hsm.toml"
chmod 600 "$ECM_HSM_DIR/ecm-hsm.toml" # a settings file others may write is refused
export ECM_HSM_SO_PIN=soak-so-pin-1 ECM_HSM_NEW_PIN=$USER_PIN ECM_HSM_PIN=$USER_PIN
"$CLI" init --label soak >"$WORK/setup.log" 2>&1
"$CLI" hierarchy init >>"$WORK/setup.log" 2>&1
"$CLI" tenant add acme >>"$WORK/setup.log" 2>&1

START=$(date +%s)
DEADLINE=$((START + SECONDS_TOTAL))
N=0
start_worker() {
    local left=$((DEADLINE - $(date +%s)))
    [[ $left -gt 0 ]] || return 0
    N=$((N + 1))
    local name=w$N
    "$WORK/worker" run "$MODULE" "$USER_PIN" "$WORK/ack-$name.log" "$THREADS" "$left" "$name" \
        >"$WORK/out-$name.log" 2>&1 &
    PIDS[$name]=$!
}

# Rotation beside the workers: the DEK every second, the KEK now and then.
(
    i=0
    while [[ $(date +%s) -lt $DEADLINE ]]; do
        i=$((i + 1))
        what=(dek --tenant acme)
        [[ $((i % 10)) -ne 0 ]] || what=(kek)
        rc=0
        "$CLI" rotate "${what[@]}" >>"$WORK/rotate.log" 2>&1 || rc=$?
        echo "rotate ${what[*]}: exit $rc" >>"$WORK/rotate.log"
        sleep 1
    done
) &
ROTATOR=$!

for _ in $(seq "$WORKERS"); do start_worker; done
echo "# soak: $WORKERS processes x $THREADS threads for ${SECONDS_TOTAL}s, kill -9 every ${KILL_EVERY}s ($WORK)"

KILLED=()
EXITED_EARLY=()
while [[ $(date +%s) -lt $DEADLINE ]]; do
    sleep "$KILL_EVERY"
    # Workers that stopped by themselves before the deadline failed (their ERR lines say why).
    for name in "${!PIDS[@]}"; do
        if ! kill -0 "${PIDS[$name]}" 2>/dev/null; then
            rc=0
            wait "${PIDS[$name]}" || rc=$?
            [[ $(date +%s) -ge $DEADLINE && $rc -eq 0 ]] || EXITED_EARLY+=("$name (exit $rc)")
            unset "PIDS[$name]"
            start_worker
        fi
    done
    [[ $(date +%s) -lt $DEADLINE && ${#PIDS[@]} -gt 0 ]] || break
    names=("${!PIDS[@]}")
    victim=${names[RANDOM % ${#names[@]}]}
    kill -9 "${PIDS[$victim]}" 2>/dev/null || true
    wait "${PIDS[$victim]}" 2>/dev/null || true
    unset "PIDS[$victim]"
    KILLED+=("$victim")
    start_worker
done

# Every worker stops by itself at the deadline; one still running a minute later hangs.
HUNG=()
for name in "${!PIDS[@]}"; do
    pid=${PIDS[$name]}
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    if kill -0 "$pid" 2>/dev/null; then
        HUNG+=("$name")
        echo "# $name (pid $pid) is still running 60 s after the deadline; its threads:"
        if command -v gdb >/dev/null; then
            timeout 60 gdb -p "$pid" -batch -ex 'thread apply all bt 16' 2>/dev/null |
                grep -E '^Thread|ecm_hsm::' | sed 's/^/#   /' | head -40 || true
        fi
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        KILLED+=("$name")
    else
        rc=0
        wait "$pid" || rc=$?
        [[ $rc -eq 0 ]] || EXITED_EARLY+=("$name (exit $rc)")
    fi
    unset "PIDS[$name]"
done
wait "$ROTATOR" 2>/dev/null || true
ROTATOR=
echo "# $N workers started, ${#KILLED[@]} killed (-9)"

if [[ ${#EXITED_EARLY[@]} -eq 0 ]]; then
    pass "every worker that was not killed finished without an error"
else
    fail "workers failed: ${EXITED_EARLY[*]}"
    cat "$WORK"/out-*.log | grep -E '^ERR' | sort | uniq -c | sort -rn | head -20 | sed 's/^/#   /'
fi

if [[ ${#HUNG[@]} -eq 0 ]]; then
    pass "no worker hung"
elif reason=$(known hang) && [[ -n $reason ]]; then
    echo "ok - ${#HUNG[@]} workers hung (${HUNG[*]}) # KNOWN $reason"
    PASSED=$((PASSED + 1))
else
    fail "workers hung: ${HUNG[*]}"
fi

rotations=$(grep -c '^rotate .*exit 0$' "$WORK/rotate.log" || true)
rotate_failures=$(grep -c '^rotate .*exit [1-9]' "$WORK/rotate.log" || true)
if [[ $rotate_failures -eq 0 && $rotations -gt 0 ]]; then
    pass "$rotations rotations beside the workers, none failed"
else
    fail "rotation: $rotations done, $rotate_failures failed"
    grep -B3 '^rotate .*exit [1-9]' "$WORK/rotate.log" | head -20 | sed 's/^/#   /'
fi

if out=$("$WORK/worker" check "$MODULE" "$USER_PIN" "$WORK"/ack-*.log 2>&1); then
    pass "store: $(tail -1 <<<"$out" | sed 's/^check: //')"
else
    fail "store: acknowledged keys or handles are wrong"
    head -40 <<<"$out" | sed 's/^/#   /'
fi

if out=$("$CLI" audit verify 2>&1); then
    pass "audit verify: $(grep -m1 '^audit:' <<<"$out" || head -1 <<<"$out")"
    grep -v '^audit:\|^head:' <<<"$out" | sed 's/^/#   /' || true
else
    fail "audit verify"
    head -20 <<<"$out" | sed 's/^/#   /'
fi

# Segments: each file opened by the register, and each opened segment closed (every process
# that wrote to the token has ended by now).
segments=$(python3 - "$ECM_HSM_DIR" <<'PY'
import json, os, sys
d = sys.argv[1]
opened, closed = set(), set()
with open(os.path.join(d, "token-0.audit"), encoding="utf-8") as f:
    for line in f:
        try:
            r = json.loads(line)
        except ValueError:
            continue
        if r.get("operation") == "segment_open":
            opened.add(r["seq"])
        elif r.get("operation") == "segment_close":
            closed.add(r.get("segment"))
files = set()
for name in os.listdir(os.path.join(d, "token-0.audit.d")):
    if name.startswith("segment-") and name.endswith(".jsonl"):
        files.add(int(name[len("segment-"):-len(".jsonl")]))
print(len(files), len(files - opened), len(opened - closed))
PY
)
read -r nfiles orphans unclosed <<<"$segments"
if [[ $orphans -eq 0 ]]; then
    pass "$nfiles audit segments, none orphaned (every file opened by the register)"
else
    fail "$orphans of $nfiles audit segments were never opened by the register"
fi
if [[ $unclosed -eq 0 ]]; then
    pass "every audit segment closed"
elif reason=$(known unclosed-segment) && [[ -n $reason ]]; then
    echo "ok - $unclosed audit segments never closed (${#KILLED[@]} workers killed) # KNOWN $reason"
    PASSED=$((PASSED + 1))
else
    fail "$unclosed audit segments never closed (${#KILLED[@]} workers killed)"
fi

echo "$PASSED passed, $FAILED failed"
[[ $FAILED -eq 0 ]]
