"""A peer's worker process and its line protocol (measure/peers/worker.py is the other end)."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
from pathlib import Path


class WorkerError(RuntimeError):
    """A worker died, hung, or answered something unexpected."""




class Worker:
    """One implementation's process and its line protocol (see peers/worker.py)."""

    def __init__(self, name: str, argv: list[str], env: dict, log_path: Path):
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "w", encoding="utf-8")
        self._lines: queue.Queue = queue.Queue()
        self.t_spawn = time.perf_counter()
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True, bufsize=1, env=env)
        threading.Thread(target=self._read, name=f"worker-{name}", daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            self._lines.put((time.perf_counter(), obj))
        self._lines.put((time.perf_counter(), None))

    def log_tail(self, n: int = 3) -> str:
        try:
            lines = [ln.strip() for ln in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
        except OSError:
            return ""
        return " | ".join(lines[-n:])

    def send(self, command: str) -> None:
        try:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError) as exc:
            raise WorkerError(f"{self.name}: worker gone ({exc.__class__.__name__}); {self.log_tail()}") from None

    def receive(self, timeout: float) -> tuple[float, dict]:
        try:
            t, obj = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise WorkerError(f"{self.name}: no answer within {timeout:.0f} s") from None
        if obj is None:
            try:
                rc = self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                rc = None
            raise WorkerError(f"{self.name}: worker exited (status {rc}); {self.log_tail()}")
        return t, obj

    def expect(self, event: str, timeout: float) -> tuple[float, dict]:
        t, obj = self.receive(timeout)
        if obj.get("event") == "error":
            raise WorkerError(obj.get("error") or f"{self.name}: error")
        if obj.get("event") != event:
            raise WorkerError(f"{self.name}: expected {event}, got {obj.get('event')!r}")
        return t, obj

    def alive(self) -> bool:
        return self.proc.poll() is None

    def memory_mb(self) -> dict:
        from whisper_ort.measure.peers.worker import proc_status_mb

        return proc_status_mb(self.proc.pid)

    def close(self, timeout: float = 30.0) -> None:
        if self.alive():
            try:
                self.send("quit")
                self.proc.wait(timeout=timeout)
            except (WorkerError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def worker_env(threads: int) -> dict:
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([package_root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.update(
        {
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "TRANSFORMERS_VERBOSITY": "error",
            "PYTHONUNBUFFERED": "1",
            "OMP_NUM_THREADS": str(threads),
            "MKL_NUM_THREADS": str(threads),
            "OPENBLAS_NUM_THREADS": str(threads),
        }
    )
    return env
