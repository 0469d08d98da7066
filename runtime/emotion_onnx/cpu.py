"""How many CPUs this process may actually use (affinity and cgroup quota, not the host's count)."""

from __future__ import annotations

import math
import os
from pathlib import Path


def _cgroup_v2_quota(root: Path) -> float | None:
    try:
        text = (root / "cpu.max").read_text().split()
    except OSError:
        return None
    if len(text) != 2 or text[0] == "max":
        return None
    quota, period = float(text[0]), float(text[1])
    return quota / period if period > 0 else None


def _cgroup_v1_quota(root: Path) -> float | None:
    try:
        quota = float((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = float((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    if quota <= 0 or period <= 0:
        return None
    return quota / period


def _own_cgroup_dir(cgroup_root: Path) -> Path:
    """The unified-hierarchy directory of this process's cgroup, falling back to the root."""
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            hierarchy, _, rel = line.split(":", 2)
            if hierarchy == "0":
                candidate = cgroup_root / rel.lstrip("/")
                if candidate.is_dir():
                    return candidate
    except (OSError, ValueError):
        pass
    return cgroup_root


def cgroup_cpu_limit(cgroup_root: str | Path = "/sys/fs/cgroup") -> float | None:
    """The CPU quota in CPUs (e.g. 1.5), or None when there is no quota."""
    root = Path(cgroup_root)
    quota = _cgroup_v2_quota(_own_cgroup_dir(root))
    if quota is None:
        quota = _cgroup_v2_quota(root)
    if quota is None:
        quota = _cgroup_v1_quota(root)
    return quota


def available_cpus(cgroup_root: str | Path = "/sys/fs/cgroup") -> int:
    """CPUs usable by this process: min(affinity mask, ceil(cgroup quota)), at least 1."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    quota = cgroup_cpu_limit(cgroup_root)
    if quota is not None:
        count = min(count, max(1, math.ceil(quota)))
    return max(1, count)


def thread_count(requested: object, what: str = "intra_op_threads") -> int:
    """The threads to run with: the usable CPUs when `requested` is None, else `requested` capped at
    them. More threads than CPUs only add memory (each thread holds its own buffers) and contention,
    so a number meant for a bigger machine is capped rather than honoured. Not a whole number of at
    least 1: ValueError naming `what`."""
    usable = available_cpus()
    if requested is None:
        return usable
    if not isinstance(requested, int) or isinstance(requested, bool) or requested < 1:
        raise ValueError(f"{what} must be a whole number of at least 1, got {requested!r}")
    return min(requested, usable)
