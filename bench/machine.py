"""What the numbers were measured on: cores, CPU and its flags, measured matmul speed, load, peak memory."""
import os
import platform
import time

import numpy as np


def peak_rss_mb():
    """This process's peak resident memory (VmHWM). Not ru_maxrss: Linux carries that over
    from the parent across fork + exec, so a child would report the benchmark's own peak."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise OSError("no VmHWM in /proc/self/status")


def cpu_model():
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# The instruction sets that change the network's speed: AVX2 (every laptop since ~2015),
# AVX-512, native bfloat16 (torch's bfloat16 is only fast with it) and VNNI (int8).
FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16")


def cpu_flags(flags=FLAGS):
    """{flag: present} for ``flags``, from /proc/cpuinfo (all False where it cannot be read)."""
    try:
        with open("/proc/cpuinfo") as fh:
            have = next((line.split(":", 1)[1].split() for line in fh if line.startswith("flags")), [])
    except OSError:
        have = []
    return {flag: flag in have for flag in flags}


def flags_text(flags=None):
    """'avx2 yes, avx512f yes, avx512_bf16 no, ...': the line every benchmark table states."""
    flags = cpu_flags() if flags is None else flags
    return ", ".join(f"{flag} {'yes' if present else 'no'}" for flag, present in flags.items())


def matmul_gflops(size=2048, repeats=5):
    """float32 matrix multiply speed (numpy's BLAS, all cores): the ceiling for the network."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size ** 3 / best / 1e9


def describe():
    return {"cores": os.cpu_count(), "cpu": cpu_model(), "cpu_flags": cpu_flags(), "matmul_gflops": matmul_gflops(),
            "load_average": os.getloadavg(), "python": platform.python_version(), "numpy": np.__version__,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default")}
