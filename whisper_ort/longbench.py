"""Long-audio throughput: batched windows against the unbatched path and faster-whisper.

`python -m whisper_ort.longbench --minutes 5` builds a long file by concatenating the
long samples of audio/ (silero_test, the two pyannote files, the LibriSpeech clips, in
that order, repeated until the length is reached; 16 kHz mono float32 as load_audio gives
them), then times, each in its own process, interleaved over rounds: whisper_ort with
--batch-size 1 and N, and faster-whisper's sequential transcription at the same threads.
Writes results/benchmarks/longform/longform.json and .md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .records import write_atomic, write_json

SOURCES = ("silero_test.wav", "pyannote_dev00.wav", "pyannote_sample.wav", "libri_198-209-0000.ogg",
           "libri_3436-172162-0000.ogg", "libri_5703-47212-0000.ogg")


def build_long_file(audio_dir: str | Path, out: str | Path, minutes: float) -> Path:
    import soundfile as sf

    from .audio import load_audio

    pieces = [load_audio(Path(audio_dir) / name) for name in SOURCES]
    target = int(minutes * 60 * 16000)
    samples, i = [], 0
    while sum(len(p) for p in samples) < target:
        samples.append(pieces[i % len(pieces)])
        i += 1
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sf.write(out, np.concatenate(samples)[:target], 16000, subtype="FLOAT")
    return out


_WORKER = r"""
import json, sys, time
kind, path, threads, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if kind == "whisper_ort":
    from whisper_ort.pipeline import Transcriber
    t = Transcriber("whisper-base-with-past", threads=threads, batch_size=batch, shared_pool=True)
    t.transcribe(path)  # warm
    start = time.perf_counter(); r = t.transcribe(path); elapsed = time.perf_counter() - start
    print(json.dumps({"elapsed_s": elapsed, "text": r.text.strip(), "n_windows": r.n_windows}))
else:
    from whisper_ort.peers.faster_whisper import FasterWhisperPeer
    p = FasterWhisperPeer("whisper-base-with-past", threads=threads, max_new_tokens=128)
    p.transcribe_record(path)
    start = time.perf_counter(); r = p.transcribe_record(path); elapsed = time.perf_counter() - start
    print(json.dumps({"elapsed_s": elapsed, "text": r.text, "status": r.status}))
"""


def run(kind: str, path: Path, threads: int, batch: int) -> dict:
    proc = subprocess.run([sys.executable, "-c", _WORKER, kind, str(path), str(threads), str(batch)],
                          capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--audio-dir", default="audio")
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--output-dir", default="results/benchmarks/longform")
    a = p.parse_args(argv)
    out_dir = Path(a.output_dir)
    long_file = build_long_file(a.audio_dir, out_dir / f"long_{a.minutes:g}min.wav", a.minutes)
    settings = [("whisper_ort", 1), ("whisper_ort", a.batch_size), ("faster_whisper", 1)]
    runs: dict[str, list[dict]] = {}
    for rnd in range(a.rounds):
        for kind, batch in settings:
            label = f"{kind} batch {batch}" if kind == "whisper_ort" else "faster_whisper sequential"
            print(f"round {rnd + 1}: {label}", file=sys.stderr, flush=True)
            runs.setdefault(label, []).append(run(kind, long_file, a.threads, batch))
    audio_s = a.minutes * 60
    rows = []
    for label, rs in runs.items():
        elapsed = float(np.median([r["elapsed_s"] for r in rs]))
        rows.append({"setting": label, "elapsed_s": elapsed, "audio_s_per_s": audio_s / elapsed})
    fw = next(r for r in rows if r["setting"].startswith("faster_whisper"))
    for r in rows:
        r["throughput_vs_faster_whisper"] = r["audio_s_per_s"] / fw["audio_s_per_s"]
    unbatched = runs["whisper_ort batch 1"][0]["text"]
    same = runs[f"whisper_ort batch {a.batch_size}"][0]["text"] == unbatched
    result = {"file": str(long_file), "minutes": a.minutes, "threads": a.threads, "rounds": a.rounds,
              "sources": list(SOURCES), "rows": rows, "batched_text_identical": same, "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    lines = [f"{a.minutes:g} min of audio ({', '.join(SOURCES)} concatenated in turn), {a.threads} threads, warm, median of {a.rounds} round(s).", "",
             "| setting | seconds | audio s per s | throughput / faster-whisper |", "|---|---:|---:|---:|"]
    lines += [f"| {r['setting']} | {r['elapsed_s']:.1f} | {r['audio_s_per_s']:.1f} | {r['throughput_vs_faster_whisper']:.2f}x |" for r in rows]
    lines += ["", f"Batched text identical to unbatched: {'yes' if same else 'NO'}."]
    write_json(out_dir / "longform.json", result)
    write_atomic(out_dir / "longform.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
