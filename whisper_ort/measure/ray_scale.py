"""The Ray engine against the local bench on this machine, and the figures a scale model needs.

    python -m whisper_ort.measure.ray_scale --files '[jl]*' --repeats 3 --rounds 3

Every round runs `whisper-ort bench` once per setting, each in a fresh process (local; ray
with 1 actor x T threads; ray with T actors x 1 thread), rounds interleaved. Throughput:

- local: audio seconds / the sum of the records' t_total (the transcriber's time alone,
  its per-file writes left out: the local run's best case);
- ray: audio seconds / wall seconds from the first file's start on an actor to the last
  file's end (the actors' clocks; cluster start, actor start and model load left out;
  decode, Ray and the driver in, as they share the cores).

Also: end to end (audio / the dataset's wall time, actor start and model load in), an
actor's idle gap between two files (Ray's cost per file that throughput sees), decode
seconds per audio second, driver CPU per file. Writes scale.json and scale.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from whisper_ort.measure.environment import cpu_model
from whisper_ort.measure.records import write_atomic, write_json
from whisper_ort.study.paths import BENCH_DIR

OUT_DIR = Path(BENCH_DIR) / "ray"


def settings(threads: int) -> list[tuple[str, list[str]]]:
    out = [("local", ["--threads", str(threads)]), (f"ray 1x{threads}", ["--engine", "ray", "--actors", "1", "--threads", str(threads)])]
    if threads > 1:
        out.append((f"ray {threads}x1", ["--engine", "ray", "--actors", str(threads), "--threads", "1"]))
    return out


def run_one(flags: list[str], args, out: Path) -> dict:
    cmd = [sys.executable, "-m", "whisper_ort.cli", "bench", "--audio-dir", args.audio_dir, "--files", args.files, "--onnx-dir", args.onnx_dir,
           "--output-dir", str(out), "--repeats", str(args.repeats), "--warmup", "1", "--no-progress", *flags]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout_s)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.strip().splitlines()[-3:]}")
    records = [r for r in json.loads((out / "inference_per_file.json").read_text()) if r["status"] == "ok"]
    summary = json.loads((out / "inference_summary.json").read_text())
    audio = sum(r["duration_s"] for r in records)
    row = {"process_wall_s": time.perf_counter() - start, "records": len(records), "audio_s": audio,
           "decode_s_per_audio_s": sum(r["t_load_audio"] for r in records) / audio,
           "texts": {f"{r['file']}#{r['repeat']}": r["text"] for r in records}}
    engine = summary.get("engine")
    if engine is None:
        row["audio_s_per_s"] = audio / sum(r["t_total"] for r in records)
        return row
    row.update(audio_s_per_s=engine["steady_audio_s_per_s"], actors=engine["actors"], threads=engine["threads_per_actor"],
               first_record_s=engine["first_record_s"], driver_cpu_per_file_s=engine["driver_cpu_s"] / max(1, engine["records"]),
               gap_per_file_s=engine["actor_gap_s_per_file"], end_to_end_audio_s_per_s=audio / engine["wall_s"])
    return row


def _empty_decode(row: dict) -> dict:
    return {**row, "samples": b"", "t_load_audio": 0.0, "error": ""}


class _EmptyActor:
    """Answers at once: what is left of a file's time is Ray's (two tasks, two blocks, the driver)."""

    def __call__(self, batch: dict) -> dict:
        n = len(batch["file"])
        return {"record": np.array(["{}"] * n, dtype=object), "span": np.zeros((n, 3)), "where": np.array(["-"] * n, dtype=object)}


def ray_alone(n_files: int, actors: int, threads: int) -> dict:
    """The engine's dataset with stand-ins that do nothing, on a local cluster: files per
    second and driver CPU per file, the ceiling Ray and one driver put on a run."""
    import ray

    from whisper_ort.measure.ray_engine import _cpu_s, connect, dataset

    connect(num_cpus=actors * threads)
    try:
        items = [{"path": f"/none/{i}.wav", "file": f"{i}.wav", "repeat": 0} for i in range(n_files)]
        ds = dataset(items, _empty_decode, _EmptyActor, {}, actors, threads, 0.0, 0)
        cpu0, t0 = _cpu_s(), time.perf_counter()
        t_first, t_last, n = None, None, 0
        for _ in ds.iter_rows():
            n += 1
            t_last = time.perf_counter()
            t_first = t_first or t_last
        wall, cpu = time.perf_counter() - t0, _cpu_s() - cpu0
    finally:
        ray.shutdown()
    return {"files": n, "wall_s": wall, "files_per_s": (n - 1) / (t_last - t_first) if n > 1 and t_last > t_first else None,
            "files_per_s_end_to_end": n / wall, "driver_cpu_per_file_s": cpu / n}


def table(rows: dict[str, list[dict]], cores: int) -> str:
    def med(name, key):
        vals = [r[key] for r in rows[name] if r.get(key) is not None]
        return float(np.median(vals)) if vals else float("nan")

    base = med("local", "audio_s_per_s")
    lines = ["| setting | audio s / s (median) | per core | vs local | end to end | actor gap per file | driver CPU per file | decode s per audio s | first record after |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name in rows:
        tput = med(name, "audio_s_per_s")
        ray = name != "local"
        lines.append(f"| {name} | {tput:.2f} | {tput / cores:.2f} | {tput / base:.3f} | "
                     + (f"{med(name, 'end_to_end_audio_s_per_s'):.2f} | " if ray else "- | ")
                     + (f"{1000 * med(name, 'gap_per_file_s'):.0f} ms | {1000 * med(name, 'driver_cpu_per_file_s'):.0f} ms | " if ray else "- | - | ")
                     + f"{med(name, 'decode_s_per_audio_s'):.4f} | " + (f"{med(name, 'first_record_s'):.1f} s |" if ray else "- |"))
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m whisper_ort.measure.ray_scale", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--audio-dir", default="audio")
    p.add_argument("--files", default="[jl]*")
    p.add_argument("--onnx-dir", default="whisper-base-with-past")
    p.add_argument("--threads", type=int, default=2, help="cores used by every setting")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--timeout-s", type=float, default=600)
    p.add_argument("--output-dir", default=str(OUT_DIR))
    p.add_argument("--ray-alone", type=int, default=0, metavar="N", help="only the dataset with stand-ins, N files: Ray's own cost per file")
    args = p.parse_args(argv)
    out = Path(args.output_dir)
    if args.ray_alone:
        result = ray_alone(args.ray_alone, 1, args.threads)
        write_json(out / "ray_alone.json", {"cpu_model": cpu_model(), **result})
        print(json.dumps(result, indent=1))
        return 0
    rows: dict[str, list[dict]] = {name: [] for name, _ in settings(args.threads)}
    for k in range(args.rounds):
        for name, flags in settings(args.threads):
            row = run_one(flags, args, out / "runs" / name.replace(" ", "_"))
            rows[name].append(row)
            print(f"round {k + 1}: {name}: {row['audio_s_per_s']:.2f} audio s/s", file=sys.stderr)
    texts = {name: [r.pop("texts") for r in rs] for name, rs in rows.items()}
    same = all(t == texts["local"][0] for ts in texts.values() for t in ts)
    md = (f"Ray engine vs local bench: {cpu_model()}, {args.threads} cores, files {args.files!r}, {args.repeats} repeats, "
          f"{args.rounds} rounds (medians); identical texts in every run: {same}\n\n" + table(rows, args.threads))
    write_json(out / "scale.json", {"cpu_model": cpu_model(), "args": vars(args), "identical_texts": same, "rows": rows})
    write_atomic(out / "scale.md", md)
    print(md)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
