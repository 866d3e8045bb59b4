"""What the benchmark reports say about the machine they ran on, shared by bench_nets.py and
gpu_bench_report.py so that both name the CPU the same way."""

import platform


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
