"""Prints facenet-pytorch's and Facecast's MTCNN timings side by side, as a Markdown table.

speed-up = reference median / Facecast median (above 1: Facecast is faster). The reference always
detects on the full photo; Facecast rows with a cap detect on a reduced copy.
"""

import json
import sys


def main():
    ref_path, fc_path = sys.argv[1], sys.argv[2]
    with open(ref_path) as f:
        ref = json.load(f)
    with open(fc_path) as f:
        fc = json.load(f)
    by_photo = {r["photo"]: r for r in ref["rows"]}
    print(f"reference: {ref['tool']}, torch {ref['torch']}, {ref['threads']} threads; "
          f"Facecast: {fc['profile']} build, {fc['rayon_threads']} rayon threads")
    print()
    print("| photo | size | Facecast backend | max_side | Facecast ms (n) | faces | reference ms (n) | ref faces | speed-up |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for row in fc["rows"]:
        r = by_photo.get(row["photo"])
        cap = f"{row['max_side']}" + (" (no effect)" if row["cap_inactive"] and row["max_side"] else "")
        if row["max_side"] == 0:
            cap = "0 (uncapped)"
        ref_cell = f"{r['median_ms']:.0f} ({r['runs']})" if r else "–"
        ref_faces = str(r["faces"]) if r else "–"
        ratio = f"{r['median_ms'] / row['median_ms']:.2f}×" if r else "–"
        print(f"| {row['photo']} | {row['width']}×{row['height']} | {row['backend']} | {cap} | "
              f"{row['median_ms']:.0f} ({row['runs']}) | {row['faces']} | {ref_cell} | {ref_faces} | {ratio} |")


if __name__ == "__main__":
    main()
