#!/usr/bin/env bash
# MTCNN benchmark: facenet-pytorch 2.6.0 (the reference) and Facecast's detector, side by side on the
# same machine in the same run, with the ratios. The reference runs from a throwaway virtual
# environment outside the repository; nothing it downloads or writes lands in the work tree.
#
#   scripts/bench-mtcnn.sh [--quick]
#
# Environment: FACECAST_BENCH_VENV (venv folder), FACECAST_BENCH_WORK (photos and reports),
# FACECAST_MTCNN_DIR (pnet.pt/rnet.pt/onet.pt and the shared photos), BENCH_THREADS (default 2),
# BENCH_RUNS (timed runs per case), BENCH_BACKENDS (default "cpu wgpu").
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TMP=${TMPDIR:-/tmp}
VENV=${FACECAST_BENCH_VENV:-$TMP/facecast-bench-venv}
WORK=${FACECAST_BENCH_WORK:-$TMP/facecast-bench}
MTCNN_DIR=${FACECAST_MTCNN_DIR:-$ROOT/../shared/fixtures/mtcnn}
THREADS=${BENCH_THREADS:-2}
RUNS=${BENCH_RUNS:-7}
BACKENDS=${BENCH_BACKENDS:-cpu wgpu}
BUDGET_S=${BENCH_BUDGET_S:-30}
# release by default; "dev" reuses the dev profile's dependencies (built at opt-level 3 there) when a
# release build of them is too costly, with the crate itself raised to opt-level 3.
PROFILE=${BENCH_PROFILE:-release}
# facenet-pytorch 2.6.0 pins torch<2.3, which is old; it runs unchanged on a current torch, so the
# pins are bypassed with --no-deps and the few pure-Python dependencies are installed by hand.
TORCH_VERSION=${TORCH_VERSION:-2.14.1}
TORCHVISION_VERSION=${TORCHVISION_VERSION:-0.29.2}
if [[ ${1:-} == --quick ]]; then RUNS=3; fi

case "$VENV" in "$ROOT"/*) echo "the venv must live outside the repository ($VENV)" >&2; exit 1 ;; esac
case "$WORK" in "$ROOT"/*) echo "the work folder must live outside the repository ($WORK)" >&2; exit 1 ;; esac
mkdir -p "$WORK"

if ! "$VENV/bin/python" -c 'import facenet_pytorch, torch, torchvision' 2>/dev/null; then
  echo "== building the reference environment in $VENV" >&2
  python3 -m venv "$VENV"
  PIP=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
  # torch with its own dependencies: the Linux wheel is a CUDA build that will not import without its
  # nvidia-* libraries, even when only the CPU is used (as here). Only facenet-pytorch goes in with
  # --no-deps, to bypass its old pins.
  "${PIP[@]}" "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"
  "${PIP[@]}" --no-deps "facenet-pytorch==2.6.0"
  "${PIP[@]}" numpy pillow requests tqdm
fi

PHOTOS=("$MTCNN_DIR"/astronaut.png "$MTCNN_DIR"/camera.png "$MTCNN_DIR"/chelsea.png "$MTCNN_DIR"/montage.png)
BIG="$WORK/big_6000x4000.png"

echo "== building the Rust bench" >&2
if [[ $PROFILE == dev ]]; then
  (cd "$ROOT" && CARGO_PROFILE_DEV_OPT_LEVEL=3 cargo build --example bench_detect >&2)
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/examples/bench_detect"
else
  (cd "$ROOT" && cargo build --release --example bench_detect >&2)
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/bench_detect"
fi

# The Rust side makes the 6000x4000 photo (tiled and upscaled from the shared ones) so both sides
# read the very same file.
"$BIN" --make-big "$BIG" "${PHOTOS[@]}"

echo "== facenet-pytorch ($THREADS threads)" >&2
OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS "$VENV/bin/python" "$ROOT/scripts/bench_mtcnn_reference.py" \
  --threads "$THREADS" --runs "$RUNS" --budget-s "$BUDGET_S" --json "$WORK/reference.json" "${PHOTOS[@]}" "$BIG"

echo "== Facecast" >&2
RAYON_NUM_THREADS=$THREADS "$BIN" --weights "$MTCNN_DIR" --runs "$RUNS" --budget-s "$BUDGET_S" --backends "$BACKENDS" \
  --max-sides 0,1024,1600,2048 --json "$WORK/facecast.json" "${PHOTOS[@]}" "$BIG"

"$VENV/bin/python" "$ROOT/scripts/bench_mtcnn_compare.py" "$WORK/reference.json" "$WORK/facecast.json"
