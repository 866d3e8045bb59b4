#!/usr/bin/env bash
# Prepares a Debian machine for Facecast: system packages, then the networks that can be
# installed without an account (MTCNN, from its upstream or from its PyPI wheel).
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential pkg-config ca-certificates curl python3 python3-pip
  # eframe/winit load these at run time (X11 and Wayland); the window needs one of them.
  libx11-6 libx11-xcb1 libxcursor1 libxi6 libxrandr2 libxkbcommon0 libxkbcommon-x11-0 libwayland-client0 libwayland-cursor0 libwayland-egl1
  # wgpu without a GPU: Mesa's software Vulkan (lavapipe) and the loader.
  mesa-vulkan-drivers libvulkan1
  # The screenshot test and headless runs of the real window.
  xvfb xauth
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null; then
  echo "setup: cargo is missing; install Rust (rustup) first" >&2
  exit 1
fi

echo "setup: building facecast (the first build takes 35-55 minutes on 2 cores)"
cargo build --bin facecast
bin="${CARGO_TARGET_DIR:-target}/debug/facecast"

# MTCNN is the one network whose weights can be had without an account: it screens every photo.
"$bin" weights install mtcnn

# CLIP's BPE vocabulary (MIT, 1.3 MB) turns text prompts into tokens for StyleCLIP edits.
bash scripts/fetch-clip-vocab.sh
# The app looks for it in the weights store first, wherever it is started from.
"$bin" weights import clip-bpe-vocab models/clip/bpe_simple_vocab_16e6.txt.gz
