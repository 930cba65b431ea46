#!/usr/bin/env bash
# The envelope scheme end to end with the `ecm-hsm` admin tool: build it, initialize a token,
# create the master key and a KEK, add two tenants, seal a record for each, rotate one
# tenant's DEK and then the KEK, open the old records, re-encrypt them, retire the old
# versions, show status. Every command is printed before it runs.
#
# Settings are the defaults (PBKDF2 at 600,000 iterations per PIN check). The token
# directory is $ECM_HSM_DIR if set, else a new temporary directory; an existing directory is
# never wiped: the demo initializes its free slot and names that slot in every command.
# PINs come from the environment (ECM_HSM_SO_PIN, ECM_HSM_NEW_PIN, ECM_HSM_PIN), never argv.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

# $ECM_HSM_BIN names an admin tool already built or installed (pkcs11-tests/package.sh:
# /usr/bin/ecm-hsm; service.sh: its debug build); else the release build is made here.
if [[ -n ${ECM_HSM_BIN:-} ]]; then
  bin=$ECM_HSM_BIN
else
  echo "+ cargo build --release --bin ecm-hsm"
  cargo build --release --quiet --bin ecm-hsm --manifest-path "$root/Cargo.toml"
  bin="$root/target/release/ecm-hsm"
fi

export ECM_HSM_DIR="${ECM_HSM_DIR:-$(mktemp -d)}"
export ECM_HSM_SO_PIN=${DEMO_SO_PIN:-demo-so-pin}
export ECM_HSM_NEW_PIN=${DEMO_PIN:-demo-user-pin}
export ECM_HSM_PIN=$ECM_HSM_NEW_PIN
echo "token directory: $ECM_HSM_DIR"
records=$(mktemp -d)
trap 'rm -rf "$records"' EXIT
cd "$records"

run() {
  echo "+ ecm-hsm$(printf ' %q' "$@")"
  "$bin" "$@"
}

label="demo-$(date +%Y%m%d-%H%M%S)"
init=$(run init --label "$label")
echo "$init"
slot=$(sed -n 's/.* in slot \([0-9]*\) .*/\1/p' <<<"$init")
s=(--slot "$slot")

echo
echo "## The hierarchy: a master key, a KEK, a DEK per tenant"
run "${s[@]}" hierarchy init
run "${s[@]}" tenant add acme globex

echo
echo "## Seal a record for each tenant"
printf 'acme: invoice 1001, EUR 4,200\n' >acme.txt
printf 'globex: payroll run 7\n' >globex.txt
run "${s[@]}" envelope encrypt --tenant acme --aad "invoice 1001" -i acme.txt -o acme.env
run "${s[@]}" envelope encrypt --tenant globex --aad "payroll 7" -i globex.txt -o globex.env
run envelope inspect -i acme.env

echo
echo "## Rotate acme's DEK, then the KEK (every DEK is rewrapped inside the token)"
run "${s[@]}" rotate dek --tenant acme
run "${s[@]}" rotate kek
run "${s[@]}" status

echo
echo "## The old records still open"
run "${s[@]}" envelope decrypt -i acme.env
run "${s[@]}" envelope decrypt -i globex.env

echo
echo "## Re-encrypt them under the current DEKs"
run "${s[@]}" envelope reencrypt --in-place acme.env globex.env
run envelope inspect -i acme.env
run "${s[@]}" envelope decrypt --tenant acme --aad "invoice 1001" -i acme.env

echo
echo "## Retire the old versions (the current ones are refused)"
run "${s[@]}" retire --label dek-acme-v1
run "${s[@]}" retire --label kek-v1
if run "${s[@]}" retire --label dek-acme-v2; then
  echo "unexpected: the current DEK was retired" >&2
  exit 1
fi
echo "(refused, as it should be)"

echo
echo "## Status"
run "${s[@]}" status

echo
echo "## The audit record of all of the above: chained, and checked with the token's key"
run "${s[@]}" audit verify
run "${s[@]}" audit export --format csv --operation rotate
echo
echo "Done. The token '$label' stays in slot $slot of $ECM_HSM_DIR; point ECM_HSM_DIR there to use it again."
