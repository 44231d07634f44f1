"""Resource limits for a worker process, the container-less way: CPU affinity and a memory cap.

CPU: `os.sched_setaffinity` (what `taskset -c` does) on the worker itself, before it
imports anything heavy. Memory: a cgroup v2 leaf with `memory.max` when this process's
cgroup v2 has the memory controller and is writable; otherwise `RLIMIT_AS`. RLIMIT_AS
caps virtual address space, not resident memory: torch and ONNX Runtime reserve more
address space than they touch, so a cap that a container would allow can fail under
RLIMIT_AS. The summary records which mechanism held.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

GIB = 1 << 30


def parse_cpus(spec: str | None) -> list[int] | None:
    """'0,1' / '0-3' / '0-1,4' / '0 1' -> sorted CPU ids (None for None/empty)."""
    if spec is None or not str(spec).strip():
        return None
    cpus: set[int] = set()
    for part in str(spec).replace(" ", ",").split(","):
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-", 1)
            cpus.update(range(int(lo), int(hi) + 1))
        else:
            cpus.add(int(part))
    return sorted(cpus)


def allowed_cpus() -> list[int]:
    return sorted(os.sched_getaffinity(0))


def _cgroup2_mount() -> Path | None:
    try:
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            left, _, right = line.partition(" - ")
            if right.split(" ", 1)[0] == "cgroup2":
                return Path(left.split()[4])
    except OSError:
        pass
    return None


def _own_cgroup2() -> Path | None:
    mount = _cgroup2_mount()
    if mount is None:
        return None
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                return mount / line[3:].lstrip("/")
    except OSError:
        pass
    return None


def cgroup_v2_parent() -> tuple[Path | None, str]:
    """The cgroup v2 folder a worker's leaf can be made in, or (None, why not)."""
    own = _own_cgroup2()
    if own is None:
        return None, "no cgroup v2 hierarchy for this process"
    try:
        if "memory" not in (own / "cgroup.controllers").read_text().split():
            return None, f"{own}: memory controller not available"
        if "memory" not in (own / "cgroup.subtree_control").read_text().split():
            (own / "cgroup.subtree_control").write_text("+memory")
    except OSError as exc:
        return None, f"{own}: cannot enable the memory controller for children ({exc.strerror or exc})"
    if not os.access(own, os.W_OK):
        return None, f"{own}: not writable"
    return own, "ok"


class MemoryCap:
    """A memory cap for one worker: a cgroup v2 leaf when possible, else RLIMIT_AS in the worker."""

    def __init__(self, gb: float | None, label: str):
        self.gb = gb
        self.bytes = int(gb * GIB) if gb else None
        self.cgroup: Path | None = None
        self.mechanism: str | None = None
        self.note = ""
        if not self.bytes:
            return
        parent, why = cgroup_v2_parent()
        if parent is not None:
            leaf = parent / f"whisper-ort-{os.getpid()}-{label}"
            try:
                leaf.mkdir(exist_ok=True)
                (leaf / "memory.max").write_text(str(self.bytes))
                if (leaf / "memory.swap.max").exists():
                    (leaf / "memory.swap.max").write_text("0")
                self.cgroup, self.mechanism = leaf, "cgroup_v2"
                return
            except OSError as exc:
                why = f"{leaf}: {exc.strerror or exc}"
                self._rmdir(leaf)
        self.mechanism = "rlimit_as"
        self.note = f"cgroup v2 memory.max not usable ({why}); RLIMIT_AS caps virtual memory instead"

    def worker_args(self) -> list[str]:
        if not self.bytes:
            return []
        args = ["--memory-bytes", str(self.bytes)]
        if self.cgroup is not None:
            args += ["--cgroup", str(self.cgroup)]
        return args

    def describe(self) -> dict:
        return {"memory_gb": self.gb, "memory_bytes": self.bytes, "memory_mechanism": self.mechanism, "cgroup": str(self.cgroup) if self.cgroup else None, "memory_note": self.note or None}

    @staticmethod
    def _rmdir(path: Path) -> None:
        try:
            path.rmdir()
        except OSError:
            pass

    def cleanup(self) -> None:
        if self.cgroup is not None:
            self._rmdir(self.cgroup)


def apply_in_worker(cpus: list[int] | None, memory_bytes: int | None, cgroup: str | None) -> dict:
    """Called by the worker first thing: pin CPUs, join the cgroup or set RLIMIT_AS; says what holds."""
    applied: dict = {"cpus": None, "memory_mechanism": None, "memory_bytes": memory_bytes}
    if cpus:
        os.sched_setaffinity(0, cpus)
    applied["cpus"] = allowed_cpus()
    if memory_bytes:
        joined = False
        if cgroup:
            try:
                Path(cgroup, "cgroup.procs").write_text(str(os.getpid()))
                joined = True
                applied["memory_mechanism"] = "cgroup_v2"
                applied["memory_max"] = Path(cgroup, "memory.max").read_text().strip()
            except OSError as exc:
                applied["cgroup_error"] = str(exc)
        if not joined:
            resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
            applied["memory_mechanism"] = "rlimit_as"
            applied["rlimit_as"] = resource.getrlimit(resource.RLIMIT_AS)[0]
    return applied
