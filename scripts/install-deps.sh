#!/usr/bin/env bash
# Install the Debian packages semdraw builds against (idempotent; quick when present).
set -euo pipefail
packages=(
  build-essential cmake pkg-config git
  libopenblas-openmp-dev  # CPU GEMM, on the same OpenMP pool as our loops
  libcjson-dev         # configs, safetensors headers
  libpcre2-dev         # the CLIP pre-tokenizer's Unicode regex
  libutf8proc-dev      # Unicode normalisation and case mapping
  zlib1g-dev           # the gzipped CLIP merges
  libpng-dev           # images
  libzmq3-dev libprotobuf-c-dev protobuf-c-compiler  # the control plane
  libuv1-dev           # the daemon's event loop
  libsdl2-dev libsdl2-ttf-dev xvfb xauth fonts-dejavu-core  # semdraw-paint, and its test under Xvfb
  clang libclang-rt-dev libomp-dev llvm  # the libFuzzer targets (scripts/fuzz.sh; llvm: symbolized reports)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing: ${missing[*]}"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
