#!/usr/bin/env bash
# Runs every test: unit, parity (against ../shared/fixtures or $FACECAST_FIXTURES), CLI and UI.
set -euo pipefail
cd "$(dirname "$0")/.."
export FACECAST_FIXTURES="${FACECAST_FIXTURES:-$(cd .. && pwd)/shared/fixtures}"
# Networks are tested on the CPU backend; the few wgpu cross-checks use Mesa's software Vulkan.
cargo test --all-targets -- --test-threads=2
