#!/bin/bash
# The SDK as an application developer gets it: `cmake --install` into a fresh prefix, then
# examples/minimal.c built with pkg-config alone and run against a private daemon; the library
# exports only the semdraw_* API under its SONAME.
# Needs BUILD_DIR, SOURCE_DIR, SEMD_TEST_DATA; SANITIZE=ON when the build is instrumented.
set -euo pipefail
: "${BUILD_DIR:?}" "${SOURCE_DIR:?}" "${SEMD_TEST_DATA:?}"
tmp=$(mktemp -d)
daemon=
cleanup() { [ -n "$daemon" ] && kill -9 "$daemon" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

lines=$(wc -l <"$SOURCE_DIR/examples/minimal.c")
[ "$lines" -le 60 ] || fail "examples/minimal.c has $lines lines (at most 60)"

cmake --install "$BUILD_DIR" --prefix "$tmp/prefix" >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; fail "install"; }
pc=$(find "$tmp/prefix" -name semdraw.pc)
[ -n "$pc" ] || fail "no semdraw.pc installed"
export PKG_CONFIG_PATH=$(dirname "$pc")
lib=$(pkg-config --variable=libdir semdraw)
[ -f "$lib/libsemdraw.so.0" ] || fail "pkg-config's libdir $lib has no libsemdraw.so.0"
objdump -p "$lib/libsemdraw.so.0" | grep -q "SONAME *libsemdraw.so.0" || fail "SONAME is not libsemdraw.so.0"
foreign=$(nm -D --defined-only "$lib/libsemdraw.so.0" | awk '$3 !~ /^semdraw_/ && $3 != "SEMDRAW_0.1" {print $3}')
[ -z "$foreign" ] || fail "libsemdraw exports more than its API: $foreign"

flags=()
[ "${SANITIZE:-OFF}" = ON ] && flags=(-fsanitize=address,undefined)
cc -std=c11 -Wall -Wextra -Werror "${flags[@]}" -o "$tmp/minimal" "$SOURCE_DIR/examples/minimal.c" \
    $(pkg-config --cflags --libs semdraw) -Wl,-rpath,"$lib" || fail "examples/minimal.c does not build with pkg-config"

models="$SEMD_TEST_DATA/models"
"$tmp/prefix/bin/semdrawd" serve --config-file /dev/null --model "$models/tiny-sd15" --taesd "$models/taesd" \
    --runtime-dir "$tmp/run" 2>"$tmp/serve.log" &
daemon=$!
for _ in $(seq 300); do [ -S "$tmp/run/control.sock" ] && break; sleep 0.1; done
mkdir "$tmp/out"
(cd "$tmp/out" && SEMDRAW_RUNTIME_DIR="$tmp/run" "$tmp/minimal" 64) >"$tmp/minimal.log" 2>&1 ||
    { cat "$tmp/minimal.log" "$tmp/serve.log"; fail "minimal exited with an error"; }
[ "$(ls "$tmp/out" | grep -c '^frame_.*\.ppm$')" -eq 10 ] || fail "minimal did not save 10 frames"
head -c 2 "$tmp/out/frame_09.ppm" | grep -q P6 || fail "frame_09.ppm is not a PPM"
size=$(stat -c %s "$tmp/out/frame_09.ppm")
[ "$size" -eq $((13 + 64 * 64 * 3)) ] || fail "frame_09.ppm has $size bytes"
kill -TERM "$daemon"; wait "$daemon"; daemon=
echo "ok: installed SDK, minimal.c built with pkg-config, 10 frames from a private daemon"
