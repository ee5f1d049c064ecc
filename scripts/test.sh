#!/usr/bin/env bash
# Build and run the whole test suite twice: an optimised build, then one under
# AddressSanitizer + UBSan; then every libFuzzer target for FUZZ_SECONDS (default 60) each.
# Installs the build dependencies first.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
jobs=$(nproc)

"$root/scripts/build.sh" build
(cd "$root/build" && ctest --output-on-failure -j "$jobs")

"$root/scripts/build.sh" build-asan -DSEMDRAW_SANITIZE=ON
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd "$root/build-asan" && ctest --output-on-failure -j "$jobs")

"$root/scripts/fuzz.sh" "${FUZZ_SECONDS:-60}"
