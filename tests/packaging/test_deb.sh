#!/bin/bash
# The Debian package from this build holds what a workstation install needs:
# the daemon, the CLI, the SDK (library, header, pkg-config), the units and the
# CLIP assets, and a postinst that creates the semdraw user.
set -euo pipefail
if ! command -v cpack >/dev/null || ! command -v dpkg-deb >/dev/null; then
    echo "SKIP: cpack or dpkg-deb missing"
    exit 77
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cd "$BUILD_DIR"
cpack -G DEB -B "$out" >"$out/log" 2>&1 || { cat "$out/log"; exit 1; }
deb=$(ls "$out"/semdraw_*.deb)
files=$(dpkg-deb -c "$deb" | awk '{print $6}')
fail=0
for want in bin/semdrawd bin/semdraw lib/libsemdraw.so.0 include/semdraw/semdraw.h \
            lib/pkgconfig/semdraw.pc lib/systemd/system/semdrawd.service \
            lib/systemd/user/semdrawd.service lib/sysusers.d/semdraw.conf \
            lib/tmpfiles.d/semdraw.conf share/semdraw/clip/bpe_simple_vocab_16e6.txt.gz; do
    grep -q "/$want\$" <<<"$files" || { echo "FAIL: the package lacks $want"; fail=1; }
done
dpkg-deb -I "$deb" postinst | grep -q systemd-sysusers || { echo "FAIL: no postinst creating the user"; fail=1; }
dpkg-deb -f "$deb" Depends | grep -q libzmq5 || { echo "FAIL: Depends lacks libzmq5"; fail=1; }
exit $fail
