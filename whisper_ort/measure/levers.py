"""Each performance lever on and off, each setting in a fresh process, rounds interleaved.

`python -m whisper_ort.measure.levers --files 'jfk.flac' --rounds 2` runs `whisper-ort bench` once
per setting and round (A B C ..., A B C ...), reads its records, and takes the peak RSS of
that very process from `os.wait4`. Output: results/benchmarks/levers/levers.json and
levers.md (medians over rounds, ratios against the baseline of the same run).
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

from whisper_ort.measure.records import write_atomic, write_json
from whisper_ort.study.paths import LEVERS_DIR

# (name, what changes, extra bench flags). The first is the baseline.
LEVERS = [
    ("baseline", "export as-is: 3 sessions, a thread pool each (the library's default), prepacking, arena", ["--variant", "export", "--per-session-threads"]),
    ("shared_pool", "one thread pool for all sessions (ONNX Runtime's global pool)", ["--variant", "export", "--shared-pool"]),
    ("no_spin", "threads sleeping between ops", ["--variant", "export", "--per-session-threads", "--no-spinning"]),
    ("mha", "fused encoder (LayerNorms as plain ops) + cross K/V projection, our decoder graph (MultiHeadAttention, no If, embeddings outside, bounded logits + exact argmax, 4-bit draft); the CLI's one thread pool", ["--variant", "mha"]),
    ("mha_per_session_pools", "mha with a thread pool per session (the library's default), the decoder's and the draft's parked after each run", ["--variant", "mha", "--per-session-threads"]),
    ("mha_full_logits", "mha with every FP32 logit each step (its exact argmax from int8 bounded logits off)", ["--variant", "mha", "--full-logits"]),
    ("mha_no_speculation", "mha decoding one token per forward (speculative greedy decoding with the 4-bit draft off)", ["--variant", "mha", "--draft-tokens", "0"]),
    ("mha_no_arena", "mha without the CPU memory arena", ["--variant", "mha", "--no-arena"]),
    ("mha_shared_arena", "mha with one pool and one arena for all sessions, growing by what is asked", ["--variant", "mha", "--shared-pool", "--shared-arena"]),
    ("mha_keep_spinning", "mha_per_session_pools with the decoder's threads spinning after each run (parked at a run's end otherwise)", ["--variant", "mha", "--per-session-threads", "--keep-spinning"]),
    ("mha_mem_pattern", "mha with ONNX Runtime's memory pattern (one preplanned activation block per input shapes; off by default)", ["--variant", "mha", "--mem-pattern"]),
    ("mha_noprepack", "mha, GEMM weights not prepacked", ["--variant", "mha", "--no-prepacking"]),
    ("graph_basic", "baseline with graph optimization level basic", ["--variant", "export", "--per-session-threads", "--graph-opt", "basic"]),
    ("threads_1", "baseline with 1 intra-op thread", ["--variant", "export", "--per-session-threads", "--threads", "1"]),
]


def run_setting(flags: list[str], audio_dir: str, files: str, onnx_dir: str, out: Path, threads: int, repeats: int, warmup: int) -> dict:
    cmd = [sys.executable, "-m", "whisper_ort.cli", "bench", "--audio-dir", audio_dir, "--files", files, "--onnx-dir", onnx_dir,
           "--output-dir", str(out), "--threads", str(threads), "--repeats", str(repeats), "--warmup", str(warmup), "--no-progress", *flags]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS, not all children's
    wall = time.perf_counter() - start
    stderr = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {code}: {stderr.strip().splitlines()[-1:]}")
    records = [r for r in json.loads((out / "inference_per_file.json").read_text()) if r["status"] == "ok"]
    summary = json.loads((out / "inference_summary.json").read_text())
    return {
        "process_wall_s": wall,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "load_time_s": summary["environment"]["transcriber"]["load_time_s"],
        "t_total_s": float(np.median([r["t_total"] for r in records])),
        "t_encoder_s": float(np.median([r["t_encoder"] for r in records])),
        "t_decoder_first_s": float(np.median([r["t_decoder_first"] for r in records])),
        "ms_per_token": float(np.median([r["ms_per_token"] for r in records if r["ms_per_token"]])),
        "texts": {r["file"]: r["text"] for r in records},
    }


def run_levers(audio_dir="audio", files="jfk.flac", onnx_dir="whisper-base-with-past", output_dir=LEVERS_DIR,
               threads=2, rounds=2, repeats=3, warmup=1, levers=None, log=print) -> dict:
    chosen = [lv for lv in LEVERS if levers is None or lv[0] in levers]
    out_dir = Path(output_dir)
    runs: dict[str, list[dict]] = {name: [] for name, _, _ in chosen}
    for rnd in range(rounds):
        for name, _, flags in chosen:
            log(f"round {rnd + 1}/{rounds}: {name}")
            runs[name].append(run_setting(flags, audio_dir, files, onnx_dir, out_dir / name, threads if "--threads" not in flags else int(flags[flags.index("--threads") + 1]), repeats, warmup))
    base = chosen[0][0]
    rows = []
    for name, what, flags in chosen:
        med = {k: float(np.median([r[k] for r in runs[name]])) for k in ("t_total_s", "t_encoder_s", "t_decoder_first_s", "ms_per_token", "load_time_s", "process_wall_s", "peak_rss_mb")}
        same_text = all(r["texts"] == runs[base][0]["texts"] for r in runs[name])
        rows.append({"lever": name, "what": what, "flags": " ".join(flags), **med, "same_text_as_baseline": same_text})
    for row in rows:
        b = next(r for r in rows if r["lever"] == base)
        row["t_total_ratio"] = row["t_total_s"] / b["t_total_s"]
        row["rss_ratio"] = row["peak_rss_mb"] / b["peak_rss_mb"]
    result = {"files": files, "threads": threads, "rounds": rounds, "repeats": repeats, "rows": rows, "runs": runs}
    write_json(out_dir / "levers.json", result)
    write_atomic(out_dir / "levers.md", levers_table(result))
    return result


def levers_table(result: dict) -> str:
    lines = [
        f"Files `{result['files']}`, {result['threads']} threads, medians of {result['rounds']} fresh processes × {result['repeats']} repeats.",
        "",
        "| lever | what | warm total (s) | ratio | encoder (s) | first step (s) | ms/token | load (s) | process (s) | peak RSS (MB) | same text |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for r in result["rows"]:
        lines.append(f"| {r['lever']} | {r['what']} | {r['t_total_s']:.3f} | {r['t_total_ratio']:.2f} | {r['t_encoder_s']:.3f} | {r['t_decoder_first_s']:.3f} | "
                     f"{r['ms_per_token']:.1f} | {r['load_time_s']:.2f} | {r['process_wall_s']:.2f} | {r['peak_rss_mb']:.0f} | {'yes' if r['same_text_as_baseline'] else 'NO'} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--audio-dir", default="audio")
    p.add_argument("--files", default="jfk.flac")
    p.add_argument("--onnx-dir", default="whisper-base-with-past")
    p.add_argument("--output-dir", default=LEVERS_DIR)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--levers", default=None, help="comma list of lever names (default: all)")
    a = p.parse_args(argv)
    result = run_levers(a.audio_dir, a.files, a.onnx_dir, a.output_dir, a.threads, a.rounds, a.repeats, a.warmup,
                        a.levers.split(",") if a.levers else None, log=lambda m: print(m, file=sys.stderr))
    print(levers_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
