#!/usr/bin/env bash
# Set up a fresh Debian machine and run the main job on the bundled tiny model
# (tests/data/models/tiny-sd15): tokenize, encode, render a prompt with LCM, and stream a
# SemanticDraw scene.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh" build
semdrawd="$root/build/daemon/semdrawd"
model="$root/tests/data/models/tiny-sd15"
echo "== token ids (BOS, content, EOS, padding to 77)"
"$semdrawd" tokenize --model "$model" "a photo of a cat"
echo "== text encoder (tiny random CLIP of the SD1.5 architecture, CPU backend)"
"$semdrawd" encode --model "$model" -o "$root/build/demo-embeddings.safetensors" \
  "a photo of a cat" "an astronaut riding a horse on the moon"
echo "== wrote $root/build/demo-embeddings.safetensors"
echo "== LCM text-to-image, 4 steps, 256x256 (tiny LCM-distilled UNet, VAE decoder)"
"$semdrawd" render --model "$model" --prompt "a photo of a cat" --width 256 --height 256 \
  --steps 4 --seed 1 -o "$root/build/demo.png"
echo "== wrote $root/build/demo.png"
echo "== SemanticDraw: stream examples/scenes/two_objects.json (three painted layers), 6 frames"
"$semdrawd" render --model "$model" --taesd "$root/tests/data/models/taesd" \
  --scene "$root/examples/scenes/two_objects.json" --frames 6 -o "$root/build/demo-frames"
echo "== wrote $root/build/demo-frames/frame_0000.png .. frame_0005.png (0-3 are warm-up frames)"
