#!/usr/bin/env bash
# Set up a fresh Debian machine and run the main job on the bundled tiny model:
# prompts through the CLIP tokenizer and text encoder of tests/data/models/tiny-sd15.
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
