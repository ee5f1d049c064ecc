#!/usr/bin/env bash
# The systemd units, checked by systemd-analyze verify when it is installed (skipped otherwise),
# with ExecStart pointing at the semdrawd under test. Needs SEMDRAWD and UNITS (the source folder).
set -u
: "${SEMDRAWD:?}" "${UNITS:?}"
if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "systemd-analyze not installed: skipped"
    echo "0 passed, 0 failed, 2 skipped"
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bindir=$(dirname "$SEMDRAWD")
passed=0 failed=0
verify() { # verify NAME [--user] UNIT
    local name=$1; shift
    if "$@" >"$tmp/out" 2>&1 && ! grep -q . "$tmp/out"; then
        passed=$((passed + 1)); echo "ok     $name"
    else
        failed=$((failed + 1)); echo "FAILED $name"; cat "$tmp/out"
    fi
}
sed "s|@SEMD_BINDIR@|$bindir|" "$UNITS/semdrawd.service.in" >"$tmp/semdrawd.service"
mkdir -p "$tmp/user" "$tmp/xdg" && chmod 700 "$tmp/xdg"
sed "s|@SEMD_BINDIR@|$bindir|" "$UNITS/user/semdrawd.service.in" >"$tmp/user/semdrawd.service"
verify "system unit" systemd-analyze verify "$tmp/semdrawd.service"
verify "user unit" env XDG_RUNTIME_DIR="$tmp/xdg" systemd-analyze --user verify "$tmp/user/semdrawd.service"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
