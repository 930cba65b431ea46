#!/usr/bin/env bash
# p11bench's p11-kit column (issue 14 item 10): builds p11-kit 0.25.5, Debian 13's, from
# Debian's source into target/p11-kit-0.25.5 (once), for ecm-hsm behind `p11-kit server`
# (the remoting a user would otherwise pick). Debian 12's p11-kit 0.24 refuses CKM_AES_GCM
# at the client, so the host's copy will not do.
#
#   benches/p11kit-setup.sh        prints the prefix on its last line, or exits non-zero with
#                                  the reason on stderr (the benchmark then skips the column)
#
# Needs apt-get (it reads Debian's trixie source index into a private list under target/;
# the system's sources are not changed), meson and ninja. The tarball is checked against the
# upstream release's SHA-256 (Debian's orig tarball is that release).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VERSION=0.25.5
SHA256=04d0a86450cdb1be018f26af6699857171a188ac6d5b8c90786a60854e1198e5
PREFIX=$ROOT/target/p11-kit-$VERSION
WORK=$ROOT/target/p11-kit-build

client_module() {
    find "$PREFIX" -name p11-kit-client.so -print -quit 2>/dev/null
}

if [[ -n $(client_module) && -x $PREFIX/libexec/p11-kit/p11-kit-server ]]; then
    echo "$PREFIX"
    exit 0
fi
for tool in apt-get meson ninja; do
    command -v "$tool" >/dev/null || { echo "p11kit-setup: $tool not found" >&2; exit 1; }
done

mkdir -p "$WORK/lists/partial" "$WORK/src"
echo "deb-src http://deb.debian.org/debian trixie main" >"$WORK/sources.list"
APT=(-q -o Dir::Etc::sourcelist="$WORK/sources.list" -o Dir::Etc::sourceparts=/dev/null
    -o Dir::State::Lists="$WORK/lists" -o APT::Get::List-Cleanup=0)
TARBALL=$WORK/src/p11-kit_$VERSION.orig.tar.xz
if [[ ! -f $TARBALL ]]; then
    if ! apt-get "${APT[@]}" update >"$WORK/apt.log" 2>&1; then
        echo "p11kit-setup: apt-get update (trixie deb-src) failed: $(tail -1 "$WORK/apt.log")" >&2
        exit 1
    fi
    # The orig tarball is what is built; a mirror without the .dsc fails the command after
    # fetching it, so its status is not the test.
    (cd "$WORK/src" && apt-get "${APT[@]}" source --download-only "p11-kit" \
        >>"$WORK/apt.log" 2>&1) || true
fi
if [[ ! -f $TARBALL ]]; then
    echo "p11kit-setup: apt-get source did not bring $(basename "$TARBALL"): $(grep -E '^(E|W):' "$WORK/apt.log" | head -1)" >&2
    exit 1
fi
if [[ $(sha256sum "$TARBALL" | cut -d' ' -f1) != "$SHA256" ]]; then
    echo "p11kit-setup: $(basename "$TARBALL") does not have the release's SHA-256" >&2
    exit 1
fi
rm -rf "$WORK/p11-kit-$VERSION" "$WORK/build"
tar -xJf "$TARBALL" -C "$WORK"
meson setup "$WORK/build" "$WORK/p11-kit-$VERSION" --prefix="$PREFIX" --buildtype=release \
    -Dtrust_module=disabled -Dsystemd=disabled -Dbash_completion=disabled -Dgtk_doc=false \
    -Dman=false -Dnls=false -Dtest=false >"$WORK/build.log" 2>&1 \
    || { echo "p11kit-setup: meson setup failed: $(tail -1 "$WORK/build.log")" >&2; exit 1; }
ninja -C "$WORK/build" install >>"$WORK/build.log" 2>&1 \
    || { echo "p11kit-setup: build failed: $(tail -1 "$WORK/build.log")" >&2; exit 1; }
rm -rf "$WORK/p11-kit-$VERSION" "$WORK/build"
[[ -n $(client_module) ]] || { echo "p11kit-setup: no p11-kit-client.so in $PREFIX" >&2; exit 1; }
echo "$PREFIX"
