"""Figures of a process from /proc and rusage, and the children's lifecycle helpers."""

from __future__ import annotations

import ctypes
import math
import os
import resource
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

CLK_TCK = os.sysconf("SC_CLK_TCK")
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _utime_stime(pid: int) -> tuple[float, float]:
    """Seconds in user and kernel mode of all threads of `pid` (/proc/<pid>/stat 14 and 15)."""
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(stat[11]) / CLK_TCK, int(stat[12]) / CLK_TCK


def cpu_seconds(pid: int) -> float:
    return sum(_utime_stime(pid))


def kernel_seconds(pid: int) -> float:
    return _utime_stime(pid)[1]


def status_mib(pid: int | str, key: str) -> float:
    """A kB figure of /proc/<pid>/status (VmRSS, VmHWM) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    return math.nan


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
    return usage.ru_utime + usage.ru_stime


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def die_with_parent() -> None:
    """In a child: have Linux SIGTERM it if the benchmark dies first."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def terminate_and_reap(proc: subprocess.Popen[bytes], timeout: float) -> tuple[int, Any]:
    """SIGTERM `proc` and reap it with wait4: its rusage covers every thread up to the exit."""
    proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.02)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage
