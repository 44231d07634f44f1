"""`whisper-ort bench`: warmup, repeats, one record per (file, repeat), summary, atomic files.

Records are written after every file, so an interrupted run keeps everything finished
so far and `--resume` skips it on the next run.
"""

from __future__ import annotations

import fnmatch
import json
import sys
from pathlib import Path

from whisper_ort.core.audio import AudioError
from whisper_ort.core.decoding import DecodingOptions
from whisper_ort.core.options import ModelOptions
from whisper_ort.core.pipeline import STAGES, Transcriber
from whisper_ort.measure.environment import environment, model_hash
from whisper_ort.measure.records import Record, read_records, summarize, write_atomic, write_json, write_records
from whisper_ort.study.paths import BENCH_DIR, NATIVE

AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".m4a", ".opus", ".webm", ".mp4", ".mkv", ".mov", ".aac", ".wma", ".oga"}


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


def summary_table(summary: dict, records: list[Record]) -> str:
    """A plain-text table for the terminal: one line per file (median over repeats)."""
    from whisper_ort.measure.records import stats

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


def record_of(transcriber: Transcriber, path: str | Path, options: DecodingOptions | None = None, repeat: int = 0, samples=None) -> Record:
    """One benchmark record; a bad file becomes status=error with a one-line cause.

    `samples`: the file already decoded (the Ray engine decodes in tasks of its own)."""
    record = Record(file=Path(path).name, implementation=NATIVE, variant=transcriber.variant, threads=transcriber.threads, repeat=repeat)
    try:
        result = transcriber.transcribe(path if samples is None else samples, options)
    except AudioError as exc:
        record.status, record.error = "error", str(exc)
        return record
    record.duration_s = result.duration_s
    record.text = result.text.strip()
    record.n_tokens = len(result.tokens)
    record.language = result.language
    record.n_windows = result.n_windows
    record.flags = list(result.flags)
    record.loop_overhead_pct = result.loop_overhead_pct
    for name in STAGES:
        setattr(record, name, result.timings[name])
    return record.finish()


def run_bench(
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
    engine: str = "local",
    **ray_options,
) -> tuple[list[Record], dict]:
    """Run the transcriber over a folder; returns (records, summary) and writes them.

    engine="ray": the same run on a Ray cluster (measure/ray_engine.py; ray_options: address,
    actors, num_cpus, decode_cpus), the same records and files."""
    if engine == "ray":
        from whisper_ort.measure.ray_engine import run_ray_bench

        return run_ray_bench(audio_dir, model, decoding, output_dir, files, warmup, repeats, write_txt, resume, progress, log, **ray_options)
    if engine != "local":
        raise ValueError(f"engine must be 'local' or 'ray', not {engine!r}")
    if ray_options:
        raise TypeError(f"options for the ray engine only: {', '.join(sorted(ray_options))}")
    from tqdm import tqdm

    log = log or (lambda msg: print(msg, file=sys.stderr))
    decoding = decoding or DecodingOptions()
    out_dir = Path(output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = find_audio_files(audio_dir, files)
    if not paths:
        raise FileNotFoundError(f"{audio_dir}: no audio files" + (f" match {files!r}" if files else ""))

    # The model folder is checked (and sessions built) before any audio is read.
    transcriber = Transcriber(options=model or ModelOptions())

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
            if record_of(transcriber, path, decoding).status == "ok":
                break

    # The environment does not change during a run: read it once, not after every file.
    settings = {**transcriber.settings(decoding), "batch_size": decoding.batch_size, "chunking": decoding.chunking}
    env = environment({"threads": transcriber.threads, "transcriber": settings, "model_sha256": model_hash(transcriber.model_dir)})

    def write_all():
        summary = summarize(
            records,
            env,
            implementation=NATIVE, variant=transcriber.variant, warmup=warmup, repeats=repeats, audio_dir=str(audio_dir),
        )
        write_records(out_dir, records)
        write_json(out_dir / "inference_summary.json", summary)
        return summary

    todo = [(path, rep) for rep in range(repeats) for path in paths if (path.name, rep) not in done]
    bar = tqdm(todo, desc="bench", unit="file", file=sys.stderr, disable=not progress, dynamic_ncols=True)
    for path, rep in bar:
        bar.set_postfix_str(path.name[:30])
        record = record_of(transcriber, path, decoding, repeat=rep)
        if record.status != "ok":
            log(f"error: {record.error}")
        records.append(record)
        if write_txt and record.status == "ok" and rep == repeats - 1:
            write_atomic(safe_output_path(out_dir, path.name, ".transcript.txt"), record.text + "\n")
        write_all()  # after every file: an interruption loses nothing finished
    summary = write_all()
    return records, summary


def load_summary(path) -> dict:
    return json.loads(Path(path).read_text())
