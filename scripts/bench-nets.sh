#!/usr/bin/env bash
# Network benchmark (issues 5-9): every ported network at its released configuration, Facecast
# (flex CPU and wgpu) against the official PyTorch code, both in the same run, alternating
# reference / Facecast per timed call; prints medians and ratios (reference / Facecast: above 1,
# Facecast is faster). Weights are random: timing does not depend on their values.
#
#   scripts/bench-nets.sh [--quick]
#
# The official code is third-party and never enters this repository: FACECAST_REF_DIR must hold
# checkouts laid out as <owner>/<repo>/ at the commits listed in scripts/bench_nets_reference.py
# (rosinality/stylegan2-pytorch, yangxy/GPEN, taotaonice/FaceShifter, wtjiang98/BeautyGAN_pytorch,
# openai/CLIP with its bpe_simple_vocab_16e6.txt.gz in clip/). torch and torchvision come from pip
# into a virtual environment outside the repository.
#
# Environment: FACECAST_REF_DIR (default ${TMPDIR:-/tmp}/facecast-ref), FACECAST_BENCH_VENV,
# FACECAST_BENCH_WORK (reports), FACECAST_FIXTURES (default ../shared/fixtures), BENCH_THREADS (2), BENCH_RUNS (5), BENCH_WGPU_RUNS (2),
# BENCH_BUDGET_S (soft seconds per case, 150), BENCH_CASES, BENCH_WGPU_CASES (default: the small cases below; set it empty for no wgpu),
# BENCH_PROFILE (dev: the dev profile at opt-level 3, whose dependencies are already opt-3),
# BENCH_VARIANTS (feature sets timed side by side, see below), BENCH_BURN_OPS (see below).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TMP=${TMPDIR:-/tmp}
REF_DIR=${FACECAST_REF_DIR:-$TMP/facecast-ref}
VENV=${FACECAST_BENCH_VENV:-$TMP/facecast-bench-venv}
WORK=${FACECAST_BENCH_WORK:-$TMP/facecast-bench}
THREADS=${BENCH_THREADS:-2}
RUNS=${BENCH_RUNS:-5}
WGPU_RUNS=${BENCH_WGPU_RUNS:-2}
BUDGET_S=${BENCH_BUDGET_S:-150}
PROFILE=${BENCH_PROFILE:-dev}
CASES=${BENCH_CASES:-stylegan2-1024,stylegan2-256,gpen-512,gpen-256,arcface-112,aei-256,beautygan-256,mobilenetv2-224,clip-text,clip-tokenize}
# Mesa's software Vulkan (lavapipe) takes minutes for the 1024² and 512² generators: the wgpu
# side runs the smaller released configs and the light networks.
WGPU_CASES=${BENCH_WGPU_CASES-stylegan2-256,gpen-256,arcface-112,mobilenetv2-224,clip-text}
TORCH_VERSION=${TORCH_VERSION:-2.15.0}
TORCHVISION_VERSION=${TORCHVISION_VERSION:-0.29.2}
if [[ ${1:-} == --quick ]]; then RUNS=3; WGPU_RUNS=1; BUDGET_S=60; fi

for dir in "$VENV" "$WORK" "$REF_DIR"; do
  case "$dir" in "$ROOT"/*) echo "$dir must live outside the repository" >&2; exit 1 ;; esac
done
mkdir -p "$WORK"
VOCAB="$REF_DIR/openai/CLIP/clip/bpe_simple_vocab_16e6.txt.gz"
if [[ ! -f $VOCAB ]]; then
  echo "$VOCAB is missing: check out openai/CLIP into $REF_DIR/openai/CLIP (scripts/fetch-clip-vocab.sh installs the vocabulary)" >&2
  exit 1
fi

if ! "$VENV/bin/python" -c 'import torch, torchvision, ftfy, regex, packaging, safetensors' 2>/dev/null; then
  echo "== building the reference environment in $VENV" >&2
  python3 -m venv "$VENV"
  # The Linux torch wheel is a CUDA build that pulls its nvidia-* libraries even for CPU use.
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION" ftfy regex packaging numpy safetensors
fi

# The checkouts must be the code the parity fixtures were made with: rebuild the fixtures whose
# configs are plain constructor arguments and compare their outputs (seconds).
FIXTURES=${FACECAST_FIXTURES:-$ROOT/../shared/fixtures}
if [[ -d $FIXTURES ]]; then
  echo "== checking the reference checkouts against $FIXTURES" >&2
  "$VENV/bin/python" "$ROOT/scripts/bench_nets_reference.py" --ref-dir "$REF_DIR" --check-fixtures "$FIXTURES" >&2
else
  echo "== $FIXTURES not found: the reference checkouts are NOT checked (set FACECAST_FIXTURES)" >&2
fi

# BENCH_VARIANTS: Cargo feature sets to build and time side by side in the same run, each as
# one Facecast column ("default" is the build as configured; e.g. "default burn/x86-v4" compares
# against burn's AVX-512 kernels). Each build is copied aside: they share the output path.
VARIANTS=${BENCH_VARIANTS:-default}
FACECAST_ARGS=()
for variant in $VARIANTS; do
  echo "== building the Rust bench ($PROFILE, features: $variant)" >&2
  FEATURES=()
  [[ $variant != default ]] && FEATURES=(--features "$variant")
  if [[ $PROFILE == dev ]]; then
    (cd "$ROOT" && CARGO_PROFILE_DEV_OPT_LEVEL=3 cargo build --example bench_nets "${FEATURES[@]}" >&2)
    BUILT="${CARGO_TARGET_DIR:-$ROOT/target}/debug/examples/bench_nets"
  else
    (cd "$ROOT" && cargo build --release --example bench_nets "${FEATURES[@]}" >&2)
    BUILT="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/bench_nets"
  fi
  LABEL=facecast
  [[ $variant != default ]] && LABEL="facecast+${variant//[^A-Za-z0-9_-]/_}"
  cp "$BUILT" "$WORK/bench_nets.$LABEL"
  FACECAST_ARGS+=(--facecast "$LABEL=$WORK/bench_nets.$LABEL --serve --vocab $VOCAB")
done

# BENCH_BURN_OPS=1: one more Facecast column, the same build with its own CPU kernels off
# (`--burn-conv`: every convolution through burn's flex ops), i.e. the state before them, timed
# in the same run for a before/after ratio.
if [[ -n ${BENCH_BURN_OPS:-} ]]; then
  FACECAST_ARGS+=(--facecast "facecast-burn-ops=$WORK/bench_nets.facecast --serve --burn-conv --vocab $VOCAB")
fi

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
REPORT="$WORK/nets-$STAMP.json"
echo "== timing (reference and Facecast alternating, $THREADS threads each)" >&2
"$VENV/bin/python" "$ROOT/scripts/bench_nets.py" \
  --reference "$VENV/bin/python $ROOT/scripts/bench_nets_reference.py --ref-dir $REF_DIR" \
  "${FACECAST_ARGS[@]}" \
  --threads "$THREADS" --runs "$RUNS" --wgpu-runs "$WGPU_RUNS" --budget-s "$BUDGET_S" \
  --cases "$CASES" --wgpu-cases "$WGPU_CASES" --json "$REPORT"
echo "== report: $REPORT" >&2
"$VENV/bin/python" "$ROOT/scripts/bench_nets_compare.py" "$REPORT"
