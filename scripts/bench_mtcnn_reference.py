"""Times facenet-pytorch's MTCNN(keep_all=True).detect per photo, the reference for bench-mtcnn.sh.

Median of N runs after one warm-up, on photos already decoded (as the Rust bench does), with a
fixed number of torch threads. Writes a JSON report shaped like the Rust bench's.
"""

import argparse
import json
import os
import statistics
import time

import torch
from PIL import Image
from facenet_pytorch import MTCNN


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--budget-s", type=float, default=30.0)
    ap.add_argument("--json", required=True)
    ap.add_argument("photos", nargs="+")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    mtcnn = MTCNN(keep_all=True, device="cpu")
    rows = []
    for path in args.photos:
        img = Image.open(path).convert("RGB")
        times = []
        boxes = None
        started = time.perf_counter()
        for i in range(args.runs + 1):
            t = time.perf_counter()
            with torch.inference_mode():
                boxes, _probs = mtcnn.detect(img)
            ms = (time.perf_counter() - t) * 1e3
            if i > 0:
                times.append(ms)
                if len(times) >= 3 and time.perf_counter() - started > args.budget_s:
                    break
        heights = [] if boxes is None else [round(float(b[3] - b[1]) / img.height * 100, 1) for b in boxes]
        row = {
            "photo": os.path.basename(path),
            "width": img.width,
            "height": img.height,
            "runs": len(times),
            "median_ms": statistics.median(times),
            "min_ms": min(times),
            "faces": len(heights),
            "face_height_pct": heights,
        }
        print(f"{row['photo']:<20} {img.width}x{img.height} facenet-pytorch {row['median_ms']:10.1f} ms "
              f"(n={row['runs']}) faces {row['faces']} heights% {heights}", flush=True)
        rows.append(row)
    report = {
        "tool": "facenet-pytorch 2.6.0",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "rows": rows,
    }
    with open(args.json, "w") as f:
        json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
