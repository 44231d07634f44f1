"""`whisper-ort bench --engine ray`: the bench on a Ray cluster, with Ray Data.

    files x repeats, one block each -> decode in CPU tasks (core.audio.load_audio, timed)
      -> map_batches over an actor pool of Transcribers (each T ONNX Runtime threads, num_cpus=T)
      -> records back in the driver: the same Record, the same files as `bench`

Ray does placement, retries and back-pressure; nothing here schedules. An actor that dies
is restarted and its file retried (TASK_RETRIES times); a file that still fails becomes an
error record, so nothing is lost, and a block's output reaches the driver once, so nothing
comes twice. Without an address the driver starts a local cluster (no dashboard, no usage
stats) and stops it at the end. Ray is imported here only, on use.

On a cluster every node needs this package and the model folder at the same path, and the
audio must be readable at the same path too (a shared filesystem): tasks get paths.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import signal
import socket
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

from whisper_ort.core.audio import AudioError, load_audio
from whisper_ort.core.decoding import DecodingOptions
from whisper_ort.core.folder import REQUIRED, check_model_folder, default_model_dir, resolve_variant, variant_dir
from whisper_ort.core.options import ModelOptions
from whisper_ort.measure.bench import find_audio_files, record_of, safe_output_path
from whisper_ort.measure.environment import cpu_model, environment, model_hash
from whisper_ort.measure.records import Record, read_records, summarize, write_atomic, write_json, write_records
from whisper_ort.study.paths import BENCH_DIR, NATIVE

JOURNAL = "inference_per_file.jsonl"  # one record per line, appended as they come: what --resume trusts most
TASK_RETRIES = 3  # per file, after its actor died; then an error record (a file that kills every actor must not loop)
# Tests: "<marker path>:<file name>" makes the actor that starts that file kill itself (SIGKILL)
# once, the marker saying it did; Ray must restart the actor and retry the file. No marker
# (":<file name>"): every time, until the retries run out and the file is an error record.
FAULT_ENV = "WHISPER_ORT_RAY_FAULT"
LOST = "transcription failed {n} time(s) (its worker died or raised); see the Ray logs"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# ---------------------------------------------------------------- in the cluster


def decode(row: dict) -> dict:
    """A CPU task: one file to 16 kHz samples (as bytes), timed; a bad file keeps its cause."""
    t0 = time.perf_counter()
    samples, error = np.zeros(0, np.float32), ""
    try:
        samples = load_audio(row["path"])
    except AudioError as exc:
        error = str(exc)
    except Exception as exc:  # a decoder's own bug costs this file, not the run
        error = f"{row['path']}: {_one_line(exc)}"
    return {**row, "samples": samples.tobytes(), "t_load_audio": time.perf_counter() - t0, "error": error}


class TranscribeActor:
    """One Transcriber per actor, kept for every file it gets; rows in, records (JSON) out."""

    def __init__(self, model: ModelOptions, decoding: DecodingOptions, warmup_paths: list[str], warmup: int = 1, fault: str | None = None):
        from whisper_ort.core.pipeline import Transcriber

        self.transcriber = Transcriber(options=model)
        self.decoding = decoding
        self.where = f"{socket.gethostname()}: {cpu_model()}"  # the driver's environment() describes the driver's machine only
        self.fault = fault.partition(":")[::2] if fault else None
        for _ in range(warmup):
            for path in warmup_paths:  # the first file that decodes warms the sessions, as bench does
                if record_of(self.transcriber, path, decoding).status == "ok":
                    break

    def __call__(self, batch: dict) -> dict:
        out, spans = [], []
        for i in range(len(batch["file"])):
            row = {k: batch[k][i] for k in ("path", "file", "repeat", "samples", "t_load_audio", "error")}
            start = time.time()  # wall clock: the driver compares spans of actors on other nodes
            out.append(json.dumps(self.record(row).to_dict()))
            spans.append((start, time.time(), os.getpid()))
        return {"record": np.array(out, dtype=object), "span": np.array(spans, dtype=np.float64), "where": np.array([self.where] * len(out), dtype=object)}

    def record(self, row: dict) -> Record:
        t = self.transcriber
        name, repeat = str(row["file"]), int(row["repeat"])
        if row["error"]:
            return Record(file=name, implementation=NATIVE, variant=t.variant, threads=t.threads, repeat=repeat, status="error", error=str(row["error"]))
        self._maybe_die(name)
        samples = np.frombuffer(row["samples"], dtype=np.float32).copy()
        try:
            record = record_of(t, row["path"], self.decoding, repeat, samples=samples)
        except Exception as exc:  # not an audio problem, but still this file's record, not a crash
            return Record(file=name, implementation=NATIVE, variant=t.variant, threads=t.threads, repeat=repeat, status="error", error=f"{name}: {_one_line(exc)}")
        if record.status == "ok":  # the decode ran in its own task: its time is this record's load time
            record.t_load_audio = float(row["t_load_audio"])
            record.t_total += record.t_load_audio
            record.finish()
        return record

    def _maybe_die(self, name: str) -> None:
        if not self.fault or self.fault[1] != name:
            return
        marker = self.fault[0]
        if marker and os.path.exists(marker):
            return
        if marker:
            Path(marker).write_text(f"killed pid {os.getpid()} on {name}\n")
        os.kill(os.getpid(), signal.SIGKILL)


# ---------------------------------------------------------------- the driver


def connect(address: str | None = None, num_cpus: int | None = None, object_store_memory: int | None = None) -> bool:
    """Connect to the cluster at `address` ("auto": the one `ray start` runs here), or use
    the one this process is connected to, or start a local one. True when this call
    connected (the caller then disconnects; a local cluster stops with it)."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # read when Ray starts: never phone home
    try:
        import ray
    except ImportError:
        raise RuntimeError("--engine ray needs Ray: pip install -e '.[ray]'") from None

    if ray.is_initialized():
        return False
    quiet = {"logging_level": logging.WARNING, "log_to_driver": True}
    if address:
        ray.init(address=address, **quiet)
    else:
        cpus = num_cpus or len(os.sched_getaffinity(0))
        ray.init(address="local", num_cpus=cpus, include_dashboard=False, object_store_memory=object_store_memory, **quiet)
    return True


def _absolute(model: ModelOptions) -> ModelOptions:
    """Paths the actors can use whatever their working directory."""
    folder = Path(model.folder) if model.folder is not None else default_model_dir()
    tokenizer = Path(model.tokenizer_json).resolve() if model.tokenizer_json else None
    return replace(model, folder=folder.resolve(), tokenizer_json=tokenizer)


def _resumed(out_dir: Path, log) -> list[Record]:
    """The ok records of an earlier run: inference_per_file.json and the journal, one per (file, repeat)."""
    found: dict[tuple[str, int], Record] = {}
    per_file = out_dir / "inference_per_file.json"
    if per_file.is_file():
        try:
            for r in read_records(per_file):
                found[(r.file, r.repeat)] = r
        except (ValueError, KeyError, TypeError) as exc:
            log(f"{per_file}: cannot resume from it ({exc})")
    journal = out_dir / JOURNAL
    if journal.is_file():
        for line in journal.read_text(encoding="utf-8").splitlines():
            try:  # the last line of a killed run may be cut short
                r = Record.from_dict(json.loads(line))
            except (ValueError, KeyError, TypeError):
                continue
            found[(r.file, r.repeat)] = r
    return [r for r in found.values() if r.status == "ok"]


class _Writer:
    """The journal after every record; the full files (json, csv, summary) at most every
    second or ten times their own write time, so a big corpus does not spend its driver
    rewriting them (an interruption loses nothing: the journal has every record)."""

    def __init__(self, out_dir: Path, records: list[Record], summary_of):
        self.out_dir, self.records, self.summary_of = out_dir, records, summary_of
        self.journal = out_dir / JOURNAL
        write_atomic(self.journal, "".join(json.dumps(r.to_dict()) + "\n" for r in records))
        self.next_at, self.cost = 0.0, 0.0

    def add(self, record: Record) -> None:
        self.records.append(record)
        with open(self.journal, "a", encoding="utf-8") as f:
            f.write(json.dumps(record.to_dict()) + "\n")
        if time.perf_counter() >= self.next_at:
            self.flush()

    def flush(self) -> dict:
        t0 = time.perf_counter()
        summary = self.summary_of(self.records)
        write_records(self.out_dir, self.records)
        write_json(self.out_dir / "inference_summary.json", summary)
        self.cost = time.perf_counter() - t0
        self.next_at = time.perf_counter() + max(1.0, 10 * self.cost)
        return summary


def run_ray_bench(
    audio_dir="audio",
    model: ModelOptions | None = None,
    decoding: DecodingOptions | None = None,
    output_dir=BENCH_DIR,
    files: str | None = None,
    warmup: int = 1,
    repeats: int = 1,
    write_txt: bool = False,
    resume: bool = False,
    progress: bool = True,
    log=None,
    address: str | None = None,
    actors: int | None = None,
    num_cpus: int | None = None,
    decode_cpus: float = 0.0,
    object_store_memory: int | None = None,
    task_retries: int = TASK_RETRIES,
) -> tuple[list[Record], dict]:
    """run_bench's run on Ray: returns (records, summary) and writes bench's files.

    actors: transcribers in the pool (default: the cluster's CPUs // threads); num_cpus:
    the local cluster's CPUs (default: this process's); decode_cpus: what a decode task
    reserves (0: it runs beside the actors, which take every CPU; decoding is ~1 % of the work)."""
    log = log or (lambda msg: print(msg, file=sys.stderr))
    decoding = decoding or DecodingOptions()
    model = _absolute(model or ModelOptions())
    out_dir = Path(output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = find_audio_files(audio_dir, files)
    if not paths:
        raise FileNotFoundError(f"{audio_dir}: no audio files" + (f" match {files!r}" if files else ""))
    # The model folder is checked before any audio is read (the actors load it on their nodes).
    variant = resolve_variant(model.folder, model.variant)
    model_dir = variant_dir(model.folder, variant)
    check_model_folder(model_dir, REQUIRED[variant])

    records = _resumed(out_dir, log) if resume else []
    done = {(r.file, r.repeat) for r in records}
    if done:
        log(f"resume: {len(done)} record(s) already done in {out_dir}")
    todo = [(p, rep) for rep in range(repeats) for p in paths if (p.name, rep) not in done]
    threads = model.session.threads
    settings = {"model_dir": str(model_dir), "variant": variant, "session": model.session.to_dict(), "load_time_s": None,
                "decoding": {k: getattr(decoding, k) for k in decoding.__dataclass_fields__},
                "batch_size": decoding.batch_size, "chunking": decoding.chunking}
    env = environment({"threads": threads, "transcriber": settings, "model_sha256": model_hash(model_dir)})
    engine: dict = {"name": "ray", "address": address or "local"}

    def summary_of(recs):
        return summarize(recs, env, implementation=NATIVE, variant=variant, warmup=warmup, repeats=repeats, audio_dir=str(audio_dir), engine=engine)

    writer = _Writer(out_dir, records, summary_of)
    order = {p.name: i for i, p in enumerate(paths)}
    started = connect(address, num_cpus, object_store_memory)
    try:
        import ray

        cluster_cpus = int(ray.cluster_resources().get("CPU", 0))
        n_actors = actors or max(1, cluster_cpus // threads)
        if n_actors * threads > cluster_cpus:
            raise ValueError(f"{n_actors} actor(s) x {threads} thread(s) need {n_actors * threads} CPUs; the cluster has {cluster_cpus}")
        engine.update(actors=n_actors, threads_per_actor=threads, cluster_cpus=cluster_cpus,
                      nodes=sum(1 for n in ray.nodes() if n.get("Alive")), ray_version=ray.__version__)
        if todo:
            fault = os.environ.get(FAULT_ENV)
            warm = [str(p.resolve()) for p in paths[:5]]
            _execute(todo, model, decoding, warm, warmup, fault, n_actors, threads, decode_cpus, task_retries, writer, engine, progress,
                     write_txt and repeats, out_dir, log)
    finally:
        if started:
            import ray

            ray.shutdown()
        records.sort(key=lambda r: (r.repeat, order.get(r.file, len(order)), r.file))
        summary = writer.flush()
    return records, summary


def dataset(items: list[dict], decode_fn, actor_cls, actor_kwargs: dict, n_actors: int, threads: int, decode_cpus: float, task_retries: int):
    """files -> decode tasks -> the actor pool (ray_scale runs it with stand-ins to measure Ray alone)."""
    import ray.data

    logging.getLogger("ray.data").setLevel(logging.WARNING)  # after Ray Data set up its logging: no progress lines
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # the driver's bar counts files
    ctx.print_on_execution_start = False
    ctx.max_errored_blocks = -1  # a file that fails past its retries is dropped here and made an error record by the driver
    ds = ray.data.from_items(items, override_num_blocks=len(items))  # one file per block: a retry redoes one file
    # Decode runs at most two files ahead per actor: enough to hide it, not a corpus in the object store.
    ds = ds.map(decode_fn, num_cpus=decode_cpus, compute=ray.data.TaskPoolStrategy(size=max(2, 2 * n_actors)))
    with warnings.catch_warnings():  # Ray 2.60 has no named parameter for the retries yet, only **ray_remote_args
        warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated")
        return ds.map_batches(
            actor_cls, batch_size=1, batch_format="numpy", num_cpus=threads, compute=ray.data.ActorPoolStrategy(size=n_actors),
            fn_constructor_kwargs=actor_kwargs, max_restarts=-1, max_task_retries=task_retries,
        )


def _execute(todo, model, decoding, warm, warmup, fault, n_actors, threads, decode_cpus, task_retries, writer, engine, progress, txt_repeats, out_dir, log):
    """The dataset, run; every record through the writer; every file accounted for."""
    from tqdm import tqdm

    items = [{"path": str(p.resolve()), "file": p.name, "repeat": rep} for p, rep in todo]
    actor_kwargs = {"model": model, "decoding": decoding, "warmup_paths": warm, "warmup": warmup, "fault": fault}
    ds = dataset(items, decode, TranscribeActor, actor_kwargs, n_actors, threads, decode_cpus, task_retries)
    expected = {(item["file"], item["repeat"]) for item in items}
    seen: set[tuple[str, int]] = set()
    spans, where, duplicates, t_first = [], {}, 0, None
    cpu0, t0 = _cpu_s(), time.perf_counter()
    bar = tqdm(total=len(items), desc="bench (ray)", unit="file", file=sys.stderr, disable=not progress, dynamic_ncols=True)
    try:
        for row in ds.iter_rows():
            record = Record.from_dict(json.loads(row["record"]))
            key = (record.file, record.repeat)
            if key in seen:  # Ray gives a block's output once; counted in the summary should that ever break
                duplicates += 1
                continue
            seen.add(key)
            t_first = t_first or time.perf_counter()
            if record.status == "ok":
                spans.append((*row["span"], record.duration_s))
                where[row["where"]] = where.get(row["where"], 0) + 1
            if record.status != "ok":
                log(f"error: {record.error}")
            writer.add(record)
            if txt_repeats and record.status == "ok" and record.repeat == txt_repeats - 1:
                write_atomic(safe_output_path(out_dir, record.file, ".transcript.txt"), record.text + "\n")
            bar.update(1)
            bar.set_postfix_str(record.file[:30], refresh=False)
    finally:
        bar.close()
        wall, cpu = time.perf_counter() - t0, _cpu_s() - cpu0
        engine.update(wall_s=wall, first_record_s=None if t_first is None else t_first - t0, driver_cpu_s=cpu,
                      records=len(seen), duplicates=duplicates, files_per_node=where, **steady_state(spans))
    for name, rep in sorted(expected - seen):
        record = Record(file=name, implementation=NATIVE, variant=resolve_variant(model.folder, model.variant), threads=threads,
                        repeat=rep, status="error", error=f"{name}: {LOST.format(n=task_retries + 1)}")
        log(f"error: {record.error}")
        writer.add(record)
    engine["lost_to_errors"] = len(expected - seen)


def steady_state(spans: list[tuple[float, float, float, float]]) -> dict:
    """Throughput from the actors' own clocks, (start, end, pid, audio seconds) per ok file:
    audio over the span from the first file's start to the last one's end (cluster start,
    actor start and model load left out; Ray, decode and the driver in), and an actor's idle
    time between two of its files (Ray's cost per file, as throughput sees it)."""
    if not spans:
        return {"steady_span_s": None, "steady_audio_s_per_s": None, "actor_gap_s_per_file": None}
    span = max(e for _, e, _, _ in spans) - min(s for s, _, _, _ in spans)
    gaps = []
    for pid in {p for _, _, p, _ in spans}:
        mine = sorted((s, e) for s, e, p, _ in spans if p == pid)
        gaps += [b[0] - a[1] for a, b in zip(mine, mine[1:])]
    audio = sum(a for *_, a in spans)
    return {"steady_span_s": span, "steady_audio_s": audio, "steady_audio_s_per_s": audio / span if span > 0 else None,
            "actor_busy_s": sum(e - s for s, e, _, _ in spans), "actor_gap_s_per_file": float(np.mean(gaps)) if gaps else None}


def _cpu_s() -> float:
    """CPU seconds of this process (the driver: its Ray Data executor threads and our writing)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
