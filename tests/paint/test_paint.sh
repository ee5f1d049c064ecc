#!/usr/bin/env bash
# semdraw-paint end to end: a private semdrawd (CPU backend, the tiny test model) and two
# semdraw-paint windows on one Xvfb display sharing it. The first window is driven by a script
# (strokes on two layers while the stream runs, prompt edits, a seed change), receives frames and
# saves the image, the scene and a screenshot; the second paints on its own canvas meanwhile.
# Then the saved scene must render with `semdrawd render --scene` and load back into
# semdraw-paint, and a third window must live through a restart of the daemon.
# Needs SEMDRAWD, SEMDRAW_PAINT (empty when SDL2 was not found) and SEMD_TEST_DATA.
# Skips (77) when semdraw-paint was not built or xvfb-run is missing.
set -u
: "${SEMDRAWD:?}" "${SEMD_TEST_DATA:?}"
paint=${SEMDRAW_PAINT:-}
if [ -z "$paint" ] || [ ! -x "$paint" ]; then
    echo "SKIP: semdraw-paint was not built (SDL2 and SDL2_ttf: scripts/install-deps.sh)"
    exit 77
fi
if ! command -v xvfb-run >/dev/null; then
    echo "SKIP: xvfb-run is missing (scripts/install-deps.sh installs xvfb and xauth)"
    exit 77
fi
here=$(cd "$(dirname "$0")" && pwd)
models="$SEMD_TEST_DATA/models"
tmp=$(mktemp -d)
daemon=""
cleanup() {
    [ -n "$daemon" ] && kill -TERM "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
passed=0 failed=0
start=$(date +%s)

ok() { passed=$((passed + 1)); echo "ok     $1"; }
bad() { failed=$((failed + 1)); echo "FAILED $1"; }
check() { # check NAME COMMAND...
    local name=$1; shift
    if "$@" >"$tmp/check.out" 2>&1; then ok "$name"; else bad "$name"; cat "$tmp/check.out"; fi
}

# SDL's software renderer drawing straight into the X11 window: no OpenGL (Mesa's llvmpipe would
# be loaded and unloaded again, and its leaks could not even be attributed), the same pixels
# everywhere. Leaks of the libraries SDL itself keeps are suppressed (lsan.supp, library frames).
export SEMDRAW_PAINT_DEBUG=1 SDL_RENDER_DRIVER=software SDL_FRAMEBUFFER_ACCELERATION=0 SDL_AUDIODRIVER=dummy
export LSAN_OPTIONS="suppressions=$here/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"

run="$tmp/run"
start_daemon() {
    "$SEMDRAWD" serve --config-file /dev/null --model "$models/tiny-sd15" --taesd "$models/taesd" \
        --backend cpu --runtime-dir "$run" 2>>"$tmp/serve.log" &
    daemon=$!
    for _ in $(seq 600); do [ -S "$run/control.sock" ] && break; sleep 0.1; done
    if [ ! -S "$run/control.sock" ]; then
        echo "FAILED the daemon did not start"; cat "$tmp/serve.log"; exit 1
    fi
}
start_daemon

mkdir -p "$tmp/scene" "$tmp/again"
cat >"$tmp/main.txt" <<EOF
# the stream runs while the strokes are drawn; layer 0 (a new document has one): two strokes, a prompt
play
wait-frames 1 120
stroke 0 8 8 11 8 14 9 17 9 20 10 23 11 26 12 29 13 32 14 35 14 38 13 41 13 44 12 47 12 50 11 53 11 56 10 4
stroke 0 10 24 30 26 50 24 3
prompt 0 a red apple
background a wooden table
add-layer
stroke 1 12 44 16 47 20 50 24 52 28 53 32 54 36 55 40 56 44 54 48 52 52 50 5
prompt 1 a blue vase
negative 1 blurry
mask-blur 1 4
wait-frames 3 120
wait-clients 2 120
seed 42
wait-frames 3 120
pause
wait-ms 1000
save-image $tmp/image.png
save-scene $tmp/scene/saved.json
screenshot $tmp/screenshot.png
quit
EOF
cat >"$tmp/second.txt" <<EOF
stroke 0 32 32 40 40 6
prompt 0 a green tree
play
wait-clients 2 120
wait-frames 3 120
wait-ms 1500
screenshot $tmp/second.png
quit
EOF

# Both windows on one display, both clients of the one daemon.
xvfb-run -a -s "-screen 0 1600x1000x24" bash -c '
    "$1" --runtime-dir "$2" --width 64 --height 64 --seed 7 --script "$3/main.txt" >"$3/main.out" 2>"$3/main.err" &
    p1=$!
    "$1" --runtime-dir "$2" --width 64 --height 64 --window 960x600 --script "$3/second.txt" \
        >"$3/second.out" 2>"$3/second.err"
    echo $? >"$3/second.rc"
    wait $p1
    echo $? >"$3/main.rc"
' paint "$paint" "$run" "$tmp" >"$tmp/xvfb.log" 2>&1
for w in main second; do
    rc=$(cat "$tmp/$w.rc" 2>/dev/null || echo none)
    if [ "$rc" = 0 ]; then ok "the $w window's script ran (exit 0)"; else
        bad "the $w window's script ran (exit $rc)"; cat "$tmp/xvfb.log" "$tmp/$w.out" "$tmp/$w.err"
    fi
done
summary=$(grep '^semdraw-paint: frames=' "$tmp/main.out")
echo "main:   $summary"
echo "second: $(grep '^semdraw-paint: frames=' "$tmp/second.out")"
value() { # value FILE KEY: KEY=N from a summary line
    grep -o " $2=[0-9]*" "$1" | head -1 | cut -d= -f2
}
check "the main window received frames" test "$(value "$tmp/main.out" frames)" -gt 0
check "the second window received frames" test "$(value "$tmp/second.out" frames)" -gt 0
# Edits go out while a stroke is drawn (rate-limited), not only when it ends.
check "edits were streamed while drawing" test "$(value "$tmp/main.out" stroke_commits)" -ge 2
check "the two windows shared the daemon" test "$(value "$tmp/main.out" clients)" -ge 2
# The window never waits for the daemon: no main-loop iteration (input, frames, edits, drawing)
# took long. The bound is loose for slow sanitizer builds on busy machines.
grep -h "slow iteration" "$tmp/main.err" "$tmp/second.err" | head -5
check "the window stayed responsive" test "$(value "$tmp/main.out" max_busy_ms)" -lt 2000

# PNGs, scene and screenshot, checked with Python's standard library only.
cat >"$tmp/check.py" <<'EOF'
import json, os, re, struct, sys, zlib

def read_png(path):
    d = open(path, 'rb').read()
    assert d[:8] == b'\x89PNG\r\n\x1a\n', path + ': not a PNG'
    pos, idat = 8, b''
    while pos < len(d):
        n, t = struct.unpack('>I4s', d[pos:pos + 8])
        body = d[pos + 8:pos + 8 + n]
        pos += 12 + n
        if t == b'IHDR':
            w, h, depth, ctype, _, _, interlace = struct.unpack('>IIBBBBB', body)
            assert depth == 8 and interlace == 0, path + ': not 8-bit non-interlaced'
        elif t == b'IDAT':
            idat += body
    ch = {0: 1, 2: 3, 4: 2, 6: 4}[ctype]
    raw, stride = zlib.decompress(idat), w * ch
    rows, prev, p = [], bytearray(stride), 0
    for _ in range(h):
        f, line = raw[p], bytearray(raw[p + 1:p + 1 + stride])
        p += 1 + stride
        for i in range(stride):
            a = line[i - ch] if i >= ch else 0
            b = prev[i]
            c = prev[i - ch] if i >= ch else 0
            if f == 1: line[i] = (line[i] + a) & 255
            elif f == 2: line[i] = (line[i] + b) & 255
            elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(line)
        prev = line
    return w, h, ch, rows

def px(img, x, y):
    w, h, ch, rows = img
    return tuple(rows[y][x * ch:x * ch + min(ch, 3)])

def near(a, b, tol):
    return all(abs(p - q) <= tol for p, q in zip(a, b))

def check_image(path):
    w, h, ch, _ = read_png(path)
    assert (w, h) == (64, 64) and ch in (3, 4), f'{path}: {w}x{h}x{ch}, wanted 64x64 RGB'

def check_scene(path):
    s = json.load(open(path))
    assert (s['width'], s['height'], s['seed']) == (64, 64, 42), s
    assert s['background']['prompt'] == 'a wooden table', s['background']
    layers = s['layers']
    assert [l['prompt'] for l in layers] == ['a red apple', 'a blue vase'], layers
    assert layers[1]['negative'] == 'blurry' and layers[1]['mask_std'] == 4, layers[1]
    masks = [read_png(os.path.join(os.path.dirname(path), l['mask'])) for l in layers]
    assert all(m[:2] == (64, 64) for m in masks)
    assert px(masks[0], 32, 14)[0] == 255 and px(masks[0], 32, 40)[0] == 0, 'layer 0 mask'
    assert px(masks[1], 24, 52)[0] == 255 and px(masks[1], 8, 8)[0] == 0, 'layer 1 mask'
    return s, masks

def check_roundtrip(a, b):
    sa, ma = check_scene(a)
    sb, mb = check_scene(b)
    assert [m[3] for m in ma] == [m[3] for m in mb], 'masks changed on the way through'
    for k in ('prompt', 'negative', 'mask_std', 'mask_strength', 'prompt_strength'):
        assert [l[k] for l in sa['layers']] == [l[k] for l in sb['layers']], k

def check_screenshot(path, summary, image):
    m = re.search(r'window=(\d+)x(\d+) canvas_view=([\d,]+) image_view=([\d,]+)', open(summary).read())
    W, H = int(m[1]), int(m[2])
    cv = [int(v) for v in m[3].split(',')]
    iv = [int(v) for v in m[4].split(',')]
    shot = read_png(path)
    assert shot[:2] == (W, H), f'screenshot {shot[:2]}, window {W}x{H}'
    def at(view, x, y):  # the centre of canvas pixel (x, y) in a pane
        return px(shot, view[0] + int((x + 0.5) * view[2] / 64), view[1] + int((y + 0.5) * view[3] / 64))
    # The canvas pane: the layers' overlay colours (60% over the white background).
    assert near(at(cv, 32, 14), (240, 117, 147), 4), f'layer 0 at (32,14): {at(cv, 32, 14)}'
    assert near(at(cv, 24, 52), (138, 210, 147), 4), f'layer 1 at (24,52): {at(cv, 24, 52)}'
    assert near(at(cv, 60, 36), (255, 255, 255), 4), f'background at (60,36): {at(cv, 60, 36)}'
    # The generated pane: the frame that was saved, not the placeholder.
    img = read_png(image)
    placeholder, same, total = (24, 26, 30), 0, 0
    for y in range(64):
        for x in range(64):
            total += 1
            s = at(iv, x, y)
            same += near(s, px(img, x, y), 12) and not near(s, placeholder, 2)
    assert same >= 0.95 * total, f'only {same} of {total} image-pane pixels show the saved frame'

getattr(sys.modules[__name__], sys.argv[1])(*sys.argv[2:])
EOF
check "the saved image is a 64x64 PNG" python3 "$tmp/check.py" check_image "$tmp/image.png"
check "the saved scene holds the layers, prompts, seed and masks" python3 "$tmp/check.py" check_scene \
    "$tmp/scene/saved.json"
check "the saved scene renders with semdrawd render --scene" "$SEMDRAWD" render --model "$models/tiny-sd15" \
    --taesd "$models/taesd" --scene "$tmp/scene/saved.json" --frames 2 -o "$tmp/render"
check "which wrote its frames" test -f "$tmp/render/frame_0001.png"
check "the screenshot shows both panes" python3 "$tmp/check.py" check_screenshot "$tmp/screenshot.png" \
    "$tmp/main.out" "$tmp/image.png"
check "the second window's screenshot" test -s "$tmp/second.png"

# The saved scene back into semdraw-paint (--scene), streamed, saved again unchanged.
cat >"$tmp/again.txt" <<EOF
wait-frames 2 120
save-scene $tmp/again/again.json
quit
EOF
check "semdraw-paint --scene loads the saved scene" xvfb-run -a "$paint" --runtime-dir "$run" \
    --scene "$tmp/scene/saved.json" --script "$tmp/again.txt"
check "and saves it again unchanged" python3 "$tmp/check.py" check_roundtrip "$tmp/scene/saved.json" \
    "$tmp/again/again.json"

# A daemon restart: the window notices, makes its canvas again from the document and streams on.
mkdir -p "$tmp/restart"
cat >"$tmp/restart.txt" <<EOF
stroke 0 20 20 44 44 6
prompt 0 a lighthouse
play
wait-frames 2 120
wait-restart 120
wait-frames 3 120
save-scene $tmp/restart/after.json
quit
EOF
xvfb-run -a "$paint" --runtime-dir "$run" --width 64 --height 64 --script "$tmp/restart.txt" \
    >"$tmp/restart.out" 2>"$tmp/restart.err" &
window=$!
for _ in $(seq 1200); do grep -q "wait-restart" "$tmp/restart.out" && break; sleep 0.1; done
kill -TERM "$daemon"
wait "$daemon"
check "the daemon stopped cleanly" test $? -eq 0
start_daemon
wait "$window"
rc=$?
if [ "$rc" -eq 0 ]; then ok "a window lives through a daemon restart"; else
    bad "a window lives through a daemon restart (exit $rc)"; cat "$tmp/restart.out" "$tmp/restart.err"
fi
check "and its document made it to the new daemon's canvas" grep -q '"a lighthouse"' "$tmp/restart/after.json"

kill -TERM "$daemon"
wait "$daemon"
check "the daemon stopped cleanly" test $? -eq 0
daemon=""
echo "$passed passed, $failed failed in $(($(date +%s) - start)) s"
[ "$failed" -eq 0 ]
