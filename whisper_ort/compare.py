"""Peers side by side in one run: each implementation in its own process, rounds interleaved.

    python -m whisper_ort.compare --implementations whisper_ort,faster_whisper,hf_pipeline,optimum_ort \\
        --threads 2 --repeats 3

How it measures (DESIGN.md, "Measuring honestly"):

- Every implementation runs in a long-lived worker (`whisper_ort.peers.worker`) with the
  same threads, audio, greedy decoding, language and task.
- Cold start: workers are started one at a time (nothing else runs meanwhile); cold
  start is the time from spawning the process to receiving the transcript of the first
  file (interpreter, imports, model load, one transcription; the OS page cache is warm).
  The worker's own model load time is recorded beside it. With `--cold-starts N`, N - 1
  more processes per implementation are spawned, timed the same way and closed, in
  rounds (A B C, A B C, ...); the summary gives the median and every spawn's time.
- Then `--warmup` more runs of the first file in every worker, then `--repeats` rounds
  over all files, interleaved file by file: A B C D on file 1, A B C D on file 2, ...
- Peak RSS: each worker's VmHWM from /proc at the end (and right after its cold run).
- Warm latency per file is each record's t_total (end-to-end: decode the file to text).

Outputs in the output folder: records.json / records.csv (every warm record, every
implementation), cold_records.json, summary.json (per implementation: cold start,
peak RSS, load time, t_total stats, RTF, WER vs MANIFEST.csv, agreement with the
reference transcripts, ratio to the baseline, limits; plus the environment), and
summary_table.md / summary_table.csv. Worker stderr goes to logs/<implementation>.log.

Resource-limited runs (the seed ran these in Docker; no engine runs here): `--cpuset`,
`--memory-gb`, `--cores-list "1 2"` and `--sut NAME` pin workers with
`os.sched_setaffinity` and cap memory with a cgroup v2 `memory.max` where writable, else
RLIMIT_AS (see `peers/limits.py`); outputs go to
`results/benchmarks/container_<cores>c<mem>g/<sut>/` and the limits are in the summary.

Reference transcripts: `--reference` (after the run) or `--reference-only` writes the
hf_generate transcripts to results/reference/inference_per_file.json.
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import io
import json
import os
import platform
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from . import wer as wer_mod
from .records import Record, read_records, stats, summarize, write_atomic, write_json, write_records

DEFAULT_IMPLEMENTATIONS = "whisper_ort,faster_whisper,hf_pipeline,optimum_ort"
DEFAULT_RESULTS_DIR = "results/benchmarks"
DEFAULT_OUTPUT_DIR = "results/benchmarks/compare"
REFERENCE_OUT = "results/reference/inference_per_file.json"
NOT_AUDIO = {".csv", ".md", ".txt", ".json", ".yaml", ".yml", ".py", ".log"}
PACKAGES = ("numpy", "onnxruntime", "ctranslate2", "faster-whisper", "torch", "transformers", "optimum", "optimum-onnx", "tokenizers", "librosa", "soundfile", "av", "jiwer")


class WorkerError(RuntimeError):
    """A worker died, hung, or answered something unexpected."""


# ---------------------------------------------------------------- inputs


def list_audio(audio_dir: str | Path, pattern: str = "*") -> list[Path]:
    """Files in audio_dir matching the glob, sorted; MANIFEST.csv, READMEs and hidden files skipped."""
    folder = Path(audio_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    return sorted(
        p.resolve()
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() not in NOT_AUDIO and fnmatch.fnmatch(p.name, pattern)
    )


def environment(onnx_dir: str | Path) -> dict:
    """CPU, memory, OS, Python, package versions and the model folder's identity."""
    from .bench import cpu_model, model_hash, package_versions

    mem_total = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_total = round(int(line.split()[1]) * 1024 / 1e9, 2)
    except OSError:
        pass
    versions = package_versions(PACKAGES)
    onnx_dir = Path(onnx_dir).resolve()
    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_allowed": sorted(os.sched_getaffinity(0)),
        "memory_total_gb": mem_total,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "packages": {name: versions.get(name) for name in PACKAGES},
        "model_folder": str(onnx_dir),
        "model_manifest_sha256": model_hash(onnx_dir),
    }


# ---------------------------------------------------------------- workers


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
        from .peers.worker import proc_status_mb

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


# ---------------------------------------------------------------- one comparison


@dataclass
class Plan:
    """One comparison: what runs, where, under which limits, and where it writes."""

    implementations: list[str]
    files: list[Path]
    onnx_dir: Path
    out_dir: Path
    threads: int = 2
    repeats: int = 3
    warmup: int = 1
    language: str = "en"
    task: str = "transcribe"
    max_new_tokens: int = 128
    baseline: str = "whisper_ort"
    cpus: list[int] | None = None
    memory_gb: float | None = None
    sut: str | None = None
    label: str | None = None  # container_<cores>c<mem>g
    timeout_s: float = 900.0
    audio_dir: Path | None = None
    progress: bool = True
    cold_file: Path | None = None  # the file of the cold start and the warmup (default: files[0])
    cold_starts: int = 1  # spawns timed per implementation; the first one stays as the warm worker

    @property
    def first(self) -> Path:
        return self.cold_file or self.files[0]


@dataclass
class ImplState:
    name: str
    worker: Worker | None = None
    cap: object | None = None
    ready: dict = field(default_factory=dict)
    ready_s: float | None = None
    cold_start_s: float | None = None  # the first spawn (the worker that goes on to the warm runs)
    cold_starts_s: list[float] = field(default_factory=list)  # every spawn timed, the first included
    cold_record: dict | None = None
    hwm_after_cold_mb: float | None = None
    peak_rss_mb: float | None = None
    error: str | None = None
    records: list[Record] = field(default_factory=list)


def _worker_argv(plan: Plan, name: str, cap) -> list[str]:
    argv = [
        sys.executable,
        "-m",
        "whisper_ort.peers.worker",
        "--implementation",
        name,
        "--onnx-dir",
        str(plan.onnx_dir),
        "--threads",
        str(plan.threads),
        "--language",
        plan.language,
        "--task",
        plan.task,
        "--max-new-tokens",
        str(plan.max_new_tokens),
    ]
    if plan.cpus:
        argv += ["--cpus", ",".join(map(str, plan.cpus))]
    return argv + cap.worker_args()


def _run_one(state: ImplState, path: Path, repeat: int, timeout: float) -> Record:
    """One transcription in a worker; a dead or hung worker becomes an error record."""
    if state.worker is None or state.error:
        return Record(file=path.name, implementation=state.name, repeat=repeat, status="error", error=f"{path.name}: {state.error or 'worker not running'}")
    try:
        state.worker.send(f"run {path} {repeat}")
        _, msg = state.worker.expect("record", timeout)
        record = Record.from_dict(msg["record"])
    except WorkerError as exc:
        state.error = str(exc)
        return Record(file=path.name, implementation=state.name, repeat=repeat, status="error", error=f"{path.name}: {exc}")
    record.implementation = state.name
    return record


def _cold_run(plan: Plan, name: str, cap, log_path: Path) -> tuple[Worker, float, dict, dict]:
    """Spawn a worker and have it transcribe the cold-start file: (worker, seconds from
    spawn to transcript, its ready message, the record). Raises WorkerError."""
    worker = Worker(name, _worker_argv(plan, name, cap), worker_env(plan.threads), log_path)
    try:
        worker.send(f"run {plan.first} -1")  # queued in the pipe; read as soon as the model is loaded
        t_ready, ready = worker.expect("ready", plan.timeout_s)
        ready["ready_s"] = t_ready - worker.t_spawn
        t_done, msg = worker.expect("record", plan.timeout_s)
    except WorkerError:
        worker.close(timeout=5)
        raise
    return worker, t_done - worker.t_spawn, ready, msg["record"]


def _start(plan: Plan, state: ImplState, log_dir: Path) -> None:
    """Spawn the worker, have it transcribe the first file, and time that cold start."""
    from .peers.limits import MemoryCap

    state.cap = MemoryCap(plan.memory_gb, state.name)
    try:
        worker, seconds, ready, record = _cold_run(plan, state.name, state.cap, log_dir / f"{state.name}.log")
    except WorkerError as exc:
        state.error = str(exc)
        return
    state.worker = worker
    state.ready, state.ready_s = ready, ready.pop("ready_s")
    state.cold_start_s = seconds
    state.cold_starts_s.append(seconds)
    state.cold_record = record
    state.hwm_after_cold_mb = worker.memory_mb()["hwm_mb"] or record.get("hwm_mb")


def _more_cold_starts(plan: Plan, states: list[ImplState], log_dir: Path, log) -> None:
    """Rounds of one more spawn per implementation, each timed to its transcript and closed
    (under a memory cap of its own: the idle warm worker must not count against it)."""
    from .peers.limits import MemoryCap

    for k in range(2, plan.cold_starts + 1):
        for state in states:
            cap = MemoryCap(plan.memory_gb, f"{state.name}-cold{k}")
            try:
                worker, seconds, _, _ = _cold_run(plan, state.name, cap, log_dir / f"{state.name}.cold{k}.log")
            except WorkerError as exc:  # the warm worker is unaffected; this spawn is just not counted
                log(f"{state.name}: cold start {k} failed: {exc}")
                cap.cleanup()
                continue
            worker.close()
            cap.cleanup()
            state.cold_starts_s.append(seconds)
            log(f"{state.name}: cold start {k}: {seconds:.2f} s")


def _progress(total: int, enabled: bool):
    try:
        from tqdm import tqdm

        return tqdm(total=total, desc="compare", unit="run", file=sys.stderr, disable=not enabled, dynamic_ncols=True)
    except ImportError:  # pragma: no cover
        return None


def compare(plan: Plan, log=None) -> dict:
    """Run one comparison (cold starts, warmup, interleaved rounds) and write its outputs."""
    log = log or (lambda msg: print(msg, file=sys.stderr))
    if not plan.files:
        raise ValueError("no audio files to compare")
    out_dir = plan.out_dir
    log_dir = out_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    if "faster_whisper" in plan.implementations:
        from .peers.faster_whisper import ensure_ct2_model

        ensure_ct2_model(plan.onnx_dir, log=log)  # a one-time build must not count as a cold start

    states = {name: ImplState(name) for name in plan.implementations}
    started = datetime.now(timezone.utc)
    try:
        for name, state in states.items():
            log(f"{name}: starting (cold start on {plan.first.name})")
            _start(plan, state, log_dir)
            if state.error:
                log(f"{name}: FAILED to start: {state.error}")
            else:
                log(f"{name}: cold start {state.cold_start_s:.2f} s (load {state.ready.get('load_s', 0):.2f} s)")
        live = [s for s in states.values() if not s.error]
        _more_cold_starts(plan, live, log_dir, log)
        for _ in range(plan.warmup):
            for state in live:
                _run_one(state, plan.first, -1, plan.timeout_s)
        bar = _progress(plan.repeats * len(plan.files) * len(live), plan.progress)
        for repeat in range(plan.repeats):
            for path in plan.files:
                for state in live:
                    if bar is not None:
                        bar.set_postfix_str(f"{state.name} {path.name}", refresh=False)
                    state.records.append(_run_one(state, path, repeat, plan.timeout_s))
                    if bar is not None:
                        bar.update(1)
        if bar is not None:
            bar.close()
        for state in states.values():
            if state.worker is not None and state.worker.alive():
                state.peak_rss_mb = state.worker.memory_mb()["hwm_mb"]
    finally:
        for state in states.values():
            if state.worker is not None:
                state.worker.close()
            if state.cap is not None:
                state.cap.cleanup()

    records = [r for s in states.values() for r in s.records]
    summary = build_summary(plan, states, records, started)
    write_outputs(out_dir, summary, records, states)
    return summary


# ---------------------------------------------------------------- summary and tables


def _per_file_p50(records: list[Record]) -> dict[str, float]:
    by_file: dict[str, list[float]] = {}
    for r in records:
        if r.status == "ok" and r.t_total is not None:
            by_file.setdefault(r.file, []).append(r.t_total)
    return {f: stats(v)["p50"] for f, v in sorted(by_file.items())}


def _first_ok(records: list[Record]) -> dict[str, Record]:
    out: dict[str, Record] = {}
    for r in sorted(records, key=lambda r: r.repeat):
        if r.status == "ok":
            out.setdefault(r.file, r)
    return out


def load_reference(path: str | Path = REFERENCE_OUT) -> dict[str, str] | None:
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return {r.file: r.text for r in read_records(path) if r.status == "ok"}
    except (OSError, ValueError, TypeError):
        return None


def agreement(records: list[Record], reference: dict[str, str], spelling_dirs=None) -> dict:
    """How an implementation's transcripts compare with the reference (hf_generate) ones."""
    mine = _first_ok(records)
    common = sorted(set(mine) & set(reference))
    identical = [f for f in common if mine[f].text.strip() == reference[f].strip()]
    differing = [f for f in common if f not in identical]
    errors = words = 0
    per_file = {}
    for f in common:
        m = wer_mod.measures(reference[f], mine[f].text, True, spelling_dirs)
        per_file[f] = m["wer"]
        errors += m["substitutions"] + m["deletions"] + m["insertions"]
        words += m["ref_words"]
    return {
        "n_files": len(common),
        "identical_text": len(identical),
        "differing_files": differing,
        "wer_vs_reference": errors / words if words else None,
        "per_file_wer": per_file,
    }


def build_summary(plan: Plan, states: dict[str, ImplState], records: list[Record], started: datetime) -> dict:
    spelling = (str(plan.onnx_dir), str(plan.onnx_dir.with_name(plan.onnx_dir.name + "-hf")))
    references = wer_mod.manifest_references(plan.audio_dir) if plan.audio_dir else {}
    wer_all = wer_mod.wer_table(records, references, spelling_dirs=spelling) if references else {"normalizer": None, "implementations": {}}

    reference_source, reference = None, None
    if "hf_generate" in states and states["hf_generate"].records:
        reference_source = "hf_generate in this run"
        reference = {f: r.text for f, r in _first_ok(states["hf_generate"].records).items()}
    else:
        reference = load_reference()
        reference_source = REFERENCE_OUT if reference else None

    ok_names = [n for n, s in states.items() if any(r.status == "ok" for r in s.records)]
    baseline = plan.baseline if plan.baseline in ok_names else (ok_names[0] if ok_names else plan.baseline)
    base_records = states[baseline].records if baseline in states else []
    base_p50 = (stats(r.t_total for r in base_records if r.status == "ok") or {}).get("p50")
    base_files = _per_file_p50(base_records)

    impls = {}
    for name, state in states.items():
        s = summarize(state.records)
        s.pop("environment", None)
        p50 = (s["t_total_s"] or {}).get("p50")
        per_file = _per_file_p50(state.records)
        ratios = [per_file[f] / base_files[f] for f in per_file if base_files.get(f)]
        w = wer_all["implementations"].get(name)
        entry = {
            "implementation": name,
            "status": "failed" if state.error and not state.records else ("partial" if state.error else "ok"),
            "error": state.error,
            "variant": (state.ready.get("info") or {}).get("variant"),
            "info": state.ready.get("info"),
            "threads": plan.threads,
            "limits_applied": state.ready.get("limits"),
            "memory_cap": state.cap.describe() if state.cap is not None else None,
            "load_s": state.ready.get("load_s"),
            "ready_s": state.ready_s,
            "cold_start_s": stats(state.cold_starts_s)["p50"] if state.cold_starts_s else None,  # median over the spawns
            "cold_starts_s": state.cold_starts_s,
            "cold_start_first_s": state.cold_start_s,
            "cold_start_file": plan.first.name,
            "cold_record": state.cold_record,
            "rss_after_load_mb": state.ready.get("rss_mb"),
            "peak_rss_after_cold_mb": state.hwm_after_cold_mb,
            "peak_rss_mb": state.peak_rss_mb,
            **s,
            "per_file_p50_s": per_file,
            "wer_vs_manifest": None
            if w is None
            else {
                "overall_wer": w["overall_wer"],
                "errors": w["errors"],
                "ref_words": w["ref_words"],
                "n_files": w["n_files"],
                "missing": w["missing"],
                "per_file_wer": {f: m["wer"] for f, m in w["per_file"].items()},
            },
            "vs_reference": agreement(state.records, reference, spelling) if reference and name != "hf_generate" else None,
            "p50_ratio_to_baseline": (p50 / base_p50) if p50 is not None and base_p50 else None,
            "median_per_file_ratio_to_baseline": (stats(ratios) or {}).get("p50"),
        }
        impls[name] = entry

    return {
        "created": started.isoformat(timespec="seconds"),
        "command": [Path(sys.argv[0]).name] + sys.argv[1:],
        "implementations_order": list(states),
        "baseline": baseline,
        "baseline_requested": plan.baseline,
        "files": [p.name for p in plan.files],
        "cold_start_file": plan.first.name,
        "cold_starts": plan.cold_starts,
        "audio_dir": str(plan.audio_dir) if plan.audio_dir else None,
        "repeats": plan.repeats,
        "warmup": plan.warmup,
        "threads": plan.threads,
        "language": plan.language,
        "task": plan.task,
        "max_new_tokens": plan.max_new_tokens,
        "limits": {
            "label": plan.label,
            "sut": plan.sut,
            "cpus": plan.cpus or sorted(os.sched_getaffinity(0)),
            "n_cpus": len(plan.cpus) if plan.cpus else len(os.sched_getaffinity(0)),
            "cpus_pinned": bool(plan.cpus),
            "memory_gb": plan.memory_gb,
            "memory_mechanism": next((s.cap.mechanism for s in states.values() if s.cap is not None and s.cap.mechanism), None),
            "memory_note": next((s.cap.note for s in states.values() if s.cap is not None and s.cap.note), None),
        },
        "wer_normalizer": wer_all["normalizer"],
        "wer_reference_files": sorted(set(references) & {p.name for p in plan.files}),
        "reference_transcripts": reference_source,
        "environment": environment(plan.onnx_dir),
        "implementations": impls,
    }


COLUMNS = (
    ("implementation", "implementation"),
    ("p95 time (s)", "p95_time_s"),
    ("p50 (s)", "p50_s"),
    ("mean RTF", "mean_rtf"),
    ("cold start (s)", "cold_start_s"),
    ("peak RSS (MB)", "peak_rss_mb"),
    ("WER vs manifest (%)", "wer_vs_manifest_pct"),
)


def table_rows(summary: dict) -> list[dict]:
    rows = []
    for name in summary["implementations_order"]:
        e = summary["implementations"][name]
        t = e.get("t_total_s") or {}
        w = e.get("wer_vs_manifest") or {}
        v = e.get("vs_reference") or {}
        rows.append(
            {
                "implementation": name,
                "p95_time_s": t.get("p95"),
                "p50_s": t.get("p50"),
                "mean_rtf": (e.get("rtf") or {}).get("mean"),
                "cold_start_s": e.get("cold_start_s"),
                "peak_rss_mb": e.get("peak_rss_mb"),
                "wer_vs_manifest_pct": None if w.get("overall_wer") is None else 100.0 * w["overall_wer"],
                "p50_ratio": e.get("p50_ratio_to_baseline"),
                "median_per_file_ratio": e.get("median_per_file_ratio_to_baseline"),
                "load_s": e.get("load_s"),
                "n_ok": e.get("n_ok"),
                "n_failed": e.get("n_failed"),
                "identical_to_reference": None if not v else f"{v['identical_text']}/{v['n_files']}",
                "threads": summary["threads"],
                "cpus": ",".join(map(str, summary["limits"]["cpus"])),
                "memory_gb": summary["limits"]["memory_gb"],
                "memory_mechanism": summary["limits"]["memory_mechanism"],
                "status": e.get("status"),
            }
        )
    return rows


def _fmt(value, digits: int) -> str:
    if value is None:
        return "n/a"
    return f"{value:.{digits}f}"


def summary_table_md(summary: dict) -> str:
    base = summary["baseline"]
    lim = summary["limits"]
    env = summary["environment"]
    mem = f"{lim['memory_gb']:g} GB ({lim['memory_mechanism']})" if lim["memory_gb"] else "none"
    cpus = ",".join(map(str, lim["cpus"]))
    lines = [
        f"# Peers side by side{' - ' + lim['label'] + '/' + lim['sut'] if lim.get('label') else ''}",
        "",
        f"{len(summary['files'])} files x {summary['repeats']} repeat(s), warmup {summary['warmup']}, "
        f"{summary['threads']} threads, CPUs {cpus}{' (pinned)' if lim['cpus_pinned'] else ''}, memory cap {mem}; "
        f"{env.get('cpu_model')} ({env.get('cpu_count')} CPUs); {summary['created']}.",
        "",
        "| implementation | p95 time (s) | p50 (s) | mean RTF | cold start (s) | peak RSS (MB) | WER vs manifest (%) | p50 ratio to " + base + " |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in table_rows(summary):
        name = row["implementation"] + ("" if row["status"] == "ok" else f" ({row['status']})")
        lines.append(
            f"| {name} | {_fmt(row['p95_time_s'], 3)} | {_fmt(row['p50_s'], 3)} | {_fmt(row['mean_rtf'], 3)} | "
            f"{_fmt(row['cold_start_s'], 2)} | {_fmt(row['peak_rss_mb'], 0)} | {_fmt(row['wer_vs_manifest_pct'], 2)} | {_fmt(row['p50_ratio'], 2)} |"
        )
    n_ref = len(summary.get("wer_reference_files") or [])
    lines += [
        "",
        "- p95 time: the seed's Time column, the 95th percentile of end-to-end `t_total` (file to text) over every file and repeat; p50 the median.",
        f"- cold start: a fresh process from spawn to the transcript of `{summary['cold_start_file']}` (imports, model load, one run; page cache warm)"
        + (f", the median of {summary['cold_starts']} spawns per implementation taken in rounds; " if summary.get("cold_starts", 1) > 1 else "; ")
        + "peak RSS: the process's VmHWM at the end of the run.",
        f"- WER: corpus WER over the {n_ref} file(s) with a `reference_text` in MANIFEST.csv, both sides through {summary.get('wer_normalizer') or 'n/a'}.",
        f"- ratio: p50 / p50 of {base} (> 1 is slower)"
        + (f"; {summary['baseline_requested']} was not in the run, so the baseline is {base}." if base != summary["baseline_requested"] else "."),
    ]
    notes = []
    for name in summary["implementations_order"]:
        e = summary["implementations"][name]
        if e.get("error"):
            notes.append(f"- {name}: {e['error']}")
        failed = [f for f in e.get("failed_files") or []]
        if failed:
            notes.append(f"- {name}: failed on {', '.join(failed)}")
    if notes:
        lines += ["", "Failures:", "", *notes]
    agree = [
        (name, summary["implementations"][name]["vs_reference"])
        for name in summary["implementations_order"]
        if summary["implementations"][name].get("vs_reference")
    ]
    if agree:
        lines += ["", f"Transcripts against the reference (hf_generate; {summary.get('reference_transcripts')}):", ""]
        for name, v in agree:
            wer_ref = "n/a" if v["wer_vs_reference"] is None else f"{100 * v['wer_vs_reference']:.2f}%"
            diff = f"; differ on {', '.join(v['differing_files'])}" if v["differing_files"] else ""
            lines.append(f"- {name}: {v['identical_text']}/{v['n_files']} identical, WER vs reference {wer_ref}{diff}")
    return "\n".join(lines) + "\n"


def summary_table_csv(summary: dict) -> str:
    base = summary["baseline"]
    names = [c[1] for c in COLUMNS] + [f"p50_ratio_to_{base}", f"median_per_file_ratio_to_{base}", "load_s", "n_ok", "n_failed", "identical_to_reference", "threads", "cpus", "memory_gb", "memory_mechanism", "status"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(names)
    for row in table_rows(summary):
        values = [row[c[1]] for c in COLUMNS] + [row["p50_ratio"], row["median_per_file_ratio"]] + [row[k] for k in names[9:]]
        writer.writerow(["" if v is None else (round(v, 6) if isinstance(v, float) else v) for v in values])
    return buf.getvalue()


def write_outputs(out_dir: Path, summary: dict, records: list[Record], states: dict[str, ImplState]) -> None:
    write_records(out_dir, records, stem="records")
    write_json(out_dir / "cold_records.json", [s.cold_record for s in states.values() if s.cold_record])
    write_json(out_dir / "summary.json", summary)
    write_atomic(out_dir / "summary_table.md", summary_table_md(summary))
    write_atomic(out_dir / "summary_table.csv", summary_table_csv(summary))


# ---------------------------------------------------------------- reference transcripts


def write_reference(
    audio_dir: str | Path = "audio",
    onnx_dir: str | Path = "whisper-base-with-past",
    out: str | Path = REFERENCE_OUT,
    threads: int = 2,
    files: str = "*",
    language: str = "en",
    max_new_tokens: int = 128,
    records: list[Record] | None = None,
    progress: bool = True,
) -> list[Record]:
    """hf_generate's transcripts of every audio file, written as a JSON list of records
    (and a CSV beside it). Pass `records` to write ones already made (e.g. by compare)."""
    if records is None:
        from .peers import create

        peer = create("hf_generate", onnx_dir, threads=threads, language=language, max_new_tokens=max_new_tokens)
        paths = list_audio(audio_dir, files)
        bar = _progress(len(paths), progress)
        records = []
        for path in paths:
            records.append(peer.transcribe_record(path, repeat=0))
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
    out = Path(out)
    write_json(out, [r.to_dict() for r in records])
    from .records import records_to_csv

    write_atomic(out.with_suffix(".csv"), records_to_csv(records))
    return records


def run_reference(args: argparse.Namespace) -> int:
    records = write_reference(
        audio_dir=args.audio_dir,
        onnx_dir=args.onnx_dir,
        out=getattr(args, "reference_out", REFERENCE_OUT),
        threads=args.threads or 2,
        files=getattr(args, "files", "*"),
        language=getattr(args, "language", "en"),
        max_new_tokens=getattr(args, "max_new_tokens", 128),
    )
    ok = sum(r.status == "ok" for r in records)
    print(f"reference transcripts: {ok}/{len(records)} ok -> {getattr(args, 'reference_out', REFERENCE_OUT)}")
    for r in records:
        if r.status != "ok":
            print(f"  {r.error}", file=sys.stderr)
    return 0 if ok else 1


# ---------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--implementations", default=None, help=f"comma list (default {DEFAULT_IMPLEMENTATIONS}; with --sut naming an implementation: that one)")
    parser.add_argument("--audio-dir", default="audio")
    parser.add_argument("--files", default="*", help="glob on file names in --audio-dir (default all audio files)")
    parser.add_argument("--threads", type=int, default=None, help="threads per implementation (default 2; with --cores-list/--cpuset: the core count)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1, help="runs of the cold-start file in every worker after its cold start, before measuring")
    parser.add_argument("--cold-starts", type=int, default=1, help="processes spawned and timed per implementation for the cold start (the median is reported)")
    parser.add_argument("--cold-file", default="jfk.flac", help="file (name in --audio-dir) of the cold start and warmup; the first file when it is not in the run")
    parser.add_argument("--onnx-dir", default="whisper-base-with-past")
    parser.add_argument("--output-dir", default=None, help=f"default {DEFAULT_OUTPUT_DIR}; with limits: {DEFAULT_RESULTS_DIR}/container_<cores>c<mem>g/<sut>")
    parser.add_argument("--language", default="en")
    parser.add_argument("--task", default="transcribe", choices=("transcribe", "translate"))
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--baseline", default="whisper_ort", help="the implementation ratios are taken against")
    parser.add_argument("--timeout-s", type=float, default=900.0, help="longest wait for one answer from a worker")
    parser.add_argument("--no-progress", action="store_true")
    g = parser.add_argument_group("resource limits (a container without Docker)")
    g.add_argument("--cpuset", default=None, help="CPUs the workers are pinned to, e.g. 0,1 or 0-3 (os.sched_setaffinity)")
    g.add_argument("--memory-gb", type=float, default=None, help="memory cap per worker (cgroup v2 memory.max if writable, else RLIMIT_AS)")
    g.add_argument("--cores-list", default=None, help='run once per core count, e.g. "1 2": the first N CPUs of --cpuset (or of those allowed)')
    g.add_argument("--sut", default=None, help="system under test: names the output folder; an implementation name alone runs just it")
    g.add_argument("--results-dir", default=DEFAULT_RESULTS_DIR, help="root of the container_<cores>c<mem>g folders")
    r = parser.add_argument_group("reference transcripts")
    r.add_argument("--reference", action="store_true", help="also write hf_generate's transcripts to --reference-out")
    r.add_argument("--reference-only", action="store_true", help="only write the reference transcripts (no comparison)")
    r.add_argument("--reference-out", default=REFERENCE_OUT)


def add_reference_arguments(parser: argparse.ArgumentParser) -> None:
    """`whisper-ort reference`: hf_generate over a folder into --reference-out."""
    parser.add_argument("--audio-dir", default="audio")
    parser.add_argument("--files", default="*", help="glob on file names in --audio-dir")
    parser.add_argument("--onnx-dir", default="whisper-base-with-past")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--language", default="en")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--reference-out", default=REFERENCE_OUT)


def _container_label(n_cpus: int, memory_gb: float | None) -> str:
    return f"container_{n_cpus}c" + (f"{memory_gb:g}g" if memory_gb else "")


def plans(args: argparse.Namespace) -> list[Plan]:
    from .peers import IMPLEMENTATIONS

    if args.implementations:
        names = [n.strip() for n in args.implementations.split(",") if n.strip()]
    elif args.sut in IMPLEMENTATIONS:
        names = [args.sut]
    else:
        names = DEFAULT_IMPLEMENTATIONS.split(",")
    unknown = [n for n in names if n not in IMPLEMENTATIONS]
    if unknown:
        raise ValueError(f"unknown implementation(s): {', '.join(unknown)}; known: {', '.join(IMPLEMENTATIONS)}")
    if len(set(names)) != len(names):
        raise ValueError("an implementation is listed twice")
    files = list_audio(args.audio_dir, args.files)
    if not files:
        raise ValueError(f"{args.audio_dir}: no audio files match {args.files!r}")
    cold = next((p for p in files if p.name == getattr(args, "cold_file", None)), files[0])
    common = {
        "implementations": names,
        "files": files,
        "onnx_dir": Path(args.onnx_dir).resolve(),
        "repeats": args.repeats,
        "warmup": args.warmup,
        "language": args.language,
        "task": getattr(args, "task", "transcribe"),
        "max_new_tokens": args.max_new_tokens,
        "baseline": args.baseline,
        "timeout_s": args.timeout_s,
        "audio_dir": Path(args.audio_dir).resolve(),
        "progress": not args.no_progress,
        "cold_file": cold,
        "cold_starts": max(1, getattr(args, "cold_starts", 1)),
    }
    limited = any(x is not None for x in (args.cpuset, args.memory_gb, args.cores_list, args.sut))
    if not limited:
        return [Plan(**common, out_dir=Path(args.output_dir or DEFAULT_OUTPUT_DIR), threads=args.threads or 2)]

    from .peers.limits import allowed_cpus, parse_cpus

    pool = parse_cpus(args.cpuset) or allowed_cpus()
    missing = sorted(set(pool) - set(allowed_cpus()))
    if missing:
        raise ValueError(f"--cpuset: CPU(s) {missing} are not available to this process (allowed: {allowed_cpus()})")
    counts = [int(c) for c in args.cores_list.replace(",", " ").split()] if args.cores_list else [len(pool)]
    sut = args.sut or (names[0] if len(names) == 1 else "compare")
    out = []
    for n in counts:
        if n < 1 or n > len(pool):
            raise ValueError(f"--cores-list: {n} cores asked, {len(pool)} available ({pool})")
        label = _container_label(n, args.memory_gb)
        root = Path(args.output_dir) if args.output_dir else Path(args.results_dir)
        out.append(Plan(**common, out_dir=root / label / sut, threads=args.threads or n, cpus=pool[:n], memory_gb=args.memory_gb, sut=sut, label=label))
    return out


def _exit_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so the workers are told to quit and cgroups removed."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    _exit_on_sigterm()
    if getattr(args, "reference_only", False):
        return run_reference(args)
    try:
        todo = plans(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"compare: {exc}", file=sys.stderr)
        return 2
    status = 0
    last = None
    for plan in todo:
        summary = compare(plan)
        last = summary
        print(summary_table_md(summary))
        print(f"wrote {plan.out_dir}/summary_table.md, summary.json, records.json")
        if any(e["status"] != "ok" or e["n_failed"] for e in summary["implementations"].values()):
            status = 1
    if args.reference:
        hf = [r for r in read_records(todo[-1].out_dir / "records.json") if r.implementation == "hf_generate" and r.repeat == 0] if last else []
        if hf and len(hf) == len(todo[-1].files):
            write_reference(out=args.reference_out, records=hf)
        else:
            write_reference(args.audio_dir, args.onnx_dir, args.reference_out, threads=todo[-1].threads, files=args.files, language=args.language, max_new_tokens=args.max_new_tokens)
        print(f"wrote {args.reference_out}")
    return status


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m whisper_ort.compare", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
