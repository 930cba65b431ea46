#!/usr/bin/env bash
# The main job, end to end: build the module, then use it as an HSM through pkcs11-tool —
# initialize a token, set the user PIN, generate an AES-256 key inside the token, list it,
# draw random bytes and hash data on the token. Every command is printed before it runs.
#
# Settings are the defaults (PBKDF2 at 600,000 iterations per PIN check). The token
# directory is $ECM_HSM_DIR if set, else a new temporary directory; an existing directory is
# never wiped: the demo initializes its free slot.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

if ! command -v pkcs11-tool >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "+ apt-get install opensc (for pkcs11-tool)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq opensc >/dev/null
  else
    echo "pkcs11-tool is missing: install the opensc package" >&2
    exit 1
  fi
fi

echo "+ cargo build --release"
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
module="$root/target/release/libecm_hsm.so"

export ECM_HSM_DIR="${ECM_HSM_DIR:-$(mktemp -d)}"
echo "token directory: $ECM_HSM_DIR"
SO_PIN=${DEMO_SO_PIN:-demo-so-pin}
PIN=${DEMO_PIN:-demo-user-pin}

run() { echo "+ $*"; "$@"; }
p11() { pkcs11-tool --module "$module" "$@"; }

run p11 --list-slots
# The free slot is the one whose token is not yet initialized.
slot=$(p11 --list-slots | awk '/^Slot/ { id = $3; gsub(/[():]/, "", id) } /uninitialized/ { print id; exit }')
echo "free slot: $slot"

run p11 --slot "$slot" --init-token --label ecm-demo --so-pin "$SO_PIN"
run p11 --slot "$slot" --init-pin --login --so-pin "$SO_PIN" --pin "$PIN"
run p11 --slot "$slot" --login --pin "$PIN" --keygen --key-type AES:32 --label demo-key
run p11 --slot "$slot" --login --pin "$PIN" --list-objects
echo "+ pkcs11-tool --generate-random 16 | od -An -tx1"
p11 --slot "$slot" --generate-random 16 | od -An -tx1
msg=$(mktemp)
echo "the quick brown fox" > "$msg"
echo "+ pkcs11-tool --hash --mechanism SHA256 (compared with sha256sum)"
on_token=$(p11 --slot "$slot" --hash --mechanism SHA256 --input-file "$msg" | od -An -tx1 | tr -d ' \n')
echo "token:     $on_token"
echo "sha256sum: $(sha256sum "$msg" | cut -d' ' -f1)"
rm -f "$msg"
echo
echo "Done. The token stays in $ECM_HSM_DIR; point ECM_HSM_DIR there to use it again."
