#!/usr/bin/env bash
# Gathers the GPU benchmark kit (issue 14 part 4) into ONE git-ignored folder, .gpu-kit/, for
# scripts/gpu-bench.sh to run on a lent GPU machine (no Rust, no network there; the working tree
# plus carried folders travel, 64 MiB in all). Runs here, where Rust and the network are.
#
#   bash scripts/gpu-kit.sh
#
# The kit:
#   gpu_bench.xz       examples/gpu_bench.rs built, stripped, xz-compressed: the whole Rust side
#                      (adapters, fixtures through the library's parity code, the networks' line
#                      protocol, the whole shot). One example binary, not `facecast` (141 MB
#                      stripped in the dev profile: too big to carry).
#   fixtures.tar.xz    the ten parity fixtures, only the files check-fixture reads
#   ref/<owner>/<repo> only the files of the official model code that bench_nets_reference.py imports
#   debs/*.deb         the Vulkan loader packages (amd64), unpacked there as the device README says
#   wheels/*.whl       ftfy and wcwidth (CLIP's tokenizer; the machine's Python lacks them)
#   MANIFEST.txt       what was built from which commit, and the sizes
# The script FAILS when the kit plus the tree that travels (tracked files, and untracked files not
# ignored) exceeds 64 MiB, printing the sizes.
#
# Build profile: KIT_PROFILE=release (default) is what a GPU run should time; a first release
# build compiles every dependency again and takes about 35 minutes on 2 cores. KIT_PROFILE=dev
# reuses the dev profile's dependencies (already built at opt-level 3): for testing the kit's
# scripts only. Its stripped binary is 115 MB (19.8 MiB as xz; the same at opt-level 3 for this
# crate, with or without incremental compilation, measured on 2026-12-07), so a dev kit is about
# 75 MiB and this script rejects it: only a release kit can be carried.
#
# Environment: KIT_PROFILE (release|dev), FACECAST_REF_DIR (checkouts laid out as <owner>/<repo>/
# at the commits bench_nets_reference.py names; default ${TMPDIR:-/tmp}/facecast-ref),
# FACECAST_FIXTURES (default ../shared/fixtures), KIT_WHEELS (a folder already holding the ftfy and
# wcwidth wheels; else `pip download` fetches them), KIT_DEBS (likewise for the .debs; else
# `apt-get download`), CARGO_TARGET_DIR.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
KIT="$ROOT/.gpu-kit"
PROFILE=${KIT_PROFILE:-release}
REF_DIR=${FACECAST_REF_DIR:-${TMPDIR:-/tmp}/facecast-ref}
FIXTURES=${FACECAST_FIXTURES:-$ROOT/../shared/fixtures}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
LIMIT=$((64 * 1024 * 1024))

cd "$ROOT"
if ! git check-ignore -q .gpu-kit/x; then
  echo ".gpu-kit/ is not git-ignored here: it must not travel as untracked files or be committed" >&2
  exit 1
fi
rm -rf "$KIT"
mkdir -p "$KIT"/{ref,debs,wheels}

# --- the binary -------------------------------------------------------------------------------
echo "== building examples/gpu_bench.rs ($PROFILE)" >&2
case $PROFILE in
  release) cargo build --release --example gpu_bench >&2; BUILT="$TARGET/release/examples/gpu_bench" ;;
  dev) cargo build --example gpu_bench >&2; BUILT="$TARGET/debug/examples/gpu_bench" ;;
  *) echo "KIT_PROFILE must be release or dev, not $PROFILE" >&2; exit 1 ;;
esac
strip -o "$KIT/gpu_bench" "$BUILT"
xz -9 -T0 "$KIT/gpu_bench"

# --- the fixtures -----------------------------------------------------------------------------
# What check-fixture reads (src/parity/): meta.json, io.safetensors, the weights, and per network
# its extra inputs. Not carried: official_keys*.txt (layout checks of the test suite),
# clip_text/weights_torchscript.pt (a second copy of the same weights in another container, 6.7 MB),
# stylegan2_train (not one of the ten).
NAMES=(mtcnn mobilenetv2 stylegan2 gpen arcface_ir_se50 faceshifter_aei beautygan clip_text styleclip_global styleclip_mapper)
FILES=()
for name in "${NAMES[@]}"; do
  dir="$FIXTURES/$name"
  [[ -f $dir/meta.json ]] || { echo "$dir/meta.json is missing (set FACECAST_FIXTURES)" >&2; exit 1; }
  case $name in
    mtcnn) extra=(pnet.pt rnet.pt onet.pt $(python3 -c '
import json, sys
meta = json.load(open(sys.argv[1]))
for name, info in meta.get("photos", {}).items():
    print(info.get("decoded_png") or info.get("file") or name + ".png")' "$dir/meta.json")) ;;
    clip_text) extra=(weights.pth tokenizer_cases.json) ;;
    styleclip_global) extra=(fs3.npy S_mean_std) ;;
    *) extra=(weights.pth) ;;
  esac
  for f in meta.json io.safetensors "${extra[@]}"; do
    [[ -f $dir/$f ]] || { echo "$dir/$f is missing" >&2; exit 1; }
    FILES+=("fixtures/$name/$f")
  done
done
echo "== packing ${#FILES[@]} fixture files" >&2
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
ln -s "$(cd "$FIXTURES" && pwd)" "$STAGE/fixtures"
# -h: through the link to the files; xz -9 with every core (a few minutes on 2 cores).
tar -C "$STAGE" -chf - "${FILES[@]}" | xz -9 -T0 >"$KIT/fixtures.tar.xz"

# --- the official model code ------------------------------------------------------------------
# Only what bench_nets_reference.py imports (and the licences), at the commits it names.
REF_FILES=(
  rosinality/stylegan2-pytorch/model.py rosinality/stylegan2-pytorch/op rosinality/stylegan2-pytorch/LICENSE
  rosinality/stylegan2-pytorch/LICENSE-NVIDIA
  yangxy/GPEN/face_model/gpen_model.py yangxy/GPEN/face_model/op
  taotaonice/FaceShifter/face_modules/__init__.py taotaonice/FaceShifter/face_modules/model.py
  taotaonice/FaceShifter/network
  wtjiang98/BeautyGAN_pytorch/net.py wtjiang98/BeautyGAN_pytorch/ops wtjiang98/BeautyGAN_pytorch/LICENSE
  openai/CLIP/clip openai/CLIP/LICENSE
)
for f in "${REF_FILES[@]}"; do
  [[ -e $REF_DIR/$f ]] || { echo "$REF_DIR/$f is missing: check out the repositories named in scripts/bench_nets_reference.py" >&2; exit 1; }
  mkdir -p "$KIT/ref/$(dirname "$f")"
  cp -r "$REF_DIR/$f" "$KIT/ref/$f"
done
find "$KIT/ref" -name __pycache__ -prune -exec rm -rf {} +
[[ -f $KIT/ref/openai/CLIP/clip/bpe_simple_vocab_16e6.txt.gz ]] || {
  echo "openai/CLIP/clip/bpe_simple_vocab_16e6.txt.gz is missing from $REF_DIR" >&2; exit 1; }
echo "== checking the reference code against the fixtures (CPU)" >&2
if python3 -c 'import torch' 2>/dev/null || [[ -n ${KIT_PYTHON:-} ]]; then
  "${KIT_PYTHON:-python3}" scripts/bench_nets_reference.py --ref-dir "$KIT/ref" --check-fixtures "$FIXTURES" >&2
else
  echo "   (no torch here: set KIT_PYTHON to a Python with torch to check; gpu-bench.sh checks it there)" >&2
fi

# --- the Vulkan loader and the wheels ---------------------------------------------------------
if [[ -n ${KIT_DEBS:-} ]]; then
  cp "$KIT_DEBS"/*.deb "$KIT/debs/"
else
  # The device README's recipe: amd64 packages whatever this machine is, lists kept out of /var.
  LISTS=$(mktemp -d)
  o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 "-oDir::State::Lists=$LISTS")
  mkdir -p "$LISTS/partial"
  apt-get "${o[@]}" update >&2
  (cd "$KIT/debs" && apt-get "${o[@]}" download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 >&2)
  rm -rf "$LISTS"
fi
if [[ -n ${KIT_WHEELS:-} ]]; then
  cp "$KIT_WHEELS"/ftfy-*.whl "$KIT_WHEELS"/wcwidth-*.whl "$KIT/wheels/"
else
  # For the machine's Python (3.12, x86-64 Linux), whatever this one is.
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$KIT/wheels" ftfy wcwidth >&2
fi

# --- manifest and sizes -----------------------------------------------------------------------
{
  echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) from commit $(git rev-parse HEAD)$([[ -z $(git status --porcelain) ]] || echo ' (with uncommitted changes)')"
  echo "profile $PROFILE"
  echo "reference commits: see scripts/bench_nets_reference.py"
  (cd "$KIT" && find . -type f ! -name MANIFEST.txt -printf '%s %p\n' | sort -k2)
} >"$KIT/MANIFEST.txt"

kit_bytes=$(du -sb "$KIT" | cut -f1)
tree_bytes=$( { git ls-files -z; git ls-files -z --others --exclude-standard; } \
  | xargs -0 -r stat -c %s 2>/dev/null | awk '{s += $1} END {print s + 0}')
total=$((kit_bytes + tree_bytes))
mib() { awk -v b="$1" 'BEGIN {printf "%.1f MiB", b / 1048576}'; }
echo "== sizes" >&2
for f in gpu_bench.xz fixtures.tar.xz; do echo "   $f: $(mib "$(stat -c %s "$KIT/$f")")" >&2; done
for d in ref debs wheels; do echo "   $d/: $(mib "$(du -sb "$KIT/$d" | cut -f1)")" >&2; done
echo "   kit: $(mib "$kit_bytes"); tree that travels: $(mib "$tree_bytes"); together $(mib "$total") of 64 MiB" >&2
if ((total > LIMIT)); then
  echo "the kit and the tree exceed the 64 MiB a device call carries" >&2
  exit 1
fi
echo "== kit ready in $KIT" >&2
