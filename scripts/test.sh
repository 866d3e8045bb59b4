#!/usr/bin/env bash
# Runs every test: unit, parity (against ../shared/fixtures or $FACECAST_FIXTURES), CLI and UI.
set -euo pipefail
cd "$(dirname "$0")/.."
export FACECAST_FIXTURES="${FACECAST_FIXTURES:-$(cd .. && pwd)/shared/fixtures}"
# Networks are tested on the CPU backend, and every inference fixture again on wgpu in one process
# (tests/wgpu_fixtures.rs; Mesa's software Vulkan where there is no GPU).
cargo test --all-targets -- --test-threads=2
