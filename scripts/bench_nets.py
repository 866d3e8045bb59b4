"""Drives the network benchmark: starts the PyTorch reference worker and Facecast's worker
(`bench_nets --serve`), then times every case on both, alternating reference, Facecast,
reference, Facecast… so that whatever else loads the machine weighs on both sides alike.
Writes every sample to a JSON report; bench_nets_compare.py turns it into the ratio table.

Each side keeps its networks built between runs (build time is reported, not timed); the first
run of each case on each side is a warm-up and not counted. A case stops early, after at least
three timed rounds, once it has used its time budget (counted from the end of the warm-up).

With --ref-backend cuda (scripts/gpu-bench.sh) the reference also runs every --wgpu-cases case on
CUDA, so each such case is timed as official code on CUDA against Facecast on wgpu. The report is
rewritten after every case, cases past --total-budget-s are recorded as skipped (not dropped),
and a worker that dies is recorded and started again for the next case.
"""

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time

from bench_host import cpu_model


class Worker:
    def __init__(self, name, argv, env):
        self.name = name
        self.argv = argv
        self.env = env
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=self.env, bufsize=1
        )
        self.info = self.read()
        if not self.info.get("ready"):
            raise RuntimeError(f"{self.name} did not start: {self.info}")

    def restart(self):
        """After a crash (a lost device, a panic): a fresh process for the next case."""
        try:
            self.proc.kill()
            self.proc.wait(timeout=30)
        except Exception:
            pass
        self.start()

    def read(self):
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.name} worker exited (code {self.proc.poll()})")
        return json.loads(line)

    def ask(self, command):
        try:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as e:
            raise RuntimeError(f"{self.name} worker is gone ({e})")
        return self.read()

    def close(self):
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=60)
        except Exception:
            self.proc.kill()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reference", required=True, help="reference worker command line (shell words)")
    ap.add_argument("--facecast", required=True, action="append",
                    help="Facecast worker command line (shell words); repeat as LABEL=COMMAND to time "
                         "several builds side by side (e.g. before/after a change)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--wgpu-runs", type=int, default=2)
    ap.add_argument("--budget-s", type=float, default=120.0, help="soft time budget per case")
    ap.add_argument("--cases", required=True, help="comma-separated cases for both sides on the CPU")
    ap.add_argument("--wgpu-cases", default="", help="comma-separated cases also run on Facecast's wgpu")
    ap.add_argument("--ref-backend", default="",
                    help="also run the reference on this backend (cuda, or cpu) for every --wgpu-cases "
                         "case, unless that row is already there")
    ap.add_argument("--total-budget-s", type=float, default=0.0,
                    help="cases not started within this many seconds are recorded as skipped (0: no limit)")
    ap.add_argument("--pause-s", type=float, default=0.3, help="idle gap between calls (OpenMP/rayon spin-down)")
    ap.add_argument("--json", required=True)
    args = ap.parse_args()

    import shlex

    env_ref = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    env_fc = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
    ref = Worker("reference", shlex.split(args.reference) + ["--threads", str(args.threads)], env_ref)
    fcs = []
    for spec in args.facecast:
        label, sep, command = spec.partition("=")
        if not sep or " " in label:
            label, command = "facecast", spec
        fcs.append(Worker(label, shlex.split(command), env_fc))
    fc = fcs[0]
    cases = [c for c in args.cases.split(",") if c]
    wgpu_cases = [c for c in args.wgpu_cases.split(",") if c]
    wgpu_label = None
    if wgpu_cases:
        reply = fc.ask("label wgpu")
        if "error" in reply:
            print(f"wgpu unavailable, skipped: {reply['error']}", file=sys.stderr)
            wgpu_cases = []
        else:
            wgpu_label = reply["label"]

    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "loadavg_start": os.getloadavg()},
        "threads": args.threads,
        "reference": ref.info,
        "facecast": fc.info,
        "facecast_sides": {w.name: w.info for w in fcs},
        "wgpu_label": wgpu_label,
        "rows": [],
    }
    report["ref_backend"] = args.ref_backend
    started_all = time.time()

    def save():
        report["wall_s"] = time.time() - started_all
        with open(args.json + ".part", "w") as f:
            json.dump(report, f, indent=2)
        os.replace(args.json + ".part", args.json)

    try:
        for case in cases + [c for c in wgpu_cases if c not in cases]:
            sides = []
            if case in cases:
                sides += [(ref, "cpu")] + [(w, "cpu") for w in fcs]
            if case in wgpu_cases:
                if args.ref_backend and (ref, args.ref_backend) not in sides:
                    sides.append((ref, args.ref_backend))
                sides.append((fc, "wgpu"))
            rows = {}
            for worker, backend in sides:
                rows[(worker.name, backend)] = {
                    "case": case, "side": worker.name, "backend": backend, "samples": [], "loadavg": [],
                }
            if args.total_budget_s and time.time() - started_all > args.total_budget_s:
                for row in rows.values():
                    row["skipped"] = f"not started: the part's {args.total_budget_s:.0f} s budget was spent"
                    report["rows"].append(row)
                print(f"{case}: skipped (budget spent)", file=sys.stderr, flush=True)
                save()
                continue
            started = time.time()
            for round_ in range(args.runs + 1):
                for worker, backend in sides:
                    row = rows[(worker.name, backend)]
                    limit = args.runs if backend == "cpu" else args.wgpu_runs
                    if round_ > limit or "error" in row:
                        continue
                    try:
                        reply = worker.ask(f"run {backend} {case}")
                    except RuntimeError as e:
                        row["error"] = f"{e}"
                        print(f"{case} {worker.name} {backend}: {e}; restarting it", file=sys.stderr, flush=True)
                        try:
                            worker.restart()
                        except Exception as again:
                            print(f"{worker.name} did not restart: {again}", file=sys.stderr, flush=True)
                        continue
                    if "error" in reply:
                        row["error"] = reply["error"]
                        print(f"{case} {worker.name} {backend}: {reply['error']}", file=sys.stderr)
                        continue
                    if "build_ms" in reply:
                        row["build_ms"] = reply["build_ms"]
                    row["finite"] = row.get("finite", True) and reply["finite"]
                    if "peak_mb" in reply:
                        row["peak_mb"] = max(row.get("peak_mb", 0.0), reply["peak_mb"])
                    if round_ == 0:
                        row["warmup_ms"] = reply["ms"]
                    else:
                        row["samples"].append(reply["ms"])
                        row["loadavg"].append(os.getloadavg()[0])
                    print(f"{case:<16} {worker.name:<9} {backend:<4} round {round_} {reply['ms']:10.1f} ms",
                          file=sys.stderr, flush=True)
                    # A run cut off mid-case (a time limit) still shows what this case measured.
                    report["in_progress"] = {"case": case, "rows": list(rows.values())}
                    save()
                    time.sleep(args.pause_s)
                if round_ == 0:
                    # The warm-up (wgpu compiles its shaders here: minutes on lavapipe) does not
                    # count against the budget, or the CPU rows of a wgpu case stop at 3 rounds.
                    started = time.time()
                if round_ >= 3 and time.time() - started > args.budget_s:
                    break
            for row in rows.values():
                if row["samples"]:
                    row["median_ms"] = statistics.median(row["samples"])
                    row["min_ms"] = min(row["samples"])
                report["rows"].append(row)
            report.pop("in_progress", None)
            save()
    finally:
        ref.close()
        for w in fcs:
            w.close()
    report["machine"]["loadavg_end"] = os.getloadavg()
    report["complete"] = True
    save()


if __name__ == "__main__":
    main()
