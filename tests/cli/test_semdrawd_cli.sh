#!/usr/bin/env bash
# The semdrawd command-line entry points, run as a user runs them.
# Needs SEMDRAWD (the binary), ST_COMPARE (tests/tools/st_compare) and SEMD_TEST_DATA.
set -u
: "${SEMDRAWD:?}" "${ST_COMPARE:?}" "${SEMD_TEST_DATA:?}"
models="$SEMD_TEST_DATA/models"
golden="$SEMD_TEST_DATA/golden"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0

check() { # check NAME COMMAND... : the command must succeed
    local name=$1; shift
    if "$@" >"$tmp/out" 2>"$tmp/err"; then
        passed=$((passed + 1)); echo "ok     $name"
    else
        failed=$((failed + 1)); echo "FAILED $name"; cat "$tmp/out" "$tmp/err"
    fi
}

expect_fail() { # expect_fail NAME EXIT_CODE MESSAGE COMMAND... : exit code and stderr text
    local name=$1 code=$2 msg=$3; shift 3
    "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    if [ "$rc" -eq "$code" ] && grep -qF -- "$msg" "$tmp/err"; then
        passed=$((passed + 1)); echo "ok     $name"
    else
        failed=$((failed + 1)); echo "FAILED $name (exit $rc, wanted $code and '$msg')"; cat "$tmp/err"
    fi
}

pad() { # the 77-id line for content ids given as arguments
    local ids=(49406 "$@" 49407)
    while [ ${#ids[@]} -lt 77 ]; do ids+=(49407); done
    echo "${ids[*]}"
}

keep() { # keep FILE COMMAND... : run COMMAND with its stdout in FILE (check() owns $tmp/out)
    local file=$1; shift
    "$@" >"$file"
}

same_line() { [ "$(sed -n "${3}p" "$1")" = "$2" ]; } # same_line FILE EXPECTED LINE

check "tokenize with the bundled vocabulary" keep "$tmp/t1" "$SEMDRAWD" tokenize "a photo of a cat" "hello world"
check "tokenize: first prompt's ids" same_line "$tmp/t1" "$(pad 320 1125 539 320 2368)" 1
check "tokenize: one line per prompt" same_line "$tmp/t1" "$(pad 3306 1002)" 2
check "tokenize with a model folder" keep "$tmp/t2" "$SEMDRAWD" tokenize --model "$models/tiny-sd15" "1234 café"
check "tokenize: digits split, accents kept" same_line "$tmp/t2" "$(pad 272 273 274 275 15304)" 1
check "tokenize with a tokenizer folder" keep "$tmp/t3" "$SEMDRAWD" tokenize --vocab "$models/tiny-sd15/tokenizer" "don't"
check "tokenize: contraction" same_line "$tmp/t3" "$(pad 847 713)" 1
expect_fail "tokenize: no text" 2 "no TEXT" "$SEMDRAWD" tokenize
expect_fail "tokenize: missing vocabulary" 1 "nope.txt.gz" "$SEMDRAWD" tokenize --vocab "$tmp/nope.txt.gz" x

check "probe clip (diffusers folder)" "$SEMDRAWD" probe --model "$models/tiny-sd15" --module clip \
    --in "$golden/clip_tiny_sd15.safetensors" --out "$tmp/folder.safetensors"
check "probe clip matches transformers" "$ST_COMPARE" "$tmp/folder.safetensors" \
    "$golden/clip_tiny_sd15.safetensors" 1e-5 last_hidden_state pooler_output
check "probe clip (single file, F16)" "$SEMDRAWD" probe --model "$models/tiny-sd15.safetensors" \
    --config "$models/tiny-sd15" --module clip --backend cpu --clip-skip 1 \
    --in "$golden/clip_tiny_sd15.safetensors" --out "$tmp/single.safetensors"
check "probe clip-skip matches transformers" "$ST_COMPARE" "$tmp/single.safetensors" \
    "$golden/clip_tiny_sd15.safetensors" 1e-5 last_hidden_state=last_hidden_state_clip_skip_1
expect_fail "probe: required arguments" 2 "are required" "$SEMDRAWD" probe --module clip
expect_fail "probe: unknown module" 2 "unknown module 'resnet'" "$SEMDRAWD" probe --model x \
    --module resnet --in x --out y
expect_fail "probe: unknown backend" 1 "unknown backend 'tpu'" "$SEMDRAWD" probe --model x \
    --module clip --in x --out y --backend tpu
printf 'not a safetensors file' >"$tmp/bad.safetensors"
expect_fail "probe: malformed input file" 1 "bad.safetensors" "$SEMDRAWD" probe \
    --model "$models/tiny-sd15" --module clip --in "$tmp/bad.safetensors" --out "$tmp/o.safetensors"
expect_fail "probe: input without input_ids" 1 "no tensor 'input_ids'" "$SEMDRAWD" probe \
    --model "$models/tiny-sd15" --module clip --in "$tmp/folder.safetensors" --out "$tmp/o.safetensors"

# The golden's three prompts (tools/reference/gen_models.py), the last one far over 77 tokens.
long=$(for _ in 1 2 3 4 5 6; do printf 'a watercolor painting of a lighthouse on a cliff at dawn, '; done)
probe_matches() { # probe_matches MODULE MODEL GOLDEN OUTPUT=EXPECTED [ARGS...]
    local module=$1 model=$2 gold=$3 names=$4; shift 4
    check "probe $module" "$SEMDRAWD" probe --model "$model" --module "$module" \
        --in "$golden/$gold" --out "$tmp/$module.safetensors" "$@"
    check "probe $module matches the reference" "$ST_COMPARE" "$tmp/$module.safetensors" \
        "$golden/$gold" 1e-4 "$names"
}
probe_matches unet "$models/tiny-sd15" unet_tiny_lcm.safetensors sample=expected_sample
probe_matches vae-decoder "$models/tiny-sd15" vae_tiny.safetensors sample=expected_sample
probe_matches vae-encoder "$models/tiny-sd15.safetensors" vae_tiny.safetensors \
    latent_mean=expected_latent_mean --config "$models/tiny-sd15"
probe_matches taesd-decoder "$models/taesd" taesd.safetensors sample=expected_sample
probe_matches taesd-encoder "$models/taesd" taesd.safetensors latent_mean=expected_latent_mean
expect_fail "probe unet: missing input" 1 "no tensor 'encoder_hidden_states'" "$SEMDRAWD" probe \
    --model "$models/tiny-sd15" --module unet --in "$golden/vae_tiny.safetensors" --out "$tmp/o.safetensors"

check "encode prompts" keep "$tmp/enc.txt" "$SEMDRAWD" encode --model "$models/tiny-sd15" -o "$tmp/enc.safetensors" \
    "a photo of a cat" "an astronaut riding a horse on the moon, highly detailed, 8k" "$long"
check "encode: the text path equals transformers'" "$ST_COMPARE" "$tmp/enc.safetensors" \
    "$golden/clip_tiny_sd15.safetensors" 1e-5 input_ids last_hidden_state pooler_output
check "encode: summary names the token count" grep -q '"a photo of a cat": 5 tokens -> \[77,32\]' "$tmp/enc.txt"

# render: the whole LCM text-to-image path against diffusers' pipeline, noise injected.
check "render with injected noise" "$SEMDRAWD" render --model "$models/tiny-sd15" \
    --prompt "a photo of a cat" --width 64 --height 48 --steps 4 --guidance 8.5 \
    --noise "$golden/txt2img_tiny_lcm.safetensors" --dump "$tmp/render.safetensors" -o "$tmp/cat.png"
check "render matches diffusers' pipeline" "$ST_COMPARE" "$tmp/render.safetensors" \
    "$golden/txt2img_tiny_lcm.safetensors" 1e-4 final_latent image
check "render wrote a PNG" bash -c "head -c 8 '$tmp/cat.png' | od -An -tx1 | grep -q '89 50 4e 47'"
check "render: LoRA fused, CFG with a negative prompt" "$SEMDRAWD" render \
    --model "$models/tiny-sd15-plain" --lora "$SEMD_TEST_DATA/lora/kohya_diffusers.safetensors:0.7" \
    --prompt "a lighthouse at dawn" --negative blurry --steps 3 --guidance 2 --width 48 --height 64 \
    --noise "$golden/txt2img_tiny_cfg_lora.safetensors" --dump "$tmp/cfg.safetensors" -o "$tmp/cfg.png"
check "render with CFG and LoRA matches diffusers' pipeline" "$ST_COMPARE" "$tmp/cfg.safetensors" \
    "$golden/txt2img_tiny_cfg_lora.safetensors" 1e-4 final_latent image
check "render from the single file with TAESD" "$SEMDRAWD" render \
    --model "$models/tiny-sd15.safetensors" --config "$models/tiny-sd15" --prompt "a lighthouse" \
    --width 64 --height 64 --steps 2 --seed 5 --decoder taesd --taesd "$models/taesd" -o "$tmp/taesd.png"
check "render with a LoRA" "$SEMDRAWD" render --model "$models/tiny-sd15" \
    --lora "$SEMD_TEST_DATA/lora/kohya_diffusers.safetensors:0.7" --prompt "a photo of a cat" \
    --width 64 --height 48 --noise "$golden/txt2img_tiny_lcm.safetensors" \
    --dump "$tmp/lora.safetensors" -o "$tmp/lora.png"
check "the LoRA changes the image" bash -c "! '$ST_COMPARE' '$tmp/lora.safetensors' \
    '$golden/txt2img_tiny_lcm.safetensors' 1e-3 final_latent >/dev/null"
expect_fail "render: LCM UNet refuses a negative prompt" 1 "no negative prompt" "$SEMDRAWD" render \
    --model "$models/tiny-sd15" --prompt x --negative y --width 64 --height 64 -o "$tmp/x.png"
expect_fail "render: size not a multiple of 8" 1 "multiples of 8" "$SEMDRAWD" render \
    --model "$models/tiny-sd15" --prompt x --width 60 --height 64 -o "$tmp/x.png"
expect_fail "render: taesd needs a path" 2 "--taesd PATH" "$SEMDRAWD" render \
    --model "$models/tiny-sd15" --prompt x --decoder taesd -o "$tmp/x.png"
expect_fail "render: LoRA for another model" 1 "kohya_ldm.safetensors" "$SEMDRAWD" render \
    --random-weights sd15 --lora "$SEMD_TEST_DATA/lora/kohya_ldm.safetensors" \
    --prompt x -o "$tmp/x.png"

# SemanticDraw scenes (parity is in test_semanticdraw; here the command as a user runs it).
scenes="$SEMD_TEST_DATA/scenes"
check "render a scene stream" "$SEMDRAWD" render --model "$models/tiny-sd15" \
    --scene "$scenes/three_layers_blur.json" --frames 6 --taesd "$models/taesd" \
    --noise "$golden/semanticdraw/three_layers_blur.default.safetensors" \
    --dump "$tmp/scene.safetensors" -o "$tmp/scene_frames"
check "the scene stream wrote one PNG per frame" test -f "$tmp/scene_frames/frame_0005.png"
check "render a scene in the single-call mode" "$SEMDRAWD" render --model "$models/tiny-sd15" \
    --scene "$scenes/single_image_bg.json" --noise "$golden/semanticdraw/single_image_bg.safetensors" \
    --dump "$tmp/single.safetensors" -o "$tmp/single.png"
check "the single-call render matches the reference" "$ST_COMPARE" "$tmp/single.safetensors" \
    "$golden/semanticdraw/single_image_bg.safetensors" 1e-4 final_latent image
check "an example scene renders" "$SEMDRAWD" render --model "$models/tiny-sd15" \
    --scene "$SEMD_TEST_DATA/../../examples/scenes/two_objects.json" --frames 1 \
    --taesd "$models/taesd" -o "$tmp/example_frames"
printf '{"width": 64, "height": 48, "mask_type": "fuzzy"}' >"$tmp/bad1.json"
expect_fail "render --scene: unknown value" 1 "mask_type" "$SEMDRAWD" render \
    --model "$models/tiny-sd15" --scene "$tmp/bad1.json" --frames 1 --taesd "$models/taesd" -o "$tmp/o"
printf '{"width": 64, "height": 48, "timesteps": [0, 4, 60]}' >"$tmp/bad2.json"
expect_fail "render --scene: timesteps out of range" 1 "timesteps" "$SEMDRAWD" render \
    --model "$models/tiny-sd15" --scene "$tmp/bad2.json" --frames 1 --taesd "$models/taesd" -o "$tmp/o"
printf '{"width": 64, "height": 48, "layers": [{"prompt": "x", "mask": "missing.png"}]}' >"$tmp/bad3.json"
expect_fail "render --scene: missing mask file" 1 "missing.png" "$SEMDRAWD" render \
    --model "$models/tiny-sd15" --scene "$tmp/bad3.json" --frames 1 --taesd "$models/taesd" -o "$tmp/o"
printf '{"width": 32, "height": 48, "layers": [{"prompt": "x", "mask": "%s"}]}' \
    "$scenes/masks/full_64x48.png" >"$tmp/bad4.json"
expect_fail "render --scene: mask of the wrong size" 1 "the canvas is 32x48" "$SEMDRAWD" render \
    --model "$models/tiny-sd15" --scene "$tmp/bad4.json" --frames 1 --taesd "$models/taesd" -o "$tmp/o"
python_layers=$(for i in $(seq 0 70); do printf '%s{"prompt": "p%d"}' "$([ "$i" -gt 0 ] && echo ,)" "$i"; done)
printf '{"width": 64, "height": 48, "layers": [%s]}' "$python_layers" >"$tmp/bad5.json"
expect_fail "render --scene: too many layers" 1 "layers" "$SEMDRAWD" render \
    --model "$models/tiny-sd15" --scene "$tmp/bad5.json" --frames 1 --taesd "$models/taesd" -o "$tmp/o"

# The daemon and the semdraw client: a scene with an edit timeline streamed through semdrawd serve.
if [ -n "${SEMDRAW:-}" ]; then
    run="$tmp/run"
    "$SEMDRAWD" serve --config-file /dev/null --model "$models/tiny-sd15" --taesd "$models/taesd" \
        --runtime-dir "$run" 2>"$tmp/serve.log" &
    daemon=$!
    for _ in $(seq 300); do [ -S "$run/control.sock" ] && break; sleep 0.1; done
    check "semdraw wait-ready" "$SEMDRAW" --runtime-dir "$run" wait-ready
    check "semdraw status" keep "$tmp/status.txt" "$SEMDRAW" --runtime-dir "$run" status
    check "status names the model state" grep -q "model ready" "$tmp/status.txt"
    check "status reports the backend memory" grep -Eq " [1-9][0-9.]* MiB on the device" "$tmp/status.txt"
    check "semdraw run streams a scene with edits" keep "$tmp/run.txt" "$SEMDRAW" --runtime-dir "$run" \
        run "$scenes/edits.json" --frames 10 --out "$tmp/client_frames"
    check "one line per frame" test "$(grep -c '^frame ' "$tmp/run.txt")" -eq 10
    check "the last frame reflects the later commits" bash -c \
        "tail -1 '$tmp/run.txt' | grep -Eq 'input ([5-9]|[1-9][0-9])'"
    check "ten PNGs" test -f "$tmp/client_frames/frame_0009.png"
    expect_fail "semdraw run: bad scene" 1 "cannot load the scene" "$SEMDRAW" --runtime-dir "$run" \
        run "$tmp/bad1.json" --frames 1 --out "$tmp/x"

    # The CLI round trip: a detached canvas driven by one command at a time, each result checked.
    sd() { "$SEMDRAW" --runtime-dir "$run" "$@"; }
    export XDG_RUNTIME_DIR="$tmp/xdg" && mkdir -m 700 "$XDG_RUNTIME_DIR"
    check "canvas create" keep "$tmp/cc.txt" sd canvas create --width 64 --height 64 --seed 5
    check "create prints the canvas" grep -Eq '^canvas [0-9]+ 64x64 seed 5$' "$tmp/cc.txt"
    cid=$(awk '{print $2}' "$tmp/cc.txt")
    check "its key is private to the user" test "$(stat -c %a "$XDG_RUNTIME_DIR/semdraw-cli")" = 700
    check "canvas list shows it" bash -c "'$SEMDRAW' --runtime-dir '$run' canvas list | grep -q '^canvas $cid 64x64 seed 5 idle'"
    check "canvas attach (a viewer)" sd canvas attach "$cid"
    check "write a left-half mask PNG" "$SEMDRAWD" render --model "$models/tiny-sd15" --prompt x --width 64 \
        --height 64 --steps 1 --seed 1 -o "$tmp/m.png"
    check "layer set adds a layer from a PNG mask" keep "$tmp/l0.txt" sd layer set "$cid" --prompt "a red fox" \
        --mask "$tmp/m.png" --mask-std 4
    check "the new layer is 0, input 1" bash -c "grep -q '^layer 0$' '$tmp/l0.txt' && grep -q '^committed input 1$' '$tmp/l0.txt'"
    check "layer set adds a second" keep "$tmp/l1.txt" sd layer set "$cid" --prompt "a bird" --mask "$tmp/m.png"
    check "the second layer is 1" grep -q '^layer 1$' "$tmp/l1.txt"
    check "layer set changes layer 1" sd layer set "$cid" --layer 1 --prompt "a blue bird" --prompt-strength 0.8
    expect_fail "layer set: no such layer" 1 "has no layer 7" sd layer set "$cid" --layer 7 --prompt x
    expect_fail "layer set: a mask of the wrong size" 1 "cannot use it as a mask" sd layer set "$cid" \
        --mask "$tmp/client_frames/frame_0000.png" --layer 0
    check "layer remove" sd layer remove "$cid" 0
    expect_fail "layer remove: twice" 1 "has no layer 0" sd layer remove "$cid" 0
    check "background set" sd background set "$cid" --prompt "a snowy field" --color 8899aa
    expect_fail "background set: a bad colour" 2 "RRGGBB" sd background set "$cid" --color blue
    check "params set: the seed" sd params set "$cid" --seed 9
    check "stream start" sd stream start "$cid" --fps 20
    check "watch reports the stream" keep "$tmp/watch.txt" sd watch "$cid" --count 2 --interval 0.5
    check "watch: two lines with fps" test "$(grep -c "^canvas $cid streaming fps" "$tmp/watch.txt")" -eq 2
    check "stream stop" sd stream stop "$cid"
    check "snapshot" keep "$tmp/snap.txt" sd snapshot "$cid" -o "$tmp/snap.png"
    check "the snapshot reflects every commit" grep -Eq '^frame [0-9]+ input 6 ' "$tmp/snap.txt"
    check "the snapshot is a 64x64 PNG" bash -c "file '$tmp/snap.png' | grep -q '64 x 64'"
    expect_fail "a canvas id that is not a number" 2 "not a canvas id" sd snapshot abc -o "$tmp/x.png"
    expect_fail "someone else's canvas" 1 "no edit key" sd layer set 999 --prompt x
    check "canvas close" sd canvas close "$cid"
    check "the canvas is gone" bash -c "! '$SEMDRAW' --runtime-dir '$run' canvas list | grep -q '^canvas $cid '"
    expect_fail "canvas close: twice" 1 "canvas $cid" sd canvas close "$cid"
    expect_fail "usage" 2 "usage" sd canvas frobnicate
    expect_fail "no daemon there" 3 "no semdrawd answers" "$SEMDRAW" --runtime-dir "$tmp/nowhere" --timeout 1 status
    expect_fail "a second daemon on the same directory" 1 "another semdrawd serves" "$SEMDRAWD" serve \
        --config-file /dev/null --model "$models/tiny-sd15" --taesd "$models/taesd" --runtime-dir "$run"
    check "and the first one still serves" "$SEMDRAW" --runtime-dir "$run" status

    kill -TERM "$daemon"
    wait "$daemon"
    check "the daemon stopped cleanly" test $? -eq 0
    check "and removed its socket" test ! -e "$run/control.sock"
fi

# A model that is missing or corrupt at start: a message naming it, exit 1, and no socket left behind.
if [ -n "${SEMDRAW:-}" ]; then
    expect_fail "serve: a missing model" 1 "$tmp/no-such-model" "$SEMDRAWD" serve --config-file /dev/null \
        --model "$tmp/no-such-model" --taesd "$models/taesd" --runtime-dir "$tmp/run-missing"
    check "  and no socket left" test ! -e "$tmp/run-missing/control.sock"
    head -c 4096 /dev/urandom >"$tmp/corrupt.safetensors"
    expect_fail "serve: a corrupt checkpoint" 1 "corrupt.safetensors" "$SEMDRAWD" serve --config-file /dev/null \
        --model "$tmp/corrupt.safetensors" --taesd "$models/taesd" --runtime-dir "$tmp/run-corrupt"
fi

# The real SD1.5 architecture at full size, random weights built in memory.
check "render full-size SD1.5 (random weights) at 64x64" "$SEMDRAWD" render --random-weights sd15 \
    --prompt "a photo of a cat" --width 64 --height 64 --steps 1 --guidance 1 -o "$tmp/full.png"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
