"""Peak memory of one long recording, end to end: `python -m whisper_ort.measure.long_memory --hours 1`.

Builds a recording of about `--hours` from the dev clips that have a reference text (in
turn, 1 s of digital silence after each, resampled to 44.1 kHz stereo FLAC so the decode
and resample are exercised as a user's file would), then runs `whisper-ort transcribe` on
it in a fresh process per chunking and reports that child's peak RSS (wait4's rusage), its wall
time, the audio's size as 16 kHz float32 samples (the floor of holding it at once) and the
WER against the clips' references joined in order. Writes long_memory.json atomically.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from whisper_ort.measure.environment import cpu_model
from whisper_ort.measure.records import write_json
from whisper_ort.study.paths import BENCH_DIR

OUT_SR = 44100  # the file's rate: load_audio resamples it block by block


def build_recording(audio_dir: Path, out: Path, hours: float, pause_s: float = 1.0) -> tuple[Path, str, float]:
    """(path, reference text, seconds): the clips with a reference in MANIFEST.csv, in turn."""
    import soundfile as sf
    import soxr

    from whisper_ort.core.audio import load_audio
    from whisper_ort.measure.wer import manifest_references

    refs = manifest_references(audio_dir)
    if not refs:
        raise SystemExit(f"{audio_dir}/MANIFEST.csv: no file with a reference_text")
    pause = np.zeros(int(pause_s * OUT_SR), np.float32)
    clips = {name: np.concatenate([soxr.resample(load_audio(audio_dir / name), 16000, OUT_SR), pause]) for name in sorted(refs)}
    target = int(hours * 3600 * OUT_SR)
    out.parent.mkdir(parents=True, exist_ok=True)
    n, words, names = 0, [], sorted(refs)
    with sf.SoundFile(out, "w", OUT_SR, 2, format="FLAC", subtype="PCM_16") as f:
        while n < target:  # written clip by clip: the builder holds no hour of audio either
            name = names[len(words) % len(names)]
            f.write(np.stack([clips[name], clips[name]], axis=1))
            n += len(clips[name])
            words.append(refs[name])
    return out, " ".join(words), n / OUT_SR


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--audio-dir", default="samples")
    p.add_argument("--hours", type=float, default=1.0)
    p.add_argument("--chunkings", nargs="+", default=["silence"], help="one transcribe run each")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--output-dir", default=str(Path(BENCH_DIR) / "long_memory"))
    a = p.parse_args(argv)
    os.environ["HF_HUB_OFFLINE"] = "1"  # the WER normalizer imports transformers
    from whisper_ort.measure.wer import measures

    out_dir = Path(a.output_dir)
    path, reference, seconds = build_recording(Path(a.audio_dir), out_dir / f"long_{a.hours:g}h.flac", a.hours)
    rows = []
    for chunking in a.chunkings:
        txt = out_dir / f"{chunking}.txt"
        cmd = [sys.executable, "-m", "whisper_ort.cli", "transcribe", str(path), "--language", "en", "--chunking", chunking,
               "--batch-size", str(a.batch_size), "--threads", str(a.threads)]
        start = time.perf_counter()
        with open(txt, "w", encoding="utf-8") as f, open(out_dir / f"{chunking}.err", "w") as err:
            proc = subprocess.Popen(cmd, stdout=f, stderr=err)
            _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage: its peak RSS
        wall = time.perf_counter() - start
        peak_mb = usage.ru_maxrss / 1024  # KiB on Linux
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{chunking}: {(out_dir / f'{chunking}.err').read_text().strip().splitlines()[-1:]}")
        m = measures(reference, txt.read_text(encoding="utf-8"))
        rows.append({"chunking": chunking, "peak_rss_mb": round(peak_mb, 1), "wall_s": round(wall, 1), "wer": m["wer"],
                     "deletions": m["deletions"], "longest_deletion_run": m["longest_deletion_run"]})
        print(f"{chunking}: peak RSS {peak_mb:.0f} MB {wall:.0f} s, WER {100 * m['wer']:.1f} %", flush=True)
    result = {"file": str(path), "audio_s": seconds, "samples_mb": seconds * 16000 * 4 / 2**20, "reference_words": len(reference.split()),
              "cpu": cpu_model(), "threads": a.threads, "batch_size": a.batch_size, "rows": rows}
    write_json(out_dir / "long_memory.json", result)
    print(f"wrote {out_dir / 'long_memory.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
