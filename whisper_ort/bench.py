"""`whisper-ort bench`: warmup, repeats, one record per (file, repeat), summary, atomic files.

Records are written after every file, so an interrupted run keeps everything finished
so far and `--resume` skips it on the next run.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path

from .records import Record, read_records, summarize, write_atomic, write_json, write_records

AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".m4a", ".opus", ".webm", ".mp4", ".mkv", ".mov", ".aac", ".wma", ".oga"}
PACKAGES = ("whisper-ort", "onnxruntime", "numpy", "tokenizers", "soundfile", "av", "soxr", "faster-whisper", "ctranslate2", "transformers", "torch", "optimum", "optimum-onnx")


def find_audio_files(audio_dir: str | Path, pattern: str | None = None) -> list[Path]:
    """Audio files of a folder (by extension), sorted; globs (comma-separated) narrow them by name."""
    audio_dir = Path(audio_dir)
    if not audio_dir.is_dir():
        raise FileNotFoundError(f"{audio_dir}: audio folder not found")
    files = [p for p in audio_dir.iterdir() if p.suffix.lower() in AUDIO_EXTENSIONS and not p.name.startswith(".")]
    if pattern:  # one glob, or several separated by commas
        globs = [g.strip() for g in pattern.split(",") if g.strip()]
        files = [p for p in files if any(fnmatch.fnmatch(p.name, g) for g in globs)]
    return sorted(files, key=lambda p: p.name)


def safe_output_path(out_dir: Path, name: str, suffix: str) -> Path:
    """out_dir/<name><suffix>, never outside out_dir whatever the audio file was called."""
    stem = Path(name).name.lstrip(".") or "_"
    path = (out_dir / f"{stem}{suffix}").resolve()
    if path.parent != out_dir.resolve():
        raise ValueError(f"{name}: output name would leave {out_dir}")
    return path


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


def summary_table(summary: dict, records: list[Record]) -> str:
    """A plain-text table for the terminal: one line per file (median over repeats)."""
    from .records import stats

    lines = [f"{'file':34} {'dur s':>6} {'total s':>8} {'RTF':>6} {'enc s':>6} {'ms/tok':>7} {'tok':>4}  status"]
    by_file: dict[str, list[Record]] = {}
    for r in records:
        by_file.setdefault(r.file, []).append(r)
    for name, recs in by_file.items():
        ok = [r for r in recs if r.status == "ok"]
        if not ok:
            lines.append(f"{name[:34]:34} {'':>6} {'':>8} {'':>6} {'':>6} {'':>7} {'':>4}  error: {recs[-1].error}")
            continue

        def p50(attr, ok=ok):
            s = stats(getattr(r, attr) for r in ok)
            return s["p50"] if s else float("nan")

        lines.append(f"{name[:34]:34} {ok[0].duration_s:6.1f} {p50('t_total'):8.3f} {p50('rtf'):6.3f} {p50('t_encoder'):6.3f} {p50('ms_per_token'):7.1f} {ok[-1].n_tokens:4d}  ok")
    t = summary.get("t_total_s") or {}
    lines.append(f"{summary['n_ok']} ok, {summary['n_failed']} failed; t_total p50 {t.get('p50', float('nan')):.3f} s, p95 {t.get('p95', float('nan')):.3f} s")
    return "\n".join(lines)


def run_bench(
    audio_dir="audio",
    onnx_dir="whisper-base-with-past",
    output_dir="results/benchmarks",
    files: str | None = None,
    threads: int = 2,
    inter_threads: int = 1,
    graph_opt: str = "all",
    execution_mode: str = "sequential",
    language: str | None = "en",
    task: str = "transcribe",
    max_new_tokens: int = 128,
    timestamps: bool = False,
    warmup: int = 1,
    repeats: int = 1,
    write_txt: bool = False,
    tokenizer_json: str | None = None,
    batch_size: int = 1,
    chunking: str = "strided",
    variant: str = "auto",
    resume: bool = False,
    progress: bool = True,
    log=None,
    **session_flags,
) -> tuple[list[Record], dict]:
    """Run the transcriber over a folder; returns (records, summary) and writes them."""
    from tqdm import tqdm

    from .pipeline import Transcriber

    log = log or (lambda msg: print(msg, file=sys.stderr))
    out_dir = Path(output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = find_audio_files(audio_dir, files)
    if not paths:
        raise FileNotFoundError(f"{audio_dir}: no audio files" + (f" match {files!r}" if files else ""))

    # The model folder is checked (and sessions built) before any audio is read.
    transcriber = Transcriber(
        onnx_dir, threads=threads, inter_threads=inter_threads, graph_opt=graph_opt, execution_mode=execution_mode,
        language=language, task=task, timestamps=timestamps, max_new_tokens=max_new_tokens,
        batch_size=batch_size, chunking=chunking, variant=variant, tokenizer_json=tokenizer_json, **session_flags,
    )

    records: list[Record] = []
    done: set[tuple[str, int]] = set()
    per_file = out_dir / "inference_per_file.json"
    if resume and per_file.is_file():
        try:
            records = [r for r in read_records(per_file) if r.status == "ok"]
        except (ValueError, KeyError, TypeError) as exc:
            log(f"{per_file}: cannot resume from it ({exc}); starting over")
            records = []
        done = {(r.file, r.repeat) for r in records}
        if done:
            log(f"resume: {len(done)} record(s) already done in {per_file}")

    for _ in range(warmup):
        for path in paths:  # the first file that decodes warms the sessions
            if transcriber.transcribe_record(path).status == "ok":
                break

    # The environment does not change during a run: read it once, not after every file.
    env = environment({"threads": threads, "transcriber": transcriber.settings(), "model_sha256": model_hash(transcriber.model_dir)})

    def write_all():
        summary = summarize(
            records,
            env,
            implementation="whisper_ort", variant=transcriber.variant, warmup=warmup, repeats=repeats, audio_dir=str(audio_dir),
        )
        write_records(out_dir, records)
        write_json(out_dir / "inference_summary.json", summary)
        return summary

    todo = [(path, rep) for rep in range(repeats) for path in paths if (path.name, rep) not in done]
    bar = tqdm(todo, desc="bench", unit="file", file=sys.stderr, disable=not progress, dynamic_ncols=True)
    for path, rep in bar:
        bar.set_postfix_str(path.name[:30])
        record = transcriber.transcribe_record(path, repeat=rep)
        if record.status != "ok":
            log(f"error: {record.error}")
        records.append(record)
        if write_txt and record.status == "ok" and rep == repeats - 1:
            write_atomic(safe_output_path(out_dir, path.name, ".transcript.txt"), record.text + "\n")
        write_all()  # after every file: an interruption loses nothing finished
    summary = write_all()
    return records, summary


def main_bench(args) -> int:
    records, summary = run_bench(
        audio_dir=args.audio_dir, onnx_dir=args.onnx_dir, output_dir=args.output_dir, files=args.files,
        threads=args.threads, inter_threads=args.inter_threads, graph_opt=args.graph_opt, execution_mode=args.execution_mode,
        language=None if args.language in (None, "auto") else args.language, task=args.task,
        max_new_tokens=args.max_new_tokens, timestamps=args.timestamps, warmup=args.warmup, repeats=args.repeats,
        write_txt=args.write_txt, tokenizer_json=args.tokenizer_json, batch_size=args.batch_size,
        chunking=args.chunking, variant=args.variant, resume=args.resume, progress=not args.no_progress,
        spinning=args.spinning, prepacking=args.prepacking, arena=args.arena, mem_pattern=args.mem_pattern,
        shared_pool=args.shared_pool,
        shared_arena=args.shared_arena,
        full_logits=args.full_logits,
    )
    print(summary_table(summary, records))
    print(f"wrote {Path(args.output_dir) / 'inference_per_file.json'}, .csv and inference_summary.json")
    return 0 if summary["n_failed"] == 0 else 1


def load_summary(path) -> dict:
    return json.loads(Path(path).read_text())
