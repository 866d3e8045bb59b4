#!/usr/bin/env bash
# The GPU benchmark (issue 14 part 4), run ON the lent GPU machine from the repository root with
# the kit that scripts/gpu-kit.sh gathered in .gpu-kit/ (carried: the machine has no Rust, no
# network). One command, about 8 minutes on an H100; docs/gpu-kit.md has the device call.
#
#   bash scripts/gpu-bench.sh            # writes $OUT/gpu-bench.json and $OUT/gpu-bench.log
#   bash scripts/gpu-bench.sh --stage    # only keeps the carried kit part on the machine (below)
#
# When the kit is too large for one call (gpu-kit.sh then writes .gpu-kit-2/ too), the first call
# carries .gpu-kit and runs `--stage`, which copies it to GPU_KIT_STAGED (/tmp/facecast-gpu-kit);
# the second, made while the machine is still warm, carries .gpu-kit-2 and runs the benchmark,
# which gathers the staged part and this call's part there.
#
# Parts, in order, each under its own time limit (seconds; GPU_BENCH_T_<PART> overrides) and all
# under one deadline (GPU_BENCH_DEADLINE_S, 465): a part that fails or overruns is recorded in the
# report as failed / timed_out with the end of its log, and the script goes on; a part with no time
# left is recorded as cut.
#   adapters         20  every wgpu adapter, Auto's choice, the adapter the kit runs on
#   reference_check  25  the carried official code rebuilds the gpen/beautygan/clip_text fixtures (CPU)
#   fixtures        120  every parity fixture on wgpu (the library's check-fixture code and tolerances)
#   nets            180  every network at its released configuration: Facecast on wgpu against the
#                        official PyTorch code on CUDA, alternating, medians after a warm-up
#   shot             60  a 2000x3000 photo with two faces: detect, swap, GPEN-512, paste back; the
#                        first shot in a fresh process with empty kernel caches, then warm runs
#   shot_cached      40  the same in a second process, the kernel caches kept from the first
# The GPU's memory is polled with nvidia-smi (when present) and each part's peak is reported.
#
# Environment (defaults for the GPU machine; the stand-in test here sets the reduced ones):
#   OUT (./gpu-bench-out), GPU_KIT_DIR (.gpu-kit), GPU_BENCH_WORK (/tmp/gpu-bench),
#   GPU_BENCH_PYTHON (python3), GPU_BENCH_PARTS (all of the above, comma-separated),
#   GPU_BENCH_FIXTURES (the ten fixture names), GPU_BENCH_NETS (the ten network cases),
#   GPU_BENCH_REF_BACKEND (cuda; cpu is the stand-in), GPU_BENCH_BACKEND (wgpu; the backend of the
#   fixtures and nets parts), GPU_BENCH_SHOT_BACKEND (wgpu), GPU_BENCH_SHOT_SIZE (2000x3000),
#   GPU_BENCH_RUNS (5 timed calls per network and side), GPU_BENCH_SHOT_RUNS (3),
#   GPU_BENCH_THREADS (all cores), GPU_BENCH_LOADER (auto: unpack the carried Vulkan loader into /
#   only when no libvulkan is installed; skip: never).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
START=$(date +%s)
KIT=${GPU_KIT_DIR:-$ROOT/.gpu-kit}
STAGED=${GPU_KIT_STAGED:-/tmp/facecast-gpu-kit}
if [[ ${1:-} == --stage || -d $STAGED ]]; then
  mkdir -p "$STAGED"
  for part in "$KIT" "$ROOT/.gpu-kit-2"; do
    if [[ -d $part ]]; then cp -r "$part/." "$STAGED/" || exit 1; fi
  done
  if [[ ${1:-} == --stage ]]; then
    echo "staged in $STAGED: $(cd "$STAGED" && ls | tr '\n' ' ')"
    exit 0
  fi
  KIT=$STAGED
fi
OUT=${OUT:-$ROOT/gpu-bench-out}
WORK=${GPU_BENCH_WORK:-${TMPDIR:-/tmp}/gpu-bench}
PY=${GPU_BENCH_PYTHON:-python3}
PARTS=${GPU_BENCH_PARTS:-adapters,reference_check,fixtures,nets,shot,shot_cached}
FIXTURES=${GPU_BENCH_FIXTURES:-mtcnn,mobilenetv2,stylegan2,gpen,arcface_ir_se50,faceshifter_aei,beautygan,clip_text,styleclip_global,styleclip_mapper}
NETS=${GPU_BENCH_NETS:-stylegan2-1024,stylegan2-256,gpen-512,gpen-256,arcface-112,aei-256,beautygan-256,mobilenetv2-224,clip-text,clip-tokenize}
REF_BACKEND=${GPU_BENCH_REF_BACKEND:-cuda}
BACKEND=${GPU_BENCH_BACKEND:-wgpu}
SHOT_BACKEND=${GPU_BENCH_SHOT_BACKEND:-wgpu}
SHOT_SIZE=${GPU_BENCH_SHOT_SIZE:-2000x3000}
RUNS=${GPU_BENCH_RUNS:-5}
SHOT_RUNS=${GPU_BENCH_SHOT_RUNS:-3}
THREADS=${GPU_BENCH_THREADS:-$(nproc)}
DEADLINE=${GPU_BENCH_DEADLINE_S:-465}
LOADER=${GPU_BENCH_LOADER:-auto}

mkdir -p "$OUT"
rm -rf "$WORK"
mkdir -p "$WORK/parts"
LOG="$OUT/gpu-bench.log"
exec > >(tee "$LOG") 2>&1
TEE_PID=$!
say() { echo "== [$(($(date +%s) - START)) s] $*"; }

# Each part leaves WORK/parts/NAME.status (shell words: status rc start end budget reason) and
# WORK/parts/NAME.log; gpu_bench_report.py turns them and the parts' own JSON into the report.
record() { # name status rc start end budget reason
  printf 'status=%q\nrc=%q\nstart=%q\nend=%q\nbudget=%q\nreason=%q\n' "$2" "$3" "$4" "$5" "$6" "$7" \
    >"$WORK/parts/$1.status"
}
wanted() { [[ ",$PARTS," == *",$1,"* ]]; }
run_part() { # name budget command...
  local name=$1 budget=${2}; shift 2
  local var="GPU_BENCH_T_${name^^}"
  budget=${!var:-$budget}
  local left=$((DEADLINE - ($(date +%s) - START)))
  if ((left < 10)); then
    say "$name: cut, ${left} s left of the ${DEADLINE} s deadline"
    record "$name" cut "" "$(date +%s.%N)" "$(date +%s.%N)" "$budget" "no time left before the run's deadline"
    return
  fi
  ((budget > left)) && budget=$left
  say "$name (limit ${budget} s)"
  local t0 t1 rc
  t0=$(date +%s.%N)
  timeout --kill-after=5 "$budget" "$@" 2>&1 | tee "$WORK/parts/$name.log"
  rc=${PIPESTATUS[0]}
  t1=$(date +%s.%N)
  if ((rc == 124 || rc == 137)); then
    record "$name" timed_out "$rc" "$t0" "$t1" "$budget" "cut at its ${budget} s limit"
  elif ((rc != 0)); then
    record "$name" failed "$rc" "$t0" "$t1" "$budget" "exit status $rc"
  else
    record "$name" ok 0 "$t0" "$t1" "$budget" ""
  fi
  say "$name: $(. "$WORK/parts/$name.status"; echo "$status")"
}
skip_part() { # name reason
  say "$1: skipped ($2)"
  record "$1" skipped "" "$(date +%s.%N)" "$(date +%s.%N)" 0 "$2"
}

# --- unpack -----------------------------------------------------------------------------------
say "unpacking the kit from $KIT"
if [[ ! -f $KIT/gpu_bench.xz || ! -d $KIT/ref ]] || ! compgen -G "$KIT/fixtures-*.tar.xz" >/dev/null; then
  echo "$KIT is not a complete kit (run scripts/gpu-kit.sh where Rust is, and carry .gpu-kit)" >&2
  exit 1
fi
if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1'; then
  if [[ $LOADER == auto ]] && compgen -G "$KIT/debs/*.deb" >/dev/null; then
    # The device README's recipe: the loader packages unpacked into / (the machine is bare and
    # given back after the session), then the linker cache refreshed.
    for f in "$KIT"/debs/*.deb; do dpkg -x "$f" /; done
    ldconfig
    say "Vulkan loader unpacked from $KIT/debs"
  else
    say "no libvulkan and GPU_BENCH_LOADER=$LOADER: wgpu will find no Vulkan adapter"
  fi
fi
NV_ICD=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [[ -z ${VK_DRIVER_FILES:-} && -f $NV_ICD ]]; then
  export VK_DRIVER_FILES=$NV_ICD
  export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
fi
xz -dc "$KIT/gpu_bench.xz" >"$WORK/gpu_bench" && chmod +x "$WORK/gpu_bench" || exit 1
for f in "$KIT"/fixtures-*.tar.xz "$ROOT"/.gpu-kit-2/fixtures-*.tar.xz; do
  if [[ -f $f ]]; then tar -xJf "$f" -C "$WORK" || exit 1; fi
done
for name in ${FIXTURES//,/ }; do
  # Its part then fails in the report; the others still run.
  [[ -f $WORK/fixtures/$name/meta.json ]] || say "fixture $name is not in the kit: was .gpu-kit-2 carried (docs/gpu-kit.md)?"
done
if ! "$PY" -c 'import ftfy, regex' 2>/dev/null && compgen -G "$KIT/wheels/*.whl" >/dev/null; then
  # CLIP's tokenizer needs ftfy; the machine's image has regex but not ftfy.
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$WORK/site" \
    "$KIT"/wheels/*.whl && export PYTHONPATH="$WORK/site${PYTHONPATH:+:$PYTHONPATH}"
fi
VOCAB="$KIT/ref/openai/CLIP/clip/bpe_simple_vocab_16e6.txt.gz"
export FACECAST_CLIP_VOCAB=$VOCAB
# Nothing of the user's data directory is read or written.
export FACECAST_DATA_DIR="$WORK/data"
export RAYON_NUM_THREADS=$THREADS
say "unpacked"

# --- GPU memory -------------------------------------------------------------------------------
MEM_PID=
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >"$WORK/gpu.txt" 2>&1
  (
    while :; do
      echo "$(date +%s.%N) $(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1)"
      sleep 0.2
    done
  ) >"$WORK/gpumem.log" 2>/dev/null &
  MEM_PID=$!
fi

# Each GPU part gets its own empty kernel caches: burn/cubecl's (--kernel-cache) and the NVIDIA
# driver's shader disk cache, so one part's first call is not warmed by another's.
fresh_caches() { # name
  mkdir -p "$WORK/cache-$1/nv"
  export __GL_SHADER_DISK_CACHE_PATH="$WORK/cache-$1/nv"
}

# --- parts ------------------------------------------------------------------------------------
BIN="$WORK/gpu_bench"
wanted adapters && run_part adapters 20 "$BIN" adapters --json "$WORK/adapters.json"

if wanted reference_check; then
  if [[ -d $WORK/fixtures/gpen && -d $WORK/fixtures/beautygan && -d $WORK/fixtures/clip_text ]]; then
    run_part reference_check 25 "$PY" "$ROOT/scripts/bench_nets_reference.py" --ref-dir "$KIT/ref" \
      --threads "$THREADS" --check-fixtures "$WORK/fixtures"
  else
    skip_part reference_check "needs the gpen, beautygan and clip_text fixtures"
  fi
fi

if wanted fixtures; then
  DIRS=()
  for name in ${FIXTURES//,/ }; do DIRS+=("$WORK/fixtures/$name"); done
  fresh_caches fixtures
  run_part fixtures 120 "$BIN" --kernel-cache "$WORK/cache-fixtures" check-fixtures \
    --backend "$BACKEND" --json "$WORK/fixtures.json" "${DIRS[@]}"
fi

if wanted nets; then
  fresh_caches nets
  budget=${GPU_BENCH_T_NETS:-180}
  left=$((DEADLINE - ($(date +%s) - START)))
  ((budget > left)) && budget=$left
  # Cases not started 40 s before the part's limit are recorded as skipped: the case under way
  # then has time to finish and the driver to write its report.
  run_part nets 180 "$PY" "$ROOT/scripts/bench_nets.py" \
    --reference "$PY $ROOT/scripts/bench_nets_reference.py --ref-dir $KIT/ref" \
    --facecast "facecast=$BIN --kernel-cache $WORK/cache-nets serve --vocab $VOCAB" \
    --threads "$THREADS" --runs "$RUNS" --wgpu-runs "$RUNS" --budget-s 20 \
    --total-budget-s $((budget > 60 ? budget - 40 : budget / 2)) \
    --cases "" --wgpu-cases "$NETS" --ref-backend "$REF_BACKEND" --json "$WORK/nets.json"
fi

if wanted shot || wanted shot_cached; then
  if [[ -f $WORK/fixtures/mtcnn/pnet.pt ]]; then
    SHOT=(shot --backend "$SHOT_BACKEND" --mtcnn "$WORK/fixtures/mtcnn"
      --face "$WORK/fixtures/mtcnn/astronaut.png" --width "${SHOT_SIZE%x*}" --height "${SHOT_SIZE#*x}"
      --runs "$SHOT_RUNS")
    fresh_caches shot
    wanted shot && run_part shot 60 "$BIN" --kernel-cache "$WORK/cache-shot" "${SHOT[@]}" \
      --json "$WORK/shot.json"
    # Same caches, new process: what a user's second start costs once the caches are kept.
    wanted shot_cached && run_part shot_cached 40 "$BIN" --kernel-cache "$WORK/cache-shot" "${SHOT[@]}" \
      --json "$WORK/shot_cached.json"
  else
    wanted shot && skip_part shot "needs the mtcnn fixture (MTCNN's weights and the face photo)"
    wanted shot_cached && skip_part shot_cached "needs the mtcnn fixture"
  fi
fi

# --- report -----------------------------------------------------------------------------------
[[ -n $MEM_PID ]] && kill "$MEM_PID" 2>/dev/null
say "writing the report"
"$PY" "$ROOT/scripts/gpu_bench_report.py" --work "$WORK" --kit "$KIT" --parts "$PARTS" \
  --started "$START" --deadline "$DEADLINE" \
  --settings "backend=$BACKEND ref_backend=$REF_BACKEND shot_backend=$SHOT_BACKEND shot_size=$SHOT_SIZE runs=$RUNS shot_runs=$SHOT_RUNS threads=$THREADS" \
  --json "$OUT/gpu-bench.json"
say "done: $OUT/gpu-bench.json"
# Let tee write the last lines before the command returns.
exec >&- 2>&-
wait "$TEE_PID" 2>/dev/null || true
