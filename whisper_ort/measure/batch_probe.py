"""Where a batch of windows spends its time, in-process: `python -m whisper_ort.measure.batch_probe`.

The question behind serving's and long audio's batching: N short files (one 30 s window each)
one at a time against as one batch (`Transcriber.decode_windows`), and the batch's encoder and
decoder apart (the encoder as N batches of 1 against one of N; the decoder of the N rows
together). Rounds alternate the two orders; medians are printed with the CPU. No records: a
probe to run beside the serving and longbench figures.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def probe(audio_dir: str, files: str, threads: int, rounds: int, limit: int, warmup: bool = True) -> dict:
    """Median seconds of each way over `rounds`, after one warm-up of each shape (unless told not to:
    a smoke test of the probe itself)."""
    from whisper_ort import DecodingOptions, Transcriber
    from whisper_ort.core.audio import SAMPLE_RATE, load_audio
    from whisper_ort.core.features import log_mel_batch
    from whisper_ort.core.longform import CHUNK_S
    from whisper_ort.measure.bench import find_audio_files

    paths = find_audio_files(audio_dir, files)[:limit]
    if not paths:
        raise SystemExit(f"{audio_dir}: no audio file matches {files!r}")
    t = Transcriber(threads=threads)
    chunk = int(CHUNK_S * SAMPLE_RATE)
    mel = log_mel_batch([load_audio(p)[:chunk] for p in paths])
    options = DecodingOptions()
    n = len(paths)

    def one_at_a_time():
        for i in range(n):
            t.decode_windows(mel[i : i + 1], options)

    def decoder_rows():  # the decoder alone, on states encoded beforehand
        t._decode_states(states, t._word_options(options), np.random.default_rng(0), [chunk] * n, [False] * n)

    ways = {
        "one at a time": one_at_a_time,
        "one batch": lambda: t.decode_windows(mel, options),
        "encoder, batches of 1": lambda: [t.sessions.encode(mel[i : i + 1]) for i in range(n)],
        "encoder, one batch": lambda: t.sessions.encode(mel),
        "decoder, rows together": decoder_rows,
    }
    states = t.sessions.encode(mel)
    for fn in ways.values() if warmup else ():  # every shape once: the first run of a shape allocates
        fn()
    times: dict[str, list[float]] = {k: [] for k in ways}
    for r in range(rounds):
        for name in (list(ways) if r % 2 == 0 else list(reversed(ways))):
            times[name].append(_timed(ways[name]))
    return {"files": [p.name for p in paths], "threads": threads, "rounds": rounds,
            "median_s": {k: float(np.median(v)) for k, v in times.items()}}


def main(argv=None) -> None:
    from whisper_ort.measure.environment import cpu_model

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--audio-dir", default="audio")
    p.add_argument("--files", default="[jl]*", help="globs, comma-separated (the dev short files by default)")
    p.add_argument("--limit", type=int, default=8, help="at most this many files: the batch size")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args(argv)
    result = probe(a.audio_dir, a.files, a.threads, a.rounds, a.limit)
    print(f"{cpu_model()}, {a.threads} threads, {len(result['files'])} files, median of {a.rounds} rounds:")
    for name, s in result["median_s"].items():
        print(f"  {name:24s} {s:7.3f} s")


if __name__ == "__main__":
    main()
