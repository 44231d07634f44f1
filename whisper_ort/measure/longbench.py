"""Long-audio throughput: batched windows against the unbatched path and faster-whisper.

`python -m whisper_ort.measure.longbench --minutes 5` builds a long file by concatenating the
long samples of audio/ (silero_test, the two pyannote files, the LibriSpeech clips, in
that order, repeated; whole pieces only, so the file is at least that long; 16 kHz mono
float32 as load_audio gives them), then times, each in its own process, interleaved over
rounds, warm, at the same threads:

    whisper_ort, strided windows (the transformers pipeline's), batch 1 and N
    whisper_ort, silence-cut windows, batch 1 and N
    whisper_ort, Silero VAD windows (--chunkings vad), batch 1 and N
    whisper_ort, openai's sequential walk (--chunkings sequential): greedy, and with
        openai transcribe()'s defaults (the temperature ladder, conditioned on the previous text)
    faster-whisper's sequential transcription (the `faster_whisper` peer), its greedy walk
        with timestamps, and transcribe()'s defaults (beam 5)
    faster-whisper's BatchedInferencePipeline, batch N (Silero VAD: the model ships in the wheel)
    transformers generate's sequential long-form walk and its ASR pipeline (chunk_length_s=30)

and scores each text against the pieces' references joined in order: a piece's MANIFEST.csv
reference_text where it has one (ground truth: the dev clips), else transformers' output on
the piece alone (the meeting samples, LibriSpeech: `generate`, its sequential walk past 30 s;
results/reference/inference_per_file.json, else transcribed once and kept in
piece_references.json).
Writes results/benchmarks/longform/longform.json and .md.

Other files: `--sources '[jl]*' --pause-s 2` builds it from the dev short clips with 2 s of
digital silence after each; `--only 'batch 8' --chunkings vad silence` runs fewer rows;
`--model-dir` the whisper_ort folder (chunking="vad" needs Silero in it: `whisper-ort optimize`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from whisper_ort.measure.environment import cpu_model
from whisper_ort.measure.records import read_records, write_atomic, write_json
from whisper_ort.study.paths import LONGFORM_DIR
from whisper_ort.study.paths import REFERENCE as REFERENCE_PATH

SOURCES = ("silero_test.wav", "pyannote_dev00.wav", "pyannote_sample.wav", "libri_198-209-0000.ogg",
           "libri_3436-172162-0000.ogg", "libri_5703-47212-0000.ogg")
REFERENCE = Path(REFERENCE_PATH)
SR = 16000


def build_long_file(audio_dir: str | Path, out: str | Path, minutes: float, sources=SOURCES, pause_s: float = 0.0) -> tuple[Path, list[str], float]:
    """sources in turn until at least `minutes`, whole pieces only (so the pieces' references
    apply), each followed by pause_s of digital silence.

    Returns (path, the pieces in order, duration in seconds)."""
    import soundfile as sf

    from whisper_ort.core.audio import load_audio

    pause = np.zeros(int(round(pause_s * SR)), np.float32)
    pieces = {name: np.concatenate([load_audio(Path(audio_dir) / name), pause]) for name in sources}
    target = int(minutes * 60 * SR)
    order: list[str] = []
    while sum(len(pieces[n]) for n in order) < target:
        order.append(sources[len(order) % len(sources)])
    samples = np.concatenate([pieces[n] for n in order])
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sf.write(out, samples, SR, subtype="FLOAT")
    return out, order, len(samples) / SR


def piece_references(audio_dir: str | Path, names, cache: Path, threads: int) -> tuple[dict[str, str], str]:
    """({piece: reference text}, kind). A piece with a MANIFEST.csv `reference_text` is scored
    against that ground truth; one without (the meeting samples, LibriSpeech) against
    transformers' output on the piece alone (`generate`, torch fp32, greedy; its sequential
    long-form walk with timestamps past 30 s): the committed reference, else transcribed once
    and cached. kind: "ground truth", "transformers" or "ground truth + transformers"."""
    from whisper_ort.measure.wer import manifest_references

    truth = manifest_references(audio_dir)
    others = sorted(set(names) - set(truth))
    refs = {r.file: r.text for r in read_records(REFERENCE) if r.status == "ok"} if REFERENCE.is_file() and others else {}
    cached = json.loads(cache.read_text()) if cache.is_file() and others else {}
    missing = sorted(set(others) - set(refs) - set(cached))
    if missing:
        print(f"reference: transformers generate on {', '.join(missing)} (once; kept in {cache})", file=sys.stderr, flush=True)
        for name in missing:
            r = run_worker("hf_reference", Path(audio_dir) / name, threads)
            if r["status"] != "ok":
                raise RuntimeError(f"reference for {name}: {r['error']}")
            cached[name] = r["text"]
        write_json(cache, cached)
    kind = "ground truth" if not others else "transformers" if len(others) == len(set(names)) else "ground truth + transformers"
    return {n: truth[n] if n in truth else refs.get(n, cached.get(n)) for n in names}, kind


def _transformers(kind: str, threads: int):
    """transformers' two long-form paths, torch fp32, greedy: generate's sequential walk
    (timestamps, seeking to the last segment's end; forced past 30 s) and the ASR pipeline's
    strided chunks (chunk_length_s=30); no dense window is cut short."""
    from whisper_ort.measure.peers import create

    return create(kind, "whisper-base-with-past", threads=threads, max_new_tokens=HF_MAX_NEW_TOKENS)


def worker(argv: list[str]) -> None:
    """One setting in a fresh process: load, one warm run, one timed run; prints a JSON line."""
    kind, path, threads = argv[0], argv[1], int(argv[2])
    batch = int(argv[3]) if len(argv) > 3 else 1
    chunking = argv[4] if len(argv) > 4 else "strided"
    info: dict = {}  # extra fields of the answer
    if kind == "whisper_ort":
        from whisper_ort.core.pipeline import Transcriber

        t = Transcriber(os.environ.get(MODEL_DIR_ENV, "whisper-base-with-past"), threads=threads)

        # "sequential_openai": openai/whisper transcribe()'s defaults in the sequential walk
        # (the temperature ladder, conditioned on the previous text), greedy at temperature 0
        options = dict(OPENAI_DEFAULTS, chunking="sequential") if chunking == SEQUENTIAL_OPENAI else {"chunking": chunking}

        def once():
            r = t.transcribe(path, batch_size=batch, **options)
            return r.text.strip(), r.n_windows

        info["variant"] = t.variant
    elif kind == "faster_whisper":
        from whisper_ort.measure.peers.faster_whisper import FasterWhisperPeer

        p = FasterWhisperPeer("whisper-base-with-past", threads=threads, max_new_tokens=128)

        def once():
            r = p.transcribe_record(path)
            if r.status != "ok":
                raise RuntimeError(r.error)
            return r.text, r.n_windows
    elif kind in ("faster_whisper_timestamps", "faster_whisper_defaults"):
        from faster_whisper import decode_audio

        from whisper_ort.measure.peers.faster_whisper import FasterWhisperPeer

        p = FasterWhisperPeer("whisper-base-with-past", threads=threads)
        # its recommended long-form walks: greedy with timestamps (seeking to the last segment's
        # end), or transcribe()'s defaults as its users run them (beam 5, the temperature
        # ladder, conditioned on the previous text); both fp32, language given, no VAD
        greedy = {"beam_size": 1, "temperature": 0.0} if kind == "faster_whisper_timestamps" else {}

        def once():
            segments, _ = p.model.transcribe(decode_audio(path, sampling_rate=SR), language="en", task="transcribe", **greedy)
            segments = list(segments)
            return "".join(s.text for s in segments).strip(), len({s.seek for s in segments})
    elif kind == "faster_whisper_batched":
        from faster_whisper import BatchedInferencePipeline, decode_audio

        from whisper_ort.measure.peers.faster_whisper import FasterWhisperPeer, ct2_max_new_tokens

        p = FasterWhisperPeer("whisper-base-with-past", threads=threads, max_new_tokens=128)
        pipe = BatchedInferencePipeline(p.model)
        windows = []
        inner = pipe.generate_segment_batched

        def counted(features, *args, **kwargs):  # one call per batch: count its windows
            windows.append(len(features))
            return inner(features, *args, **kwargs)

        pipe.generate_segment_batched = counted

        def once():
            windows.clear()
            audio = decode_audio(path, sampling_rate=SR)
            # The sequential peer's settings where the batched API has them; VAD is required
            # past 30 s (its defaults here: speech merged into chunks of at most 30 s).
            segments, _ = pipe.transcribe(audio, language="en", task="transcribe", batch_size=batch, beam_size=1,
                                          temperature=0.0, without_timestamps=True, vad_filter=True,
                                          max_new_tokens=ct2_max_new_tokens(128), word_timestamps=False)
            return "".join(s.text for s in segments).strip(), sum(windows)
    elif kind == "hf_reference":  # reference transcripts of pieces, not timed
        r = _transformers("hf_generate", threads).transcribe_record(path)
        print(json.dumps({"text": r.text, "status": r.status, "error": r.error}))
        return
    elif kind in ("hf_generate", "hf_pipeline"):
        p = _transformers(kind, threads)

        def once():
            r = p.transcribe_record(path)
            if r.status != "ok":
                raise RuntimeError(r.error)
            return r.text.strip(), r.n_windows
    else:
        raise ValueError(kind)
    once()  # warm
    start = time.perf_counter()
    text, n_windows = once()
    print(json.dumps({"elapsed_s": time.perf_counter() - start, "text": text, "n_windows": n_windows, **info}))


def run_worker(kind: str, path: Path, threads: int, batch: int = 1, chunking: str = "strided") -> dict:
    code = "import sys; from whisper_ort.measure.longbench import worker; worker(sys.argv[1:])"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", code, kind, str(path), str(threads), str(batch), chunking],
                          capture_output=True, text=True, timeout=3600, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


FW_SEQ = "faster_whisper sequential"  # the study's setting: greedy without timestamps
FW_TIMESTAMPS = "faster_whisper greedy, timestamps"
FW_DEFAULTS = "faster_whisper defaults (beam 5)"
HF_GENERATE = "transformers generate, sequential (timestamps)"
HF_PIPELINE = "transformers pipeline, chunk_length_s=30"
HF_MAX_NEW_TOKENS = 440  # the decoder's 448 positions less the prompt's
MODEL_DIR_ENV = "LONGBENCH_MODEL_DIR"  # the workers' whisper_ort folder (--model-dir)
SEQUENTIAL_OPENAI = "sequential_openai"  # whisper_ort's sequential walk with openai's defaults (a row of `--chunkings sequential`)
OPENAI_DEFAULTS = {"temperature": (0.0, 0.2, 0.4, 0.6, 0.8, 1.0), "condition_on_previous_text": True}


def settings(batch: int, chunkings=("strided", "silence"), only=None) -> list[tuple[str, str, int, str]]:
    """(label, kind, batch, chunking) of every row; only: the rows whose label holds one of these."""
    rows = []
    for chunking in chunkings:
        for b in (1,) if chunking == "sequential" else dict.fromkeys((1, batch)):  # sequential: window after window
            rows.append((f"whisper_ort {chunking} batch {b}", "whisper_ort", b, chunking))
        if chunking == "sequential":
            rows.append(("whisper_ort sequential, openai defaults (temperature ladder, previous text)", "whisper_ort", 1, SEQUENTIAL_OPENAI))
    rows += [(FW_SEQ, "faster_whisper", 1, "-"), (FW_TIMESTAMPS, "faster_whisper_timestamps", 1, "-"), (FW_DEFAULTS, "faster_whisper_defaults", 1, "-"),
             (f"faster_whisper BatchedInferencePipeline batch {batch}", "faster_whisper_batched", batch, "-"),
             (HF_GENERATE, "hf_generate", 1, "-"), (HF_PIPELINE, "hf_pipeline", 1, "-")]
    return [r for r in rows if not only or any(o in r[0] for o in only)]


def _ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"  # "-": the sequential peer's row was not run


def markdown(result: dict) -> str:
    """longform.md from longform.json's contents."""
    rows, audio_s = result["rows"], result["duration_s"]
    kind = result.get("reference_kind", "transformers")
    lines = [f"{audio_s / 60:.2f} min of audio ({audio_s:.1f} s: {len(result['pieces'])} whole pieces, {', '.join(result['sources'])} in turn), "
             f"{result['threads']} threads, warm, median of {result['rounds']} round(s); each setting in its own process; "
             f"whisper_ort variant {', '.join(result['whisper_ort_variant'])} (auto).", "",
             f"| setting | seconds | each round, s | audio s per s | throughput / faster-whisper sequential | windows | WER vs {kind} | sub / del / ins | longest deletion run |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['setting']} | {r['elapsed_s']:.1f} | {' '.join(f'{x:.1f}' for x in r['elapsed_rounds_s'])} | {r['audio_s_per_s']:.1f} | {_ratio(r['throughput_vs_faster_whisper'])} | "
              f"{r['n_windows'] if r['n_windows'] is not None else '?'} | {100 * r['wer']:.1f}% | {r['substitutions']} / {r['deletions']} / {r['insertions']} | "
              f"{r.get('longest_deletion_run', '?')} |" for r in rows]
    lines += ["", "Windows: strided = the transformers pipeline's 30 s windows every 20 s, stitched by longest common sequence; "
              "silence = windows of at most 30 s cut in the middle of the longest pause of their last 5 s, no overlap, texts joined; "
              "vad = Silero VAD speech merged into windows of at most 30 s (the BatchedInferencePipeline's), openai's no-speech rule on each; "
              "sequential = openai's transcribe() walk with timestamps, seeking to the last segment's end (greedy; openai defaults: "
              "the temperature ladder 0-1 by 0.2 on a window above 2.4 compression ratio or below -1 mean log-probability, conditioned on the previous text); "
              "faster-whisper sequential = its 30 s walk without timestamps, no VAD (the study's setting); greedy, timestamps = its walk seeking to the last "
              "segment's end; defaults = transcribe() as its users run it (beam 5, temperature ladder, previous text); BatchedInferencePipeline = Silero VAD speech merged into chunks of at most 30 s "
              "(silence between them is not decoded); transformers generate = its sequential long-form walk (timestamps forced past 30 s, "
              "seeking to the last segment's end), torch fp32, greedy; transformers pipeline = its 30 s chunks with 5 s strides, stitched.", "",
              (f"WER vs {kind}: the pieces' references joined in order, {result['reference_words']} words, normalized Whisper's way: "
               "a piece's reference_text in MANIFEST.csv where it has one (ground truth), else transformers `generate` on the piece alone "
               "(torch fp32, greedy; its sequential walk with timestamps past 30 s): another model run, not ground truth, and the long file's "
               "windows cross the pieces' boundaries where its did not. ")
              + "Deletions are where windowing loses words (the longest run: a window decoded short loses a run, scattered deletions do not): "
              "faster-whisper's sequential walk (no timestamps, so it seeks a full 30 s) cuts words at its boundaries and loses the rest "
              "of a window Whisper ends early (a 30 s window decoded to a single short phrase); the strided stitch (transformers' "
              "`_find_longest_common_sequence`) aligns such a short window inside its neighbour and drops the words after the match.",
              "", "Batched text identical to unbatched: "
              + ", ".join(f"{c} {'yes' if same else 'NO'}" for c, same in result["batched_text_identical"].items()) + "."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--audio-dir", default="audio")
    p.add_argument("--minutes", type=float, default=5.0, help="at least this long: whole pieces only")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--output-dir", default=LONGFORM_DIR)
    p.add_argument("--render", action="store_true", help="only rewrite longform.md from longform.json (no runs)")
    p.add_argument("--sources", nargs="+", default=list(SOURCES), help="pieces (names or globs in --audio-dir), in turn")
    p.add_argument("--pause-s", type=float, default=0.0, help="digital silence after each piece")
    p.add_argument("--chunkings", nargs="+", default=["strided", "silence"], help="whisper_ort's rows (strided silence vad)")
    p.add_argument("--only", nargs="+", default=None, help="run only the rows whose label holds one of these")
    p.add_argument("--model-dir", default=None, help="whisper_ort's model folder (default: whisper-base-with-past)")
    a = p.parse_args(argv)
    out_dir = Path(a.output_dir)
    if a.render:
        write_atomic(out_dir / "longform.md", markdown(json.loads((out_dir / "longform.json").read_text())))
        return 0
    os.environ["HF_HUB_OFFLINE"] = "1"  # the WER normalizer imports transformers
    from whisper_ort.measure.wer import measures, normalizer_name

    if a.model_dir:
        os.environ[MODEL_DIR_ENV] = str(Path(a.model_dir).resolve())
    sources = [p.name for pattern in a.sources for p in sorted(Path(a.audio_dir).glob(pattern))]
    if not sources:
        raise SystemExit(f"--sources {' '.join(a.sources)}: no such file in {a.audio_dir}")
    default = sources == list(SOURCES) and not a.pause_s
    name = f"long_{a.minutes:g}min.wav" if default else f"long_{a.minutes:g}min_{len(sources)}pieces_pause{a.pause_s:g}s.wav"
    long_file, order, audio_s = build_long_file(a.audio_dir, out_dir / name, a.minutes, sources, a.pause_s)
    refs, reference_kind = piece_references(a.audio_dir, order, out_dir / "piece_references.json", a.threads)
    reference = " ".join(refs[n].strip() for n in order)
    runs: dict[str, list[dict]] = {}
    rows_run = settings(a.batch_size, a.chunkings, a.only)
    for rnd in range(a.rounds):
        for label, kind, batch, chunking in rows_run:
            print(f"round {rnd + 1}: {label}", file=sys.stderr, flush=True)
            runs.setdefault(label, []).append(run_worker(kind, long_file, a.threads, batch, chunking))
    fw_elapsed = float(np.median([r["elapsed_s"] for r in runs[FW_SEQ]])) if FW_SEQ in runs else None
    rows = []
    for label, *_ in rows_run:
        rs = runs[label]
        elapsed = float(np.median([r["elapsed_s"] for r in rs]))
        m = measures(reference, rs[0]["text"])
        rows.append({"setting": label, "elapsed_s": elapsed, "elapsed_rounds_s": [r["elapsed_s"] for r in rs], "audio_s_per_s": audio_s / elapsed,
                     "throughput_vs_faster_whisper": fw_elapsed / elapsed if fw_elapsed else None, "n_windows": rs[0].get("n_windows"),
                     "wer": m["wer"], **{k: m[k] for k in ("substitutions", "deletions", "insertions", "longest_deletion_run")}, "text": rs[0]["text"]})
    by = {r["setting"]: r for r in rows}
    identical = {c: by[f"whisper_ort {c} batch {a.batch_size}"]["text"] == by[f"whisper_ort {c} batch 1"]["text"] for c in a.chunkings
                 if f"whisper_ort {c} batch 1" in by and f"whisper_ort {c} batch {a.batch_size}" in by}
    ref_words = measures(reference, reference)["ref_words"]
    variants = sorted({r["variant"] for rs in runs.values() for r in rs if "variant" in r})
    result = {"file": str(long_file), "whisper_ort_variant": variants, "minutes": a.minutes, "duration_s": audio_s, "pieces": order, "threads": a.threads,
              "rounds": a.rounds, "batch_size": a.batch_size, "sources": sources, "pause_s": a.pause_s, "rows": rows,
              "batched_text_identical": identical, "reference_words": ref_words, "reference_kind": reference_kind, "normalizer": normalizer_name(),
              "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "cpu": cpu_model()}
    write_json(out_dir / "longform.json", result)
    text = markdown(result)
    write_atomic(out_dir / "longform.md", text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
