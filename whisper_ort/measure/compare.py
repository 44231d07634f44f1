"""Peers side by side in one run: each implementation in its own process, rounds interleaved.

    python -m whisper_ort.measure.compare --implementations whisper_ort,faster_whisper,hf_pipeline,optimum_ort \\
        --threads 2 --repeats 3

How it measures (docs/DESIGN.md, "Measuring honestly"):

- Every implementation runs in a long-lived worker (`whisper_ort.measure.peers.worker`) with the
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
import fnmatch
import os
import signal
import sys
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from whisper_ort.measure.compare_summary import build_summary, summary_table_csv, summary_table_md
from whisper_ort.measure.records import Record, read_records, write_atomic, write_json, write_records
from whisper_ort.measure.workers import Worker, WorkerError, worker_env
from whisper_ort.study.paths import BENCH_DIR, COMPARE_DIR, REFERENCE

DEFAULT_IMPLEMENTATIONS = "whisper_ort,faster_whisper,hf_pipeline,optimum_ort"
DEFAULT_RESULTS_DIR = BENCH_DIR
DEFAULT_OUTPUT_DIR = COMPARE_DIR
REFERENCE_OUT = REFERENCE
NOT_AUDIO = {".csv", ".md", ".txt", ".json", ".yaml", ".yml", ".py", ".log"}


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
    beam_size: int = 1  # 1: greedy; more: the implementations' own beam search (peers.BEAM_SEARCH)
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
        "whisper_ort.measure.peers.worker",
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
        "--beam-size",
        str(plan.beam_size),
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
    from whisper_ort.measure.peers.limits import MemoryCap

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
    from whisper_ort.measure.peers.limits import MemoryCap

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
        from whisper_ort.measure.peers.faster_whisper import ensure_ct2_model

        ensure_ct2_model(plan.onnx_dir, log=log)  # a one-time build must not count as a cold start
    if any(name.startswith("openvino_") for name in plan.implementations):
        from whisper_ort.measure.peers.openvino import ensure_openvino_model

        ensure_openvino_model(plan.onnx_dir, log=log)  # the same for OpenVINO's export

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
        from whisper_ort.measure.peers import create

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
    from whisper_ort.measure.records import records_to_csv

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
    parser.add_argument("--beam-size", type=int, default=1, help="beams (1: greedy); above 1 only whisper_ort and faster_whisper (their own beam search)")
    parser.add_argument("--baseline", default="whisper_ort", help="the implementation ratios are taken against")
    parser.add_argument("--timeout-s", type=float, default=900.0, help="longest wait for one answer from a worker")
    parser.add_argument("--no-progress", action="store_true")
    g = parser.add_argument_group("resource limits (a container without Docker)")
    g.add_argument("--cpuset", default=None, help="CPUs the workers are pinned to, e.g. 0,1 or 0-3 (os.sched_setaffinity)")
    g.add_argument("--memory-gb", type=float, default=None, help="memory cap per worker (cgroup v2 memory.max if writable, else RLIMIT_AS)")
    g.add_argument("--cores-list", default=None, help='run once per core count, e.g. "1 2": the first N CPUs of --cpuset (or of those allowed)')
    g.add_argument("--sut", default=None, help="system under test: names the output folder; an implementation name alone runs just it")
    g.add_argument("--results-dir", default=DEFAULT_RESULTS_DIR, help="root of the container_<cores>c<mem>g folders")
    e = parser.add_argument_group("engine")
    e.add_argument("--engine", default="local", choices=("local", "ray"), help="ray: every comparison (SUT x core count) as a Ray task pinned to a node, its workers interleaved there as here")
    e.add_argument("--ray-address", default=None, help="cluster to join (auto: the one `ray start` runs here; default: start a local one)")
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
    from whisper_ort.measure.peers import BEAM_SEARCH, IMPLEMENTATIONS

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
    beam_size = getattr(args, "beam_size", 1)
    if beam_size < 1:
        raise ValueError(f"--beam-size must be >= 1, not {beam_size}")
    if beam_size > 1 and set(names) - set(BEAM_SEARCH):
        raise ValueError(f"--beam-size {beam_size}: no beam search in {', '.join(n for n in names if n not in BEAM_SEARCH)} (only {', '.join(BEAM_SEARCH)})")
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
        "beam_size": beam_size,
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

    from whisper_ort.measure.peers.limits import allowed_cpus, parse_cpus

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
    if getattr(args, "engine", "local") == "ray":  # every plan a Ray task pinned to a node (measure/ray_compare.py)
        from whisper_ort.measure.ray_compare import compare_on_ray

        summaries = compare_on_ray(todo, address=args.ray_address)
    else:
        summaries = (compare(plan) for plan in todo)  # one after another, as they are asked for
    for plan, summary in zip(todo, summaries):
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
    parser = argparse.ArgumentParser(prog="python -m whisper_ort.measure.compare", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
