"""Small helpers shared by the benchmark parts: paths, /proc readings, machine facts."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def rel(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (and its reaped children), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    # fields[0] is state (field 3); utime is field 14, stime 15 → indices 11, 12
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_bytes(pid: int | None = None) -> int:
    path = Path(f"/proc/{pid or os.getpid()}/status")
    for line in path.read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def percentiles(values, ps=(50, 95, 99)) -> dict:
    import numpy as np

    if len(values) == 0:
        return {f"p{p}": None for p in ps}
    arr = np.asarray(values, dtype=float)
    out = {f"p{p}": round(float(np.percentile(arr, p)), 2) for p in ps}
    out["max"] = round(float(arr.max()), 2)
    out["mean"] = round(float(arr.mean()), 2)
    return out


def profile_top(path: Path, lines: int = 40) -> list[str]:
    try:
        text = path.read_text().splitlines()
    except OSError:
        return []
    body = [line.rstrip() for line in text if line.strip() and not set(line.strip()) <= {"_", "-", "="}]
    return body[:lines]


def _version(pkg: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(pkg)
    except PackageNotFoundError:
        return None


def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    except OSError:
        pass
    from worker.kafka.local_broker import kafka_version

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, timeout=10).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True,
                                timeout=10).stdout.splitlines()
        changed = sorted(line[3:] for line in status if line[3:].startswith(("worker/", "topics/")))
        dirty = bool(changed)
    except (OSError, subprocess.SubprocessError):
        commit, dirty, changed = "", None, []
    try:
        java = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=20).stderr.splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        java = ""
    return {
        "date_utc": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": round(mem / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "kafka": kafka_version(),
        "java": java,
        "packages": {p: _version(p) for p in ("faust-streaming", "aiokafka", "orjson", "numpy", "rensa",
                                              "pyahocorasick", "langdetect", "xxhash", "pyinstrument")},
        "git_commit": commit,
        "git_dirty": dirty,
        "uncommitted_worker_files_measured": changed,
    }
