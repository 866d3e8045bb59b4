"""Gathers what scripts/gpu-bench.sh's parts left in its work folder into ONE JSON report, and
prints a short Markdown summary (the tables for benches/RESULTS.md).

Every part named in --parts appears in the report with its status (ok, failed, timed_out, cut,
skipped, or missing when it left nothing), its time, its limit, the end of its log, its peak GPU
memory (from nvidia-smi polling, when there was nvidia-smi) and its own JSON result, so nothing is
dropped silently.

Usage: gpu_bench_report.py --work DIR --kit DIR --parts a,b,c --started EPOCH --deadline S
                           --settings "k=v ..." --json OUT
"""

import argparse
import datetime
import json
import os
import shlex
import time

from bench_host import cpu_model

RESULT_FILES = {
    "adapters": "adapters.json",
    "fixtures": "fixtures.json",
    "nets": "nets.json",
    "shot": "shot.json",
    "shot_cached": "shot_cached.json",
}


def read_status(path):
    status = {}
    with open(path) as f:
        for line in f:
            key, _, value = line.rstrip("\n").partition("=")
            words = shlex.split(value) if value else []
            status[key] = words[0] if words else ""
    return status


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f), None
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError) as e:
        return None, f"{os.path.basename(path)}: {e}"


def tail(path, lines=40):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def memory_samples(work):
    """(epoch, MiB) pairs polled during the run; None when nvidia-smi was not there."""
    path = os.path.join(work, "gpumem.log")
    if not os.path.exists(path):
        return None
    samples = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            try:
                samples.append((float(parts[0]), float(parts[1])))
            except (IndexError, ValueError):
                pass
    return samples


def peak_memory(samples, start, end):
    if samples is None:
        return {"available": False, "reason": "nvidia-smi not found: GPU memory not polled"}
    during = [mib for t, mib in samples if start <= t <= end]
    before = [mib for t, mib in samples if t < start]
    if not during:
        return {"available": False, "reason": "no sample inside the part (shorter than the 0.2 s poll)"}
    baseline = before[-1] if before else during[0]
    return {
        "available": True,
        "peak_used_mib": max(during),
        "baseline_used_mib": baseline,
        "peak_above_baseline_mib": max(during) - baseline,
        "samples": len(during),
    }


def summary(report):
    """Markdown lines: what passed, the ratio table, the shot."""
    out = []
    parts = report["parts"]
    out.append(f"GPU benchmark kit run {report['date']} on {report['machine']['gpu'] or 'no NVIDIA GPU'}"
               f" ({report['machine']['cpu']}, {report['machine']['cores']} cores), {report['wall_s']:.0f} s.")
    out.append("")
    out.append("| part | status | seconds | peak GPU memory above baseline |")
    out.append("|---|---|---:|---:|")
    for name, p in parts.items():
        mem = p.get("gpu_memory", {})
        peak = f"{mem['peak_above_baseline_mib']:.0f} MiB" if mem.get("available") else "–"
        status = p["status"] + (f" ({p['reason']})" if p.get("reason") else "")
        out.append(f"| {name} | {status} | {p.get('seconds', 0):.1f} | {peak} |")
    out.append("")
    adapters = (parts.get("adapters") or {}).get("result")
    if adapters:
        kit = adapters.get("kit_wgpu", {})
        out.append(f"wgpu adapter used: {kit.get('label', kit.get('error'))}")
        out.append("")
    fixtures = (parts.get("fixtures") or {}).get("result")
    if fixtures:
        out.append(f"Fixtures on {fixtures['backend']}: {fixtures.get('cases_passed', 0)} cases passed, "
                   f"{fixtures.get('cases_failed', 0)} failed.")
        out.append("")
        out.append("| fixture | result | ms |")
        out.append("|---|---|---:|")
        for fx in fixtures["fixtures"]:
            cases = fx.get("cases", [])
            res = fx.get("error") or f"{sum(c['passed'] for c in cases)}/{len(cases)} cases pass"
            out.append(f"| {fx.get('model') or os.path.basename(fx['dir'])} | {res} | {fx['ms']:.0f} |")
        out.append("")
    nets = (parts.get("nets") or {}).get("result")
    if nets:
        ref_b = nets.get("ref_backend") or "cpu"
        by = {}
        for row in nets["rows"]:
            by.setdefault(row["case"], {})[(row["side"], row["backend"])] = row

        def cell(row):
            if row is None:
                return "–"
            if row.get("skipped"):
                return "skipped"
            if "median_ms" not in row:
                return "error" if "error" in row else "–"
            flag = "" if row.get("finite", True) else " (non-finite!)"
            return f"{row['median_ms']:.2f} ({len(row['samples'])}){flag}"

        def first(row):
            return f"{row['warmup_ms']:.0f}" if row and "warmup_ms" in row else "–"

        out.append(f"Networks: official PyTorch code on {ref_b} against Facecast on "
                   f"{nets.get('wgpu_label') or 'wgpu'}; ratio = reference / Facecast (above 1: Facecast faster).")
        out.append("")
        out.append(f"| case | reference {ref_b} ms (n) | Facecast wgpu ms (n) | ratio | first call ref / wgpu ms |")
        out.append("|---|---:|---:|---:|---:|")
        cut = nets.get("in_progress")
        if cut:
            for row in cut["rows"]:
                row = dict(row, cut=True)
                if row["samples"]:
                    row["median_ms"] = sorted(row["samples"])[len(row["samples"]) // 2]
                by.setdefault(row["case"] + " (cut while running)", {})[(row["side"], row["backend"])] = row
        for case, rows in by.items():
            r = rows.get(("reference", ref_b))
            g = next((v for (side, b), v in rows.items() if b == "wgpu"), None)
            ratio = (f"{r['median_ms'] / g['median_ms']:.2f}×"
                     if r and g and "median_ms" in r and "median_ms" in g else "–")
            out.append(f"| {case} | {cell(r)} | {cell(g)} | {ratio} | {first(r)} / {first(g)} |")
        out.append("")
    for name in ("shot", "shot_cached"):
        shot = (parts.get(name) or {}).get("result")
        if not shot:
            continue
        first = shot.get("first", {})
        med = shot.get("median", {})
        photo = shot.get("photo", {})
        if not first:
            out.append(f"{name} on {shot['backend']}: built its networks in {shot.get('build_ms', 0):.0f} ms, "
                       "no shot finished.")
            continue
        if not med:
            out.append(f"{name} on {shot['backend']} ({photo.get('width')}×{photo.get('height')}, "
                       f"{first.get('faces')} faces): first shot {first['total_ms']:.0f} ms "
                       f"(detect {first['detect_ms']:.0f}, swap {first['swap_ms']:.0f}, GPEN-512 + paste "
                       f"{first['restore_ms']:.0f}), {shot.get('process_to_first_shot_ms', 0):.0f} ms from the "
                       "process start; no warm run.")
            continue
        out.append(
            f"{name} on {shot['backend']} ({photo.get('width')}×{photo.get('height')}, "
            f"{first.get('faces', '?')} faces): first shot {first.get('total_ms', float('nan')):.0f} ms, "
            f"{shot.get('process_to_first_shot_ms', float('nan')):.0f} ms from the process start; "
            f"warm median {med.get('total_ms', float('nan')):.0f} ms over {shot.get('warm_runs', 0)} runs "
            f"(detect {med.get('detect_ms', float('nan')):.0f}, swap {med.get('swap_ms', float('nan')):.0f}, "
            f"GPEN-512 + paste {med.get('restore_ms', float('nan')):.0f})."
        )
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--kit", required=True)
    ap.add_argument("--parts", required=True)
    ap.add_argument("--started", type=float, required=True)
    ap.add_argument("--deadline", type=float, required=True)
    ap.add_argument("--settings", default="")
    ap.add_argument("--json", required=True)
    args = ap.parse_args()

    samples = memory_samples(args.work)
    gpu = None
    gpu_txt = os.path.join(args.work, "gpu.txt")
    if os.path.exists(gpu_txt):
        gpu = open(gpu_txt).read().strip()
    manifest = tail(os.path.join(args.kit, "MANIFEST.txt"), 200)
    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "gpu": gpu},
        "kit_manifest": manifest,
        "settings": dict(kv.split("=", 1) for kv in args.settings.split() if "=" in kv),
        "deadline_s": args.deadline,
        "parts": {},
    }
    for name in [p for p in args.parts.split(",") if p]:
        status_path = os.path.join(args.work, "parts", f"{name}.status")
        if not os.path.exists(status_path):
            report["parts"][name] = {"status": "missing", "reason": "the part left no status (the script stopped before it)"}
            continue
        st = read_status(status_path)
        start = float(st.get("start") or 0)
        end = float(st.get("end") or 0)
        part = {
            "status": st.get("status"),
            "rc": int(st["rc"]) if st.get("rc") else None,
            "seconds": max(0.0, end - start),
            "budget_s": float(st.get("budget") or 0),
            "reason": st.get("reason") or None,
            "gpu_memory": peak_memory(samples, start, end),
        }
        if part["status"] != "ok":
            part["log_tail"] = tail(os.path.join(args.work, "parts", f"{name}.log"))
        if name in RESULT_FILES:
            result, error = read_json(os.path.join(args.work, RESULT_FILES[name]))
            part["result"] = result
            if error:
                part["result_error"] = error
        elif name == "reference_check":
            part["log"] = tail(os.path.join(args.work, "parts", f"{name}.log"), 20)
        report["parts"][name] = part
    report["wall_s"] = time.time() - args.started
    report["summary_markdown"] = summary(report)
    with open(args.json, "w") as f:
        json.dump(report, f, indent=2)
    print(report["summary_markdown"])


if __name__ == "__main__":
    main()
