#!/usr/bin/env bash
# The Debian package end to end: build it, install it with apt, check it with lintian, use the
# installed files only (pkcs11-tool and p11tool through p11-kit's registration, man pages,
# completions, the hierarchy demo with /usr/bin/ecm-hsm, the service's user, directory and
# settings), reinstall it, then remove and purge it and check what is left.
#
#   pkcs11-tests/package.sh               # needs root and apt (Debian 12); installs what it lacks
#   pkcs11-tests/package.sh --build-only  # only build: target/debian/ecm-hsm_<version>_<arch>.deb
#
# It leaves the machine as it found it: the package is purged at the end even on failure, and
# the ecm-hsm user, group and /var/lib/ecm-hsm are deleted if they did not exist before (the
# packages it installs as tools, debhelper, lintian, opensc, gnutls-bin, stay, as .ci/run's
# do). It refuses to run when ecm-hsm is already installed, rather than replace it.
# Each step prints `ok - <step>` or `not ok - <step>`; the last line is `N passed, M failed`.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=pkcs11-tests/lib.sh
. "$HERE/lib.sh"
cd "$ROOT"

log() { printf '\n==> %s\n' "$*"; }
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
ARCH=$(dpkg --print-architecture)
OUTDIR=$ROOT/target/debian
DEB=$OUTDIR/ecm-hsm_${VERSION}_${ARCH}.deb
DBGSYM=$OUTDIR/ecm-hsm-dbgsym_${VERSION}_${ARCH}.deb

if [[ $(id -u) -ne 0 ]]; then
    echo "package.sh runs as root: it installs packages, and installs and purges ecm-hsm" >&2
    exit 1
fi

# --- what the build and the checks need --------------------------------------------------
need=(debhelper lintian)
[[ ${1:-} == --build-only ]] || need+=(opensc gnutls-bin p11-kit man-db bash-completion binutils)
missing=()
for pkg in "${need[@]}"; do have_pkg "$pkg" || missing+=("$pkg"); done
if [[ ${#missing[@]} -gt 0 ]]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# --- build ---------------------------------------------------------------------------------
# dpkg-buildpackage writes its results beside the source tree; they are moved into target/.
log "dpkg-buildpackage -b -us -uc (ecm-hsm $VERSION, $ARCH)"
parent=$(dirname "$ROOT")
results=("$parent"/ecm-hsm_"$VERSION"_"$ARCH".{deb,buildinfo,changes} "$parent"/ecm-hsm-dbgsym_"$VERSION"_"$ARCH".deb)
rm -f "${results[@]}"
dpkg-buildpackage -b -us -uc
mkdir -p "$OUTDIR"
mv -f "${results[@]}" "$OUTDIR/"
debian/rules clean >/dev/null
ls -l "$OUTDIR"
[[ ${1:-} == --build-only ]] && exit 0

# --- install, and undo everything at the end -----------------------------------------------
if dpkg-query -W ecm-hsm >/dev/null 2>&1 && ! dpkg-query -W -f='${Status}' ecm-hsm | grep -q not-installed; then
    echo "ecm-hsm is already installed on this machine; remove it first (this test purges it)" >&2
    exit 1
fi
if [[ -e /var/lib/ecm-hsm ]]; then
    echo "/var/lib/ecm-hsm exists (token data of an earlier install?); this test would delete it" >&2
    exit 1
fi
had_user=$(getent passwd ecm-hsm >/dev/null && echo yes || echo no)
had_group=$(getent group ecm-hsm >/dev/null && echo yes || echo no)
had_key=$([[ -e /etc/ecm-hsm/token-key ]] && echo yes || echo no)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ecm-hsm-package.XXXXXX")
chmod 0755 "$WORK" # the ecm-hsm user reads the demo's PIN file from here
cleanup() {
    if have_pkg ecm-hsm || dpkg-query -W -f='${Status}' ecm-hsm 2>/dev/null | grep -q config-files; then
        DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq ecm-hsm >/dev/null 2>&1 || true
    fi
    rm -rf /var/lib/ecm-hsm
    # The service key postinst made (purge keeps it while token data is kept).
    if [[ $had_key == no ]]; then
        rm -f /etc/ecm-hsm/token-key
        rmdir /etc/ecm-hsm 2>/dev/null || true
    fi
    [[ $had_user == yes ]] || deluser --system --quiet ecm-hsm >/dev/null 2>&1 || true
    [[ $had_group == yes ]] || delgroup --system --quiet ecm-hsm >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

steps_begin
TRIPLET=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
MODULE=/usr/lib/$TRIPLET/pkcs11/libecm_hsm.so
SO_PIN=package-so-pin
USER_PIN=package-user-pin
# A home and token directory of the test's own: nothing of the root user's is touched.
export HOME=$WORK/home
mkdir -p "$HOME"
unset ECM_HSM_DIR ECM_HSM_CONF XDG_DATA_HOME

# lintian: no errors, and no warning that is not explained here. Warnings accepted, each with
# its reason (none today; add `tag  # why` lines as lintian learns new ones):
ACCEPTED_WARNINGS=()
# Lintian 2.116 (Debian 12) prints no warning for these packages. Its info-level notes (-I),
# all expected:
# - hardening-no-fortify-functions: Rust code does not call glibc's _FORTIFY_SOURCE
#   wrappers; its own bounds checks do that job (the C parts, aws-lc and SQLite, are built by
#   their crates' build scripts);
# - package-supports-alternative-init-but-no-init.d-script: the key service is for systemd
#   only (socket activation, the hardening options);
# - spelling-error-in-binary (ment, userA): words inside dependencies' strings, not ours.
t_lintian() {
    local suppress=()
    if [[ ${#ACCEPTED_WARNINGS[@]} -gt 0 ]]; then
        suppress=(--suppress-tags "$(IFS=,; echo "${ACCEPTED_WARNINGS[*]}")")
    fi
    x lintian -I --fail-on error "${suppress[@]}" --tag-display-limit 0 "$DEB" "$DBGSYM"
    rc_is 0 || return 1
    lacks_re '^[EW]: '
}

t_apt_install() {
    x env DEBIAN_FRONTEND=noninteractive apt-get install -y "$DEB"
    rc_is 0 || return 1
    x dpkg-query -W -f='${Version} ${Status}' ecm-hsm
    has "$VERSION install ok installed"
}

t_module_stripped_with_separate_debug_info() {
    x readelf -S --wide "$MODULE"
    rc_is 0 && lacks ' .symtab ' && lacks ' .debug_line ' || return 1
    local id
    id=$(readelf -n "$MODULE" | sed -n 's/.*Build ID: \([0-9a-f]*\).*/\1/p')
    echo "build id: $id"
    [[ -n $id ]] || return 1
    x dpkg-deb -c "$DBGSYM"
    has "./usr/lib/debug/.build-id/${id:0:2}/${id:2}.debug"
}

t_files_in_place() {
    local f
    for f in "$MODULE" /usr/bin/ecm-hsm /usr/include/ecm_hsm.h \
        /usr/share/p11-kit/modules/ecm-hsm.module /etc/ecm-hsm/ecm-hsm.toml \
        /etc/ecm-hsm/client.toml /lib/systemd/system/ecm-hsm.socket \
        /lib/systemd/system/ecm-hsm.service /lib/systemd/system/ecm-hsm-rotate.service \
        /lib/systemd/system/ecm-hsm-rotate.timer /usr/share/man/man1/ecm-hsm.1.gz \
        /usr/share/man/man1/ecm-hsm-rotate.1.gz /usr/share/man/man1/ecm-hsm-hierarchy-init.1.gz \
        /usr/share/bash-completion/completions/ecm-hsm /usr/share/zsh/vendor-completions/_ecm-hsm \
        /usr/share/fish/vendor_completions.d/ecm-hsm.fish; do
        [[ -f $f ]] || { echo "FAIL: missing $f"; return 1; }
        echo "present: $f"
    done
}

t_version_and_commit() {
    x /usr/bin/ecm-hsm --version
    rc_is 0 && has "ecm-hsm $VERSION (commit" || return 1
    x pkcs11-tool --module "$MODULE" --show-info
    rc_is 0 && has "ecm-hsm $VERSION" && has "(ver ${VERSION%.*})" || return 1
    if git -C "$ROOT" rev-parse HEAD >/dev/null 2>&1; then
        local commit
        commit=$(git -C "$ROOT" rev-parse HEAD)
        x /usr/bin/ecm-hsm --version
        has "$commit" || return 1
        x pkcs11-tool --module "$MODULE" --show-info
        has "${commit:0:12}"
    fi
}

t_service_user_and_directory() {
    x getent passwd ecm-hsm
    rc_is 0 && has ":/var/lib/ecm-hsm:/usr/sbin/nologin" || return 1
    x stat -c '%a %U %G' /var/lib/ecm-hsm
    has "700 ecm-hsm ecm-hsm"
}

t_units_installed_not_enabled() {
    x find /etc/systemd/system -name 'ecm-hsm*'
    rc_is 0 && [[ -z $OUT ]] || { echo "FAIL: a unit is enabled"; return 1; }
    if ! have systemd-analyze; then
        skip "systemd-analyze is not installed: units not verified"
        return 0
    fi
    x systemd-analyze verify /lib/systemd/system/ecm-hsm.socket /lib/systemd/system/ecm-hsm.service \
        /lib/systemd/system/ecm-hsm-rotate.service /lib/systemd/system/ecm-hsm-rotate.timer
    rc_is 0
}

t_p11kit_registration() {
    x p11-kit list-modules
    rc_is 0 && has "libecm_hsm.so" || return 1
    # Loading the module through p11-kit creates nothing in the user's home.
    [[ ! -e $HOME/.local/share/ecm-hsm ]] || { echo "FAIL: loading made $HOME/.local/share/ecm-hsm"; return 1; }
}

t_pkcs11_tool() {
    export ECM_HSM_DIR=$WORK/tokens
    x pkcs11-tool --module "$MODULE" --init-token --slot 0 --label pkgtest --so-pin "$SO_PIN"
    rc_is 0 || return 1
    x pkcs11-tool --module "$MODULE" --slot 0 --init-pin --login --so-pin "$SO_PIN" --pin "$USER_PIN"
    rc_is 0 || return 1
    x pkcs11-tool --module "$MODULE" --slot 0 --login --pin "$USER_PIN" --keygen --key-type AES:32 --label pkg-aes
    rc_is 0 || return 1
    x pkcs11-tool --module "$MODULE" --slot 0 --login --pin "$USER_PIN" --list-objects --type secrkey
    rc_is 0 && has "pkg-aes"
}

t_p11tool_via_p11kit() {
    export ECM_HSM_DIR=$WORK/tokens
    # No --provider: p11tool finds the module through /usr/share/p11-kit/modules.
    x p11tool --list-tokens
    rc_is 0 && has "Label: pkgtest" && has "Manufacturer: ecm-hsm project" || return 1
    x env GNUTLS_PIN="$USER_PIN" p11tool --login --list-all "pkcs11:token=pkgtest"
    rc_is 0 && has "pkg-aes"
}

t_man_pages() {
    x env MANPAGER=cat MANWIDTH=80 man ecm-hsm
    rc_is 0 && has "ecm-hsm - Administer ecm-hsm tokens" && has "--pin-file" || return 1
    x env MANPAGER=cat MANWIDTH=80 man ecm-hsm-rotate
    rc_is 0 && has "--due"
}

t_bash_completion() {
    x bash -c '. /usr/share/bash-completion/completions/ecm-hsm && complete -p ecm-hsm'
    rc_is 0 && has "ecm-hsm"
}

t_hierarchy_demo_installed() {
    # The installed tool and the shipped settings file, never target/.
    x env ECM_HSM_BIN=/usr/bin/ecm-hsm ECM_HSM_DIR="$WORK/demo" ECM_HSM_CONF=/etc/ecm-hsm/ecm-hsm.toml \
        PATH=/usr/bin:/bin "$HERE/hierarchy-demo.sh"
    rc_is 0 && has "+ ecm-hsm" && has "Done." && lacks "target/"
}

t_service_user_runs_tool() {
    # As the service will: the ecm-hsm user, its directory, the shipped settings, and the
    # unit's UMask=0077 (the store does not yet make its files 0600 under umask 022 itself).
    printf '%s\n' "$USER_PIN" >"$WORK/pin"
    chmod 0644 "$WORK/pin"
    local as_service=(runuser -u ecm-hsm -- sh -c 'umask 0077 && exec "$@"' sh
        env ECM_HSM_DIR=/var/lib/ecm-hsm ECM_HSM_CONF=/etc/ecm-hsm/ecm-hsm.toml)
    x "${as_service[@]}" ECM_HSM_SO_PIN="$SO_PIN" ECM_HSM_NEW_PIN="$USER_PIN" /usr/bin/ecm-hsm init --label service
    rc_is 0 || return 1
    x "${as_service[@]}" /usr/bin/ecm-hsm --pin-file "$WORK/pin" hierarchy init
    rc_is 0 || return 1
    x "${as_service[@]}" /usr/bin/ecm-hsm --pin-file "$WORK/pin" rotate --due --dry-run
    rc_is 0 || return 1
    x stat -c '%a %U %n' /var/lib/ecm-hsm/token-0.sqlite
    has "600 ecm-hsm /var/lib/ecm-hsm/token-0.sqlite"
}

t_reinstall_is_idempotent() {
    x env DEBIAN_FRONTEND=noninteractive apt-get install -y --reinstall "$DEB"
    rc_is 0 || return 1
    x stat -c '%a %U %G' /var/lib/ecm-hsm
    has "700 ecm-hsm ecm-hsm" || return 1
    x ls /var/lib/ecm-hsm
    has "token-0.sqlite"
}

t_remove_keeps_data_and_settings() {
    x env DEBIAN_FRONTEND=noninteractive apt-get remove -y ecm-hsm
    rc_is 0 || return 1
    local f
    for f in /usr/bin/ecm-hsm "$MODULE" /usr/share/p11-kit/modules/ecm-hsm.module; do
        [[ ! -e $f ]] || { echo "FAIL: $f left after remove"; return 1; }
    done
    [[ -f /etc/ecm-hsm/ecm-hsm.toml && -f /var/lib/ecm-hsm/token-0.sqlite ]] ||
        { echo "FAIL: remove deleted settings or token data"; return 1; }
    x getent passwd ecm-hsm
    rc_is 0
}

t_purge_keeps_token_data_and_says_so() {
    x env DEBIAN_FRONTEND=noninteractive apt-get purge -y ecm-hsm
    rc_is 0 && has "token data kept in /var/lib/ecm-hsm" && has "/etc/ecm-hsm/token-key" || return 1
    # The service key stays with the tokens it opens, and nothing else of /etc/ecm-hsm.
    [[ "$(ls -A /etc/ecm-hsm 2>/dev/null)" == token-key ]] ||
        { echo "FAIL: /etc/ecm-hsm after purge is not the service key alone"; ls -la /etc/ecm-hsm; return 1; }
    [[ -f /var/lib/ecm-hsm/token-0.sqlite ]] || { echo "FAIL: purge deleted token data"; return 1; }
    leftovers
}

# Nothing the package shipped may remain after purge (directories other packages share aside).
leftovers() {
    local path left=0
    while read -r path; do
        path=${path#.}
        [[ -n $path && ! -d $path && -e $path ]] && { echo "FAIL: left behind: $path"; left=1; }
    done < <(dpkg-deb --fsys-tarfile "$DEB" | tar -t)
    x dpkg-query -W -f='${Status}' ecm-hsm
    lacks "installed" && lacks "config-files" && [[ $left -eq 0 ]]
}

t_purge_of_empty_state_removes_it() {
    rm -rf /var/lib/ecm-hsm/* # the tokens this test made (it refuses to start with any)
    # The service key the previous purge kept with them goes with them; the next install
    # makes a new one.
    rm -f /etc/ecm-hsm/token-key
    x env DEBIAN_FRONTEND=noninteractive apt-get install -y "$DEB"
    rc_is 0 || return 1
    x env DEBIAN_FRONTEND=noninteractive apt-get purge -y ecm-hsm
    rc_is 0 && lacks "token data kept" || return 1
    [[ ! -e /var/lib/ecm-hsm && ! -e /etc/ecm-hsm ]] || { echo "FAIL: empty state left"; return 1; }
    leftovers
}

step "lintian: no errors, only the explained warnings" t_lintian
step "apt install ./ecm-hsm_${VERSION}_${ARCH}.deb" t_apt_install
if have_pkg ecm-hsm; then
    step "module stripped, debug info in ecm-hsm-dbgsym" t_module_stripped_with_separate_debug_info
    step "files in place (module, tool, header, p11-kit, settings, units, man, completions)" t_files_in_place
    step "ecm-hsm --version and C_GetInfo name $VERSION and the commit" t_version_and_commit
    step "service user, group and /var/lib/ecm-hsm 0700" t_service_user_and_directory
    step "systemd units installed, not enabled, verified" t_units_installed_not_enabled
    step "p11-kit registration" t_p11kit_registration
    step "pkcs11-tool on the installed module" t_pkcs11_tool
    step "p11tool through p11-kit's registration" t_p11tool_via_p11kit
    step "man ecm-hsm, man ecm-hsm-rotate" t_man_pages
    step "bash completion" t_bash_completion
    step "hierarchy demo with /usr/bin/ecm-hsm and /etc/ecm-hsm/ecm-hsm.toml" t_hierarchy_demo_installed
    step "the service user runs the tool on /var/lib/ecm-hsm" t_service_user_runs_tool
    step "reinstall keeps user, directory and tokens" t_reinstall_is_idempotent
    step "remove keeps settings, tokens and user" t_remove_keeps_data_and_settings
    step "purge keeps token data, says so, leaves nothing else" t_purge_keeps_token_data_and_says_so
    step "purge with no token data removes /var/lib/ecm-hsm" t_purge_of_empty_state_removes_it
fi

steps_summary
