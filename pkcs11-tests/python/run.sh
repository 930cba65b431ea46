#!/usr/bin/env bash
# python-pkcs11 interoperability suite: installs the pinned client packages
# (requirements.txt; python-pkcs11 comes as a manylinux wheel, no compiler needed) and runs
# pytest against the module.
#
#   pkcs11-tests/python/run.sh [PYTEST ARGS...]
#
# The module is $ECM_HSM_MODULE, else target/debug/libecm_hsm.so of this repository, built
# first with `cargo build --lib`. Token initialization needs pkcs11-tool (Debian: opensc).
# The exit status is pytest's.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PYTHON=${PYTHON:-python3}

# A Debian system Python refuses pip installs (PEP 668) without this; it is ignored elsewhere.
export PIP_BREAK_SYSTEM_PACKAGES=1
"$PYTHON" -m pip install -q --disable-pip-version-check --root-user-action=ignore \
    -r "$HERE/requirements.txt"

if [[ -z ${ECM_HSM_MODULE:-} ]]; then
    cargo build --quiet --manifest-path "$ROOT/Cargo.toml" --lib
fi

# Leave no .pytest_cache or __pycache__ in the work tree.
export PYTHONDONTWRITEBYTECODE=1
cd "$ROOT"
status=0
"$PYTHON" -m pytest -q -p no:cacheprovider "$HERE" "$@" || status=$?
exit "$status"
