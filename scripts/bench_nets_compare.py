"""Prints bench_nets.py's report as a Markdown table of medians and ratios.

ratio = reference median / Facecast median (minima in brackets): above 1 Facecast is faster. The wgpu column is
compared with the same reference (CPU) median. Usage: bench_nets_compare.py REPORT.json [...]
(several reports: one table each, e.g. before/after a change).
"""

import json
import sys


def cell(row):
    if row is None:
        return "–"
    if "error" in row and not row.get("samples"):
        return "error"
    flag = "" if row.get("finite", True) else " (non-finite!)"
    low = f", min {row['min_ms']:.1f}" if "min_ms" in row else ""
    return f"{row['median_ms']:.1f} ({len(row['samples'])}{low}){flag}"


def ratio(ref, other):
    """Ratio of the medians, and of the minima in brackets."""
    if not ref or not other or "median_ms" not in ref or "median_ms" not in other:
        return "–"
    text = f"{ref['median_ms'] / other['median_ms']:.2f}×"
    if "min_ms" in ref and "min_ms" in other:
        text += f" ({ref['min_ms'] / other['min_ms']:.2f}×)"
    return text


def table(path):
    with open(path) as f:
        rep = json.load(f)
    ref_info, fc_info = rep["reference"], rep["facecast"]
    m = rep["machine"]
    print(f"Run {rep['date']} on {m['cpu']} ({m['cores']} cores), load average "
          f"{m['loadavg_start'][0]:.1f} at the start, {m.get('loadavg_end', [float('nan')])[0]:.1f} at the end, "
          f"{rep['wall_s'] / 60:.1f} min.")
    print(f"Reference: {ref_info['tool']}, torch {ref_info['torch']}, {ref_info['threads']} threads. "
          f"Facecast: {fc_info['profile']} build, {fc_info['rayon_threads']} rayon threads"
          + (f"; wgpu adapter: {rep['wgpu_label']}." if rep.get("wgpu_label") else "."))
    print()
    sides = list(rep.get("facecast_sides", {"facecast": fc_info}))
    head = "| case | reference ms (n) |"
    rule = "|---|---:|"
    for side in sides:
        head += f" {side} CPU ms (n) | ratio |"
        rule += "---:|---:|"
    head += " Facecast wgpu ms (n) | wgpu ratio |"
    rule += "---:|---:|"
    print(head)
    print(rule)
    by = {}
    order = []
    for row in rep["rows"]:
        if row["case"] not in by:
            order.append(row["case"])
        by.setdefault(row["case"], {})[(row["side"], row["backend"])] = row
    for case in order:
        rows = by[case]
        r = rows.get(("reference", "cpu"))
        line = f"| {case} | {cell(r)} |"
        for side in sides:
            c = rows.get((side, "cpu"))
            line += f" {cell(c)} | {ratio(r, c)} |"
        g = rows.get((sides[0], "wgpu"))
        line += f" {cell(g)} | {ratio(r, g)} |"
        print(line)
    print()


def main():
    for path in sys.argv[1:]:
        table(path)


if __name__ == "__main__":
    main()
