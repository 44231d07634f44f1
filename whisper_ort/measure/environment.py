"""What a run records about the machine and the software: CPU, cores, versions, model identity."""

from __future__ import annotations

import hashlib
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path

PACKAGES = ("whisper-ort", "onnxruntime", "numpy", "tokenizers", "soundfile", "av", "soxr", "faster-whisper", "ctranslate2", "transformers", "torch", "optimum", "optimum-onnx")
COMPARE_PACKAGES = ("numpy", "onnxruntime", "ctranslate2", "faster-whisper", "torch", "transformers", "optimum", "optimum-onnx", "tokenizers", "librosa", "soundfile", "av", "jiwer")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def package_versions(names=PACKAGES) -> dict:
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def model_hash(model_dir: str | Path) -> str | None:
    """sha256 of the folder's manifest (which holds every file's sha256), else of the ONNX sizes."""
    model_dir = Path(model_dir)
    manifest = model_dir / "whisper_ort_manifest.json"
    if manifest.is_file():
        return hashlib.sha256(manifest.read_bytes()).hexdigest()
    return None


def environment(extra: dict | None = None) -> dict:
    import onnxruntime as ort

    env = {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "packages": package_versions(),
        "ort_providers": ort.get_available_providers(),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
    }
    env.update(extra or {})
    return env


def run_environment(onnx_dir: str | Path) -> dict:
    """CPU, memory, OS, Python, package versions and the model folder's identity."""
    mem_total = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_total = round(int(line.split()[1]) * 1024 / 1e9, 2)
    except OSError:
        pass
    versions = package_versions(COMPARE_PACKAGES)
    onnx_dir = Path(onnx_dir).resolve()
    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_allowed": sorted(os.sched_getaffinity(0)),
        "memory_total_gb": mem_total,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "packages": {name: versions.get(name) for name in COMPARE_PACKAGES},
        "model_folder": str(onnx_dir),
        "model_manifest_sha256": model_hash(onnx_dir),
    }
