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
#   fixtures-<name>.tar.xz  the ten parity fixtures, one archive each, only the files
#                      check-fixture reads
#   ref/<owner>/<repo> only the files of the official model code that bench_nets_reference.py imports
#   debs/*.deb         the Vulkan loader packages (amd64), unpacked there as the device README says
#   wheels/*.whl       ftfy and wcwidth (CLIP's tokenizer; the machine's Python lacks them)
#   MANIFEST.txt       what was built from which commit, and the sizes
# A device call carries the tree (tracked files, and untracked files not ignored) plus its carried
# folders, 64 MiB in all, and the kit is larger (the release binary alone is 17.9 MiB as xz, the
# fixtures 48.7 MiB): the fixture archives that do not fit beside the rest go to .gpu-kit-2/, for a
# second call made while the machine is still warm (docs/gpu-kit.md). The script FAILS when either
# part plus the tree exceeds 64 MiB, printing the sizes.
#
# Build profile: KIT_PROFILE=release (default) is what a GPU run should time; a first release
# build compiles every dependency again and took 109 minutes on 2 cores shared with other builds (2026-12-08). KIT_PROFILE=dev
# reuses the dev profile's dependencies (already built at opt-level 3): for testing the kit's
# scripts only (its stripped binary is 115 MB, 19.8 MiB as xz; the release one 107 MB, 17.9 MiB as
# xz, measured on 2026-12-08: neither fits one call with the fixtures).
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
if ! git check-ignore -q .gpu-kit/x || ! git check-ignore -q .gpu-kit-2/x; then
  echo ".gpu-kit/ and .gpu-kit-2/ are not both git-ignored here: it must not travel as untracked files or be committed" >&2
  exit 1
fi
rm -rf "$KIT" "$ROOT/.gpu-kit-2"
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
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
ln -s "$(cd "$FIXTURES" && pwd)" "$STAGE/fixtures"
mkdir -p "$STAGE/packed"
echo "== packing the ${#NAMES[@]} fixtures, one archive each" >&2
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
  FILES=()
  for f in meta.json io.safetensors "${extra[@]}"; do
    [[ -f $dir/$f ]] || { echo "$dir/$f is missing" >&2; exit 1; }
    FILES+=("fixtures/$name/$f")
  done
  # -h: through the link to the files. One archive per fixture, so that the kit can be split
  # between two device calls when it does not fit one (see the end of this script).
  tar -C "$STAGE" -chf - "${FILES[@]}" | xz -9 -T0 >"$STAGE/packed/fixtures-$name.tar.xz"
done

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

# --- splitting into the calls' parts, manifest and sizes ------------------------------------
# A device call carries the tree plus the carried folders, 64 MiB in all. Everything but the
# fixtures goes in .gpu-kit/ with as many fixture archives as fit beside it (largest first); the
# rest go in .gpu-kit-2/, the second call's carry (docs/gpu-kit.md: the first call stages its part
# on the machine, the second runs the benchmark).
tree_bytes=$( { git ls-files -z; git ls-files -z --others --exclude-standard; } \
  | xargs -0 -r stat -c %s 2>/dev/null | awk '{s += $1} END {print s + 0}')
mib() { awk -v b="$1" 'BEGIN {printf "%.1f MiB", b / 1048576}'; }
KIT2="$ROOT/.gpu-kit-2"
rm -rf "$KIT2"
# 4 MiB of room in the first call: for the manifest, written after the split, and for files that
# change in the tree between this build and the device call (the device tool measures it then).
ROOM=$((4 * 1024 * 1024))
part1=$(( $(du -sb "$KIT" | cut -f1) + tree_bytes + ROOM ))
part2=$tree_bytes
while read -r size file; do
  if (( part1 + size <= LIMIT )); then
    mv "$file" "$KIT/"; part1=$((part1 + size))
  else
    mkdir -p "$KIT2"; mv "$file" "$KIT2/"; part2=$((part2 + size))
  fi
done < <(find "$STAGE/packed" -type f -printf '%s %p\n' | sort -rn)
{
  echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) from commit $(git rev-parse HEAD)$([[ -z $(git status --porcelain) ]] || echo ' (with uncommitted changes)')"
  echo "profile $PROFILE"
  echo "reference commits: see scripts/bench_nets_reference.py"
  (cd "$ROOT" && find .gpu-kit .gpu-kit-2 -type f ! -name MANIFEST.txt -printf '%s %p\n' 2>/dev/null | sort -k2)
} >"$KIT/MANIFEST.txt"

kit_bytes=$(du -sb "$KIT" | cut -f1)
echo "== sizes" >&2
echo "   gpu_bench.xz: $(mib "$(stat -c %s "$KIT/gpu_bench.xz")")" >&2
echo "   fixtures: $(mib "$(cat "$KIT"/fixtures-*.tar.xz "$KIT2"/fixtures-*.tar.xz 2>/dev/null | wc -c)") in ${#NAMES[@]} archives" >&2
for d in ref debs wheels; do echo "   $d/: $(mib "$(du -sb "$KIT/$d" | cut -f1)")" >&2; done
echo "   tree that travels: $(mib "$tree_bytes")" >&2
echo "   call 1 (.gpu-kit + tree): $(mib $((kit_bytes + tree_bytes))) of 64 MiB" >&2
if [[ -d $KIT2 ]]; then
  echo "   call 2 (.gpu-kit-2 + tree): $(mib "$part2") of 64 MiB: the kit travels in TWO calls (docs/gpu-kit.md)" >&2
fi
if (( kit_bytes + tree_bytes > LIMIT || part2 > LIMIT )); then
  echo "a part of the kit and the tree exceed the 64 MiB a device call carries" >&2
  exit 1
fi
echo "== kit ready in $KIT$([[ -d $KIT2 ]] && echo " and $KIT2")" >&2
