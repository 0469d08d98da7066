"""This CPU's peak int8 and fp32 multiply-accumulate rates, and sustained GEMMs to check them.

    python benchmarks/cpu_peak.py            # prints the derivation as JSON

Peak = usable cores × MACs per cycle per core × measured clock, where
- MACs/cycle/core, int8: 2 VPDPBUSD per cycle × (512 bits / 32-bit lanes = 16 lanes × 4 u8·s8
  products) = 128 with AVX-512 VNNI (64 with 256-bit AVX-VNNI; 32 via AVX2 vpmaddubsw);
- MACs/cycle/core, fp32: 2 FMA pipes × 16 fp32 lanes = 32 with AVX-512 (16 with AVX2 FMA);
- the clock is measured: a chain of dependent 1-cycle integer adds, compiled with gcc and timed
  (falls back to /proc/cpuinfo's MHz when gcc is missing);
- two issue ports for VPDPBUSD/FMA is the assumption for AMD Zen 4/5 and recent Intel cores;
  the sustained GEMMs (onnxruntime MatMulInteger u8×s8→s32 and fp32 MatMul, all usable
  threads) show how much of it a real kernel reaches.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

CLOCK_C = r"""
#include <stdio.h>
#include <time.h>
int main(void) {
    unsigned long x = 0, n = 400000000UL;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (unsigned long i = 0; i < n; i++) {
        __asm__ volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
                         "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0" : "+r"(x));
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double s = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
    printf("%f %lu\n", 8.0 * n / s / 1e9, x);
    return 0;
}
"""


def cpu_flags() -> set[str]:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


THROUGHPUT_C = r"""
#include <stdio.h>
#include <time.h>
#define N 2048
float x[N];
int main(void) {
    for (int i = 0; i < N; i++) x[i] = (float)i * 1e-3f;
    long reps = 4000000;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long r = 0; r < reps; r++) {
        for (int i = 0; i < N; i++) x[i] = x[i] * 0.999f + 0.001f;
        __asm__ volatile("" ::: "memory");
        if (r == 0) {  /* calibrate to about 0.15 s */
            struct timespec c;
            clock_gettime(CLOCK_MONOTONIC, &c);
            double one = (c.tv_sec - a.tv_sec) + (c.tv_nsec - a.tv_nsec) / 1e9;
            if (one > 0 && 0.15 / one < reps) reps = (long)(0.15 / one) + 1;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double s = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
    printf("%f %f\n", 2.0 * N * reps / s / 1e9, x[7]);
    return 0;
}
"""


PINGPONG_C = r"""
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static _Atomic long flag __attribute__((aligned(64)));
static long rounds = 100000;
static int cpu_a, cpu_b;
static void pin(int c) {
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(c, &s);
    pthread_setaffinity_np(pthread_self(), sizeof s, &s);
}
static void *pong(void *arg) {
    pin(cpu_b);
    for (long i = 0; i < rounds; i++) {
        while (atomic_load_explicit(&flag, memory_order_acquire) != 2 * i + 1) ;
        atomic_store_explicit(&flag, 2 * i + 2, memory_order_release);
    }
    return arg;
}
int main(int argc, char **argv) {
    cpu_a = argc > 2 ? atoi(argv[1]) : 0;
    cpu_b = argc > 2 ? atoi(argv[2]) : 1;
    pthread_t t;
    pin(cpu_a);
    pthread_create(&t, 0, pong, 0);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < rounds; i++) {
        atomic_store_explicit(&flag, 2 * i + 1, memory_order_release);
        while (atomic_load_explicit(&flag, memory_order_acquire) != 2 * i + 2) ;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    pthread_join(t, 0);
    double s = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
    printf("%f\n", s / rounds / 2 * 1e9);
    return 0;
}
"""


def compile_c(workdir: Path, name: str, source: str, *flags: str) -> Path | None:
    """`source` compiled with gcc into `workdir`/`name`, or None when gcc (or the flags) fail."""
    src, exe = workdir / f"{name}.c", workdir / name
    src.write_text(source)
    try:
        subprocess.run(["gcc", *flags, "-o", str(exe), str(src)], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return exe


def compile_clock(workdir: Path) -> Path | None:
    """The dependent-add chain compiled with gcc into `workdir`, or None when gcc is missing."""
    return compile_c(workdir, "clock", CLOCK_C, "-O1")


def compile_throughput(workdir: Path) -> Path | None:
    """A vectorised multiply-add over an L1-resident array (about 0.15 s per run): throughput-bound,
    so it slows down when another thread shares its physical core."""
    return compile_c(workdir, "throughput", THROUGHPUT_C, "-O2", "-march=native")


def compile_pingpong(workdir: Path) -> Path | None:
    """Two threads pinned to two CPUs handing one cache line back and forth: prints the one-way
    core-to-core latency in ns (tens of ns when the CPUs share a cache, hundreds when they do not)."""
    return compile_c(workdir, "pingpong", PINGPONG_C, "-O2", "-pthread")


def run_pingpong(exe: Path, cpus: list[int]) -> float:
    """One-way core-to-core latency in ns between cpus[0] and cpus[1] (about 0.05 s per run)."""
    # a timeout in case the two threads ever end up on one CPU, where each hand-off waits for a time slice
    out = subprocess.run([str(exe), *map(str, cpus)], capture_output=True, text=True, check=True, timeout=60).stdout
    return float(out.split()[0])


def run_pinned(exe: Path, cpus: list[int]) -> list[float]:
    """GFLOP/s of `exe` run once on each CPU in `cpus`, all at the same time, each pinned to its CPU."""

    def pin(cpu: int):
        return lambda: os.sched_setaffinity(0, {cpu})

    procs = [subprocess.Popen([str(exe)], stdout=subprocess.PIPE, text=True, preexec_fn=pin(c)) for c in cpus]
    return [float(p.communicate(timeout=60)[0].split()[0]) for p in procs]


def run_clock(exe: Path) -> float:
    """The clock in GHz from one run of the compiled chain (about 0.9 s)."""
    return float(subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()[0])


def measured_clock_ghz() -> tuple[float, str]:
    with tempfile.TemporaryDirectory() as tmp:
        exe = compile_clock(Path(tmp))
        if exe is not None:
            try:
                return max(run_clock(exe) for _ in range(3)), "dependent-add chain (gcc), best of 3"
            except (OSError, subprocess.CalledProcessError):
                pass
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("cpu MHz"):
            return float(line.split(":")[1]) / 1000, "/proc/cpuinfo (gcc unavailable)"
    return 0.0, "unknown"


def macs_per_cycle(flags: set[str]) -> dict[str, int]:
    if "avx512_vnni" in flags or "avx512vnni" in flags:
        int8 = 2 * 16 * 4
    elif "avx_vnni" in flags:
        int8 = 2 * 8 * 4
    else:
        int8 = 2 * 8 * 2  # AVX2 vpmaddubsw: 16-bit pair sums, half the rate
    fp32 = 2 * 16 if "avx512f" in flags else 2 * 8
    return {"int8": int8, "fp32": fp32}


def _gemm_session(op: str, m: int, k: int, n: int, threads: int):
    import onnxruntime as ort
    from onnx import TensorProto, helper

    if op == "int8":
        a = helper.make_tensor_value_info("A", TensorProto.UINT8, [m, k])
        b = helper.make_tensor_value_info("B", TensorProto.INT8, [k, n])
        y = helper.make_tensor_value_info("Y", TensorProto.INT32, [m, n])
        node = helper.make_node("MatMulInteger", ["A", "B"], ["Y"])
    else:
        a = helper.make_tensor_value_info("A", TensorProto.FLOAT, [m, k])
        b = helper.make_tensor_value_info("B", TensorProto.FLOAT, [k, n])
        y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [m, n])
        node = helper.make_node("MatMul", ["A", "B"], ["Y"])
    graph = helper.make_graph([node], "gemm", [a, b], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def sustained_gemm(op: str, threads: int, m: int = 2048, k: int = 1024, n: int = 1024, seconds: float = 2.0) -> float:
    """MACs per second of a large GEMM held for about `seconds`."""
    rng = np.random.default_rng(0)
    sess = _gemm_session(op, m, k, n, threads)
    if op == "int8":
        feeds = {"A": rng.integers(0, 255, (m, k), dtype=np.uint8), "B": rng.integers(-127, 127, (k, n), dtype=np.int8)}
    else:
        feeds = {"A": rng.standard_normal((m, k), dtype=np.float32), "B": rng.standard_normal((k, n), dtype=np.float32)}
    sess.run(None, feeds)
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        sess.run(None, feeds)
        best = max(best, m * k * n / (time.perf_counter() - t0))
    return best


def measure(quick: bool = False) -> dict:
    flags = cpu_flags()
    cores = len(os.sched_getaffinity(0))
    ghz, how = measured_clock_ghz()
    per_cycle = macs_per_cycle(flags)
    seconds = 0.3 if quick else 2.0
    result = {
        "usable_cores": cores,
        "clock_ghz": ghz,
        "clock_method": how,
        "macs_per_cycle_per_core": per_cycle,
        "isa": sorted(f for f in flags if f.startswith(("avx512", "avx_vnni", "amx", "fma"))),
        "peak_int8_gmacs": cores * per_cycle["int8"] * ghz,
        "peak_fp32_gmacs": cores * per_cycle["fp32"] * ghz,
        "gemm_int8_gmacs": sustained_gemm("int8", cores, seconds=seconds) / 1e9,
        "gemm_fp32_gmacs": sustained_gemm("fp32", cores, seconds=seconds) / 1e9,
    }
    result["gemm_int8_fraction_of_peak"] = result["gemm_int8_gmacs"] / result["peak_int8_gmacs"]
    result["gemm_fp32_fraction_of_peak"] = result["gemm_fp32_gmacs"] / result["peak_fp32_gmacs"]
    return result


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
