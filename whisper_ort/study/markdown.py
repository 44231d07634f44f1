"""Markdown pieces of RESULTS.md: number formats, tables, the run's environment and commands."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pandas as pd

from whisper_ort.study.names import SCALING_STAGES, STAGE_LABELS, STAGES
from whisper_ort.study.paths import NATIVE
from whisper_ort.study.tables import _ok, latency_overall, per_file


def fmt(value, digits: int = 3, unit: str = "") -> str:
    """A fixed-format number, or an en dash for a missing one."""
    if value is None or (isinstance(value, float) and (math.isnan(value) or math.isinf(value))):
        return "–"
    return f"{value:.{digits}f}{unit}"


def md_table(headers: list[str], rows: list[list], align: str | None = None) -> str:
    """A GitHub markdown table; align is one letter per column (l, r, c)."""
    align = align or "l" + "r" * (len(headers) - 1)
    marks = {"l": ":--", "r": "--:", "c": ":-:"}
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(marks[a] for a in align) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in row) + " |")
    return "\n".join(lines)


def latency_md(df: pd.DataFrame) -> str:
    pf = per_file(df)
    rows = [[f"`{r.file}`", fmt(r.duration_s, 1), r.n_tokens, fmt(r.t_total_p50), fmt(r.t_total_p95), fmt(r.rtf_p50), fmt(r.ms_per_token_p50, 1), fmt(r.t_encoder_p50), fmt(r.t_decoder_loop_p50), r.n] for r in pf.itertuples()]
    o = latency_overall(df)
    if o:
        rows.append([f"**all {o['n_files']} files**", fmt(o["audio_s"], 1), "", fmt(o["t_total_p50"]), fmt(o["t_total_p95"]), fmt(o["rtf_overall"]), fmt(o["ms_per_token_p50"], 1), "", "", o["n_records"]])
    return md_table(["file", "audio s", "tokens", "p50 s", "p95 s", "RTF p50", "ms/token p50", "encoder s", "decoder loop s", "n"], rows)


def scaling_md(scaling: pd.DataFrame) -> str:
    threads = sorted(scaling["threads"].unique())
    stages = [s for s in SCALING_STAGES if s in set(scaling["stage"])]
    rows = []
    for t in threads:
        row = [int(t)]
        for s in stages:
            r = scaling[(scaling["threads"] == t) & (scaling["stage"] == s)].iloc[0]
            row.append(f"{fmt(r['time_s'])} s · {fmt(r['speedup'], 2)}x · {fmt(100 * r['efficiency'], 0)} %")
        rows.append(row)
    return md_table(["threads", *[STAGE_LABELS[s] for s in stages]], rows)


def stages_md(df: pd.DataFrame) -> str:
    pf = per_file(_ok(df)[_ok(df)["implementation"] == NATIVE])
    rows = []
    for r in pf.itertuples():
        rows.append([f"`{r.file}`", *[fmt(1e3 * getattr(r, f"{s}_p50"), 1) for s in STAGES], fmt(1e3 * r.t_other_p50, 1), fmt(1e3 * r.t_total_p50, 1)])
    return md_table(["file (ms, p50)", *[STAGE_LABELS[s] for s in STAGES], "other", "total"], rows)


def floors_md(table: pd.DataFrame, floors: dict) -> str:
    rows = [[r.stage, r.unit, fmt(r.measured_ms, 2), fmt(r.floor_ms, 2), fmt(100 * r.of_floor, 1, " %"), fmt(r.x_floor, 2, "x"), r.bound, r.n] for r in table.itertuples()]
    return md_table(["stage", "unit", "measured p50", "floor", "floor / measured", "measured / floor", "bound by", "n"], rows, "llrrrrll")


def hardware_md(floors: dict) -> str:
    g = floors["gemm_ort"]
    rows = [[name, f"{v['m']}x{v['k']} @ {v['k']}x{v['n']}", fmt(v["gflops"], 1), fmt(floors["gemm_numpy"].get(name, {}).get("gflops"), 1)] for name, v in sorted(g.items())]
    bw = floors["bandwidth"]
    text = md_table(["GEMM (FP32)", "shape", "ORT MatMul GFLOP/s", "numpy GFLOP/s"], rows, "llrr")
    text += "\n\n" + md_table(
        ["read bandwidth", "GB/s"],
        [["numpy sum, 1 thread", fmt(bw["numpy_sum"]["gbs"], 1)], [f"ORT ReduceSum, {floors['threads']} thread(s)", fmt(bw["ort_reduce_sum"]["gbs"], 1)], [f"ORT MatMul 1x{bw['ort_gemv']['k']} @ {bw['ort_gemv']['k']}x{bw['ort_gemv']['n']}", fmt(bw["ort_gemv"]["gbs"], 1)]],
        "lr",
    )
    return text


def peers_md(files_t: pd.DataFrame, impls_t: pd.DataFrame) -> str:
    rows = [[r.implementation, r.threads, r.n_files, r.n_failed, fmt(r.t_total_p50), fmt(r.ratio_geomean, 2, "x"), fmt(r.rtf_p50), fmt(r.t_encoder_p50), fmt(r.t_decoder_p50),
             fmt(r.cold_start_s, 2), fmt(r.peak_rss_mb, 0)] for r in impls_t.itertuples()]
    text = md_table(["implementation", "threads", "files", "failed", "p50 s (median over files)", "time / whisper_ort (geomean over files)", "RTF p50", "encoder p50 s", "decoder p50 s", "cold start s", "peak RSS MB"], rows)
    impls = list(impls_t["implementation"])
    per = []
    for f in sorted(files_t["file"].unique()):
        sub = files_t[files_t["file"] == f].set_index("implementation")
        cells = []
        for i in impls:
            if i in sub.index:
                ratio = "" if i == NATIVE else f" ({fmt(sub.loc[i, 'ratio'], 2, 'x')})"
                cells.append(f"{fmt(sub.loc[i, 't_total_p50'])}{ratio}")
            else:
                cells.append("–")
        per.append([f"`{f}`", fmt(sub["duration_s"].iloc[0], 1), *cells])
    text += "\n\np50 seconds per file (ratio to whisper_ort):\n\n" + md_table(["file", "audio s", *impls], per)
    return text


def fidelity_md(pairs: pd.DataFrame, ground: pd.DataFrame, normalizer: str) -> str:
    parts = []
    if not pairs.empty:
        rows = [[f"{r.b} vs {r.a}", r.n_files, f"{r.identical}/{r.n_files}", r.errors, r.ref_words, fmt(100 * r.wer, 2, " %")] for r in pairs.itertuples()]
        parts.append(md_table(["pair (hypothesis vs reference)", "files", "identical text", "word errors", "reference words", "WER"], rows))
    if not ground.empty:
        rows = [[r.implementation, r.n_files, r.errors, r.ref_words, fmt(100 * r.wer, 2, " %")] for r in ground.itertuples()]
        parts.append("Against MANIFEST.csv's ground truth (files that have one):\n\n" + md_table(["implementation", "files", "word errors", "reference words", "WER"], rows))
    parts.append(f"WER normalizer: {normalizer}.")
    return "\n\n".join(parts)


def _image(saved: dict | None, output: Path, alt: str) -> str:
    if not saved:
        return ""
    rel = os.path.relpath(saved["svg"], output.parent).replace(os.sep, "/")
    return f"\n\n![{alt}]({rel})"


def _environment(*summaries) -> dict:
    """The environment of the first summary that has one (machine, packages, date)."""
    for s in summaries:
        if s and s.get("environment"):
            return s["environment"]
    return {}


def _command(summary: dict | None) -> str | None:
    """The command a summary was written by (bench: environment.command; compare: command, a list)."""
    if not summary:
        return None
    c = (summary.get("environment") or {}).get("command") or summary.get("command")
    if isinstance(c, list):
        import shlex

        c = " ".join(shlex.quote(str(x)) for x in c)
    return str(c) if c else None
