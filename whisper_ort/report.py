"""The study's read side: load the records on disk, build tables, draw plots, write RESULTS.md.

Nothing here measures. The notebooks call these helpers on the records the runs wrote
(`whisper_ort.study` runs them, `whisper_ort.hardware` measures the machine), and
`whisper-ort report` regenerates RESULTS.md and the plots from the same records:

    results/benchmarks/latency/<implementation>/inference_per_file.json   latency sweep
    results/benchmarks/threads/<N>/inference_per_file.json                 thread scaling
    results/benchmarks/hardware.json                                        GEMM peak, bandwidth, floors
    results/benchmarks/compare/records.json                                 whisper_ort vs its peers
    results/benchmarks/study.json                                           what the study ran, how long
    results/reference/inference_per_file.json                              hf_generate transcripts
    audio/MANIFEST.csv                                                      ground-truth transcripts

RESULTS.md is a pure function of those files: everything sorted, floats formatted with a
fixed number of digits, the date the latest one found in the records' environment, never
the clock. The same records give a byte-identical file (and byte-identical SVGs).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .records import RECORD_FIELDS, write_atomic

STAGES = ("t_load_audio", "t_features", "t_encoder", "t_decoder_first", "t_decoder_loop", "t_detokenize")
STAGE_LABELS = {
    "t_load_audio": "load audio",
    "t_features": "log-mel",
    "t_encoder": "encoder",
    "t_decoder_first": "decoder first step",
    "t_decoder_loop": "decoder loop",
    "t_detokenize": "detokenize",
    "t_other": "other (not attributed)",
    "t_total": "total",
}
STAGE_COLORS = {
    "t_load_audio": "#8c8c8c",
    "t_features": "#e6a23c",
    "t_encoder": "#2f6db5",
    "t_decoder_first": "#7fb3e6",
    "t_decoder_loop": "#d1495b",
    "t_detokenize": "#66a182",
    "t_other": "#d9d9d9",
    "t_total": "#222222",
}
IMPL_ORDER = ("whisper_ort", "faster_whisper", "optimum_ort", "hf_generate", "hf_pipeline")
IMPL_COLORS = {
    "whisper_ort": "#d1495b",
    "faster_whisper": "#2f6db5",
    "optimum_ort": "#e6a23c",
    "hf_generate": "#66a182",
    "hf_pipeline": "#8c6bb1",
}
REFERENCE_IMPL = "hf_generate"
NATIVE = "whisper_ort"
PLOT_FORMATS = ("png", "svg")


# ---------------------------------------------------------------- where things are


def repo_root() -> Path:
    """The repository: the nearest folder upward of the working directory holding
    pyproject.toml and whisper_ort/ (notebooks run with their own folder as working
    directory), else the folder above this package."""
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "whisper_ort").is_dir():
            return folder
    return Path(__file__).resolve().parents[1]


def resolve(path: str | Path | None) -> Path | None:
    """A path as given when absolute, else relative to the repository root."""
    if path is None:
        return None
    path = Path(path).expanduser()
    return path if path.is_absolute() else repo_root() / path


@dataclass(frozen=True)
class StudyPaths:
    """Where the study's records and plots live (absolute paths)."""

    bench_dir: Path
    plots_dir: Path
    reference: Path

    @classmethod
    def of(cls, bench_dir="results/benchmarks", plots_dir="results/plots", reference="results/reference/inference_per_file.json") -> StudyPaths:
        return cls(resolve(bench_dir), resolve(plots_dir), resolve(reference))

    @classmethod
    def from_results(cls, results_dir="results") -> StudyPaths:
        root = resolve(results_dir)
        return cls(root / "benchmarks", root / "plots", root / "reference" / "inference_per_file.json")

    def latency_dir(self, implementation: str = NATIVE) -> Path:
        return self.bench_dir / "latency" / implementation

    @property
    def threads_dir(self) -> Path:
        return self.bench_dir / "threads"

    @property
    def hardware(self) -> Path:
        return self.bench_dir / "hardware.json"

    @property
    def compare_dir(self) -> Path:
        return self.bench_dir / "compare"

    @property
    def study_json(self) -> Path:
        return self.bench_dir / "study.json"


class Missing(str):
    """A note saying which records are missing and the command that makes them."""


def missing(what: str, command: str) -> Missing:
    return Missing(f"No {what} yet: run `{command}` first.")


# ---------------------------------------------------------------- loading


def _read_json(path: Path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def records_frame(rows) -> pd.DataFrame:
    """Records (dicts or Record objects) as a DataFrame with every record column."""
    rows = [r if isinstance(r, dict) else r.to_dict() for r in (rows or [])]
    df = pd.DataFrame(rows)
    for name in RECORD_FIELDS:
        if name not in df.columns:
            df[name] = None
    numeric = ["duration_s", "threads", "repeat", "n_tokens", "n_windows", "rtf", "ms_per_token", "t_total", *STAGES]
    for name in numeric:
        df[name] = pd.to_numeric(df[name], errors="coerce")
    df["implementation"] = df["implementation"].fillna(NATIVE).astype(str)
    df["file"] = df["file"].astype(str)
    df["status"] = df["status"].fillna("ok").astype(str)
    df["text"] = df["text"].fillna("").astype(str)
    return df


def load_records(path: str | Path) -> pd.DataFrame | None:
    """A records file (inference_per_file.json or compare's records.json) as a DataFrame,
    or None when it is not there or not readable."""
    data = _read_json(Path(path))
    if not isinstance(data, list):
        if isinstance(data, dict) and isinstance(data.get("records"), list):
            data = data["records"]
        else:
            return None
    return records_frame(data)


def load_summary(path: str | Path) -> dict | None:
    data = _read_json(Path(path))
    return data if isinstance(data, dict) else None


def load_latency(paths: StudyPaths, implementation: str = NATIVE) -> tuple[pd.DataFrame | None, dict | None]:
    folder = paths.latency_dir(implementation)
    return load_records(folder / "inference_per_file.json"), load_summary(folder / "inference_summary.json")


def load_thread_runs(paths: StudyPaths) -> tuple[pd.DataFrame | None, dict]:
    """All thread-scaling records (one folder per thread count) and {threads: summary}."""
    frames, summaries = [], {}
    root = paths.threads_dir
    if not root.is_dir():
        return None, {}
    for folder in sorted((p for p in root.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name)):
        df = load_records(folder / "inference_per_file.json")
        if df is None or df.empty:
            continue
        df["threads"] = int(folder.name)
        frames.append(df)
        summaries[int(folder.name)] = load_summary(folder / "inference_summary.json") or {}
    if not frames:
        return None, {}
    return pd.concat(frames, ignore_index=True), summaries


def load_compare(paths: StudyPaths) -> tuple[pd.DataFrame | None, dict | None]:
    folder = paths.compare_dir
    return load_records(folder / "records.json"), load_summary(folder / "summary.json")


def load_floors(paths: StudyPaths) -> dict:
    from .hardware import load_floors as _load

    try:
        return _load(paths.hardware)
    except (OSError, ValueError):
        return {}


def load_reference(paths: StudyPaths) -> pd.DataFrame | None:
    df = load_records(paths.reference)
    if df is not None and not df.empty:
        df.loc[df["implementation"] == NATIVE, "implementation"] = REFERENCE_IMPL  # a file without the field
    return df


def manifest(audio_dir: str | Path = "audio") -> pd.DataFrame | None:
    path = resolve(audio_dir) / "MANIFEST.csv"
    if not path.is_file():
        return None
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    df = pd.DataFrame(rows)
    if "duration_s" in df:
        df["duration_s"] = pd.to_numeric(df["duration_s"], errors="coerce")
    return df.sort_values("file").reset_index(drop=True)


# ---------------------------------------------------------------- tables (DataFrames)


def ok_records(df: pd.DataFrame | None) -> pd.DataFrame:
    """The records with status ok (an empty frame for None)."""
    if df is None or df.empty:
        return pd.DataFrame(columns=RECORD_FIELDS)
    return df[df["status"] == "ok"]


_ok = ok_records


def _p(values, q) -> float:
    arr = np.asarray([v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))], dtype=float)
    return float(np.percentile(arr, q)) if arr.size else float("nan")


def impl_sort_key(name: str):
    return (IMPL_ORDER.index(name) if name in IMPL_ORDER else len(IMPL_ORDER), name)


def per_file(df: pd.DataFrame | None) -> pd.DataFrame:
    """One row per (implementation, threads, file) over its ok repeats: p50 / p95 / min of
    the total, RTF, ms per token, tokens, and the p50 of every stage (seconds)."""
    ok = _ok(df)
    cols = ["implementation", "threads", "file", "duration_s", "n", "t_total_p50", "t_total_p95", "t_total_min", "rtf_p50", "ms_per_token_p50", "n_tokens", "n_windows", *[f"{s}_p50" for s in STAGES], "t_other_p50"]
    if ok.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    keys = ok[["implementation", "threads", "file"]].fillna({"threads": -1})
    for (impl, threads, name), g in ok.groupby([keys["implementation"], keys["threads"], keys["file"]], sort=False):
        row = {
            "implementation": impl,
            "threads": int(threads) if threads >= 0 else None,
            "file": name,
            "duration_s": float(g["duration_s"].dropna().iloc[0]) if g["duration_s"].notna().any() else float("nan"),
            "n": len(g),
            "t_total_p50": _p(g["t_total"], 50),
            "t_total_p95": _p(g["t_total"], 95),
            "t_total_min": _p(g["t_total"], 0),
            "rtf_p50": _p(g["rtf"], 50),
            "ms_per_token_p50": _p(g["ms_per_token"], 50),
            "n_tokens": int(np.median(g["n_tokens"].fillna(0))),
            "n_windows": int(np.median(g["n_windows"].fillna(1))),
        }
        stage_sum = 0.0
        for s in STAGES:
            row[f"{s}_p50"] = _p(g[s], 50)
            stage_sum += 0.0 if math.isnan(row[f"{s}_p50"]) else row[f"{s}_p50"]
        row["t_other_p50"] = max(0.0, row["t_total_p50"] - stage_sum) if stage_sum > 0 else float("nan")
        rows.append(row)
    out = pd.DataFrame(rows, columns=cols)
    out["_k"] = out["implementation"].map(impl_sort_key)
    return out.sort_values(["_k", "threads", "file"]).drop(columns="_k").reset_index(drop=True)


def latency_overall(df: pd.DataFrame | None) -> dict:
    """p50 / p95 over every ok record, and the sums over files of the per-file medians."""
    ok = _ok(df)
    if ok.empty:
        return {}
    pf = per_file(ok)
    audio = float(pf["duration_s"].sum())
    total = float(pf["t_total_p50"].sum())
    return {
        "n_files": int(pf["file"].nunique()),
        "n_records": len(ok),
        "t_total_p50": _p(ok["t_total"], 50),
        "t_total_p95": _p(ok["t_total"], 95),
        "rtf_p50": _p(ok["rtf"], 50),
        "rtf_p95": _p(ok["rtf"], 95),
        "audio_s": audio,
        "sum_t_total_p50": total,
        "rtf_overall": total / audio if audio else float("nan"),
        "ms_per_token_p50": _p(ok["ms_per_token"], 50),
    }


SCALING_STAGES = ("t_features", "t_encoder", "t_decoder_first", "t_decoder_loop", "t_total")


def thread_scaling(df: pd.DataFrame | None) -> pd.DataFrame:
    """Per thread count and stage: the sum over files of each file's median time (s), the
    speedup against the fewest threads and the parallel efficiency (speedup per added
    thread: speedup * base / threads). Only files present at every thread count count."""
    ok = _ok(df)
    cols = ["threads", "stage", "time_s", "speedup", "efficiency", "n_files"]
    if ok.empty:
        return pd.DataFrame(columns=cols)
    common = set.intersection(*(set(g["file"]) for _, g in ok.groupby("threads")))
    ok = ok[ok["file"].isin(common)]
    pf = per_file(ok)
    base_threads = int(pf["threads"].min())
    rows = []
    for stage in SCALING_STAGES:
        col = "t_total_p50" if stage == "t_total" else f"{stage}_p50"
        sums = pf.groupby("threads")[col].sum(min_count=1)
        if sums.isna().all():
            continue
        base = float(sums.loc[base_threads])
        for threads, value in sums.items():
            speedup = base / value if value else float("nan")
            rows.append({"threads": int(threads), "stage": stage, "time_s": float(value), "speedup": speedup, "efficiency": speedup * base_threads / int(threads), "n_files": len(common)})
    out = pd.DataFrame(rows, columns=cols)
    out["_k"] = out["stage"].map(SCALING_STAGES.index)
    return out.sort_values(["_k", "threads"]).drop(columns="_k").reset_index(drop=True)


def stage_floors(df: pd.DataFrame | None, floors: dict | None) -> pd.DataFrame:
    """Each bounded stage against its floor on this machine (DESIGN.md, "Measuring honestly").

    encoder (per 30 s window) and decoder first step (per window) against FLOPs / GEMM
    peak; a decoder loop step (t_decoder_loop / tokens, over records with >= 4 tokens)
    against bytes read per step / read bandwidth. `of_floor` = floor / measured (1.0 = at
    the hardware bound), `x_floor` = measured / floor. The mha variant projects the
    cross-attention K/V in its encoder graph, not in the first step, so the sum of the two
    is the figure that compares across variants. `file, end to end`: t_total against the
    median file's floor (its windows and tokens at the FP32 floors above).
    """
    cols = ["stage", "unit", "measured_ms", "floor_ms", "of_floor", "x_floor", "bound", "n"]
    ok = _ok(df)
    if ok.empty or not floors:
        return pd.DataFrame(columns=cols)
    windows = ok["n_windows"].fillna(1).clip(lower=1)
    enc = (ok["t_encoder"] / windows).dropna()
    first = (ok["t_decoder_first"] / windows).dropna()
    many = ok[ok["n_tokens"].fillna(0) >= 4]
    step = (many["t_decoder_loop"] / many["n_tokens"]).dropna()
    peak, bw = floors["gemm_peak_gflops"], floors["bandwidth_gbs"]
    enc_gflop = floors["encoder_flops"]["total"] / 1e9
    first_gflop = floors["decoder_first_flops"]["total"] / 1e9
    step_mb = floors["decoder_step_bytes"]["total"] / 1e6
    rows = [
        ("encoder", "ms / 30 s window", enc, floors["encoder_floor_s"], f"compute: {enc_gflop:.1f} GFLOP at {peak:.1f} GFLOP/s"),
        ("decoder first step", "ms / window", first, floors["decoder_first_floor_s"], f"compute: {first_gflop:.1f} GFLOP at {peak:.1f} GFLOP/s"),
        ("encoder + first step", "ms / window", ((ok["t_encoder"] + ok["t_decoder_first"]) / windows).dropna(),
         floors["encoder_floor_s"] + floors["decoder_first_floor_s"], f"compute: {enc_gflop + first_gflop:.1f} GFLOP at {peak:.1f} GFLOP/s"),
        ("decoder loop step", "ms / token", step, floors["decoder_step_floor_s"], f"memory: {step_mb:.0f} MB read at {bw:.1f} GB/s"),
    ]
    if (ok["variant"] == "mha").all():  # bounded logits: the int8 head replaces the FP32 projection's reads
        from .decoder_graph import EXACT_DIMS
        from .hardware import bounded_head_bytes

        bounded = floors["decoder_step_bytes"]["total"] - floors["decoder_step_bytes"]["output_projection"] + bounded_head_bytes(exact_dims=EXACT_DIMS)
        rows.append(("decoder loop step, bounded logits", "ms / token", step, bounded / (bw * 1e9), f"memory: {bounded / 1e6:.0f} MB read at {bw:.1f} GB/s"))
    # A whole file: its windows' encoder + first step and every token's FP32 step at their
    # floors (audio decode and log-mel counted as free): the end-to-end bound.
    file_floor = windows * (floors["encoder_floor_s"] + floors["decoder_first_floor_s"]) + ok["n_tokens"].fillna(0) * floors["decoder_step_floor_s"]
    rows.append(("file, end to end", "ms / file", ok["t_total"].dropna(), float(file_floor.median()), "the stages above at their FP32 floors, audio + log-mel free"))
    out = []
    for stage, unit, values, floor_s, bound in rows:
        measured = _p(values, 50) * 1e3
        floor_ms = floor_s * 1e3
        out.append({"stage": stage, "unit": unit, "measured_ms": measured, "floor_ms": floor_ms, "of_floor": floor_ms / measured if measured else float("nan"), "x_floor": measured / floor_ms if floor_ms else float("nan"), "bound": bound, "n": int(values.size)})
    return pd.DataFrame(out, columns=cols)


def peers_table(df: pd.DataFrame | None, summary: dict | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per file, per implementation) for compare records: p50 total per file and its ratio
    to whisper_ort's (> 1: the peer is slower); per implementation the median of the files'
    p50, the median RTF, the encoder and decoder medians, the geometric mean of the ratios,
    and (from compare's summary, when given) cold start and peak RSS."""
    pf = per_file(df)
    file_cols = ["file", "duration_s", "implementation", "t_total_p50", "ratio"]
    impl_cols = ["implementation", "n_files", "n_failed", "t_total_p50", "rtf_p50", "t_encoder_p50", "t_decoder_p50", "ratio_geomean", "cold_start_s", "peak_rss_mb", "threads"]
    if pf.empty:
        return pd.DataFrame(columns=file_cols), pd.DataFrame(columns=impl_cols)
    native = pf[pf["implementation"] == NATIVE].set_index("file")["t_total_p50"]
    pf = pf.copy()
    pf["ratio"] = [row.t_total_p50 / native[row.file] if row.file in native.index and native[row.file] else float("nan") for row in pf.itertuples()]
    files = pf[file_cols].copy()
    files["_k"] = files["implementation"].map(impl_sort_key)
    files = files.sort_values(["file", "_k"]).drop(columns="_k").reset_index(drop=True)

    ok_all = _ok(df)
    failed = df[df["status"] != "ok"].groupby("implementation")["file"].nunique()
    extra = (summary or {}).get("implementations") or {}
    impl_rows = []
    for impl, g in pf.groupby("implementation"):
        ok = ok_all[ok_all["implementation"] == impl]
        ratios = g["ratio"].dropna()
        ratios = ratios[ratios > 0]
        decoder = ok[["t_decoder_first", "t_decoder_loop"]].sum(axis=1, min_count=1)
        e = extra.get(impl) or {}
        impl_rows.append({
            "implementation": impl,
            "n_files": int(g["file"].nunique()),
            "n_failed": int(failed.get(impl, 0)),
            "t_total_p50": float(np.median(g["t_total_p50"])),
            "rtf_p50": _p(ok["rtf"], 50),
            "t_encoder_p50": _p(ok["t_encoder"], 50),
            "t_decoder_p50": _p(decoder, 50),
            "ratio_geomean": float(np.exp(np.log(ratios).mean())) if len(ratios) else float("nan"),
            "cold_start_s": e.get("cold_start_s"),
            "peak_rss_mb": e.get("peak_rss_mb"),
            "threads": ",".join(str(int(t)) for t in sorted(ok["threads"].dropna().unique())),
        })
    impls = pd.DataFrame(impl_rows, columns=impl_cols)
    impls["_k"] = impls["implementation"].map(impl_sort_key)
    return files, impls.sort_values("_k").drop(columns="_k").reset_index(drop=True)


def texts(df: pd.DataFrame | None) -> dict[str, dict[str, str]]:
    """{implementation: {file: text}} from the ok record of the lowest repeat."""
    ok = _ok(df)
    out: dict[str, dict[str, str]] = {}
    if ok.empty:
        return out
    for row in ok.sort_values(["implementation", "file", "repeat"]).itertuples():
        out.setdefault(row.implementation, {}).setdefault(row.file, (row.text or "").strip())
    return out


def gather_texts(paths: StudyPaths) -> dict[str, dict[str, str]]:
    """Transcripts per implementation from every record set on disk: compare's records, the
    reference file (which wins for hf_generate) and the latency sweep (which wins for whisper_ort)."""
    out: dict[str, dict[str, str]] = {}
    reference = load_reference(paths)
    compare, _ = load_compare(paths)
    latency, _ = load_latency(paths, NATIVE)
    for source in (compare, reference, latency):  # later sources win: the reference file for hf_generate, the sweep for whisper_ort
        for impl, files in texts(source).items():
            out.setdefault(impl, {}).update(files)
    return out


def fidelity(all_texts: dict[str, dict[str, str]], references: dict[str, str] | None = None, spelling_dirs=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(pairs, ground truth).

    pairs: each implementation against the reference (hf_generate) and whisper_ort against
    faster_whisper: files compared, identical texts (exactly), normalized WER.
    ground truth: every implementation against MANIFEST.csv's reference_text (normalized).
    """
    from . import wer as wer_mod

    pair_cols = ["a", "b", "n_files", "identical", "errors", "ref_words", "wer"]
    gt_cols = ["implementation", "n_files", "errors", "ref_words", "wer"]
    pairs = []
    impls = sorted(all_texts, key=impl_sort_key)
    wanted = [(REFERENCE_IMPL, i) for i in impls if i != REFERENCE_IMPL and REFERENCE_IMPL in all_texts]
    if NATIVE in all_texts and "faster_whisper" in all_texts:
        wanted.append(("faster_whisper", NATIVE))
    for a, b in wanted:
        shared = sorted(set(all_texts[a]) & set(all_texts[b]))
        errors = words = identical = 0
        for f in shared:
            m = wer_mod.measures(all_texts[a][f], all_texts[b][f], spelling_dirs=spelling_dirs)
            errors += m["substitutions"] + m["deletions"] + m["insertions"]
            words += m["ref_words"]
            identical += all_texts[a][f] == all_texts[b][f]
        pairs.append({"a": a, "b": b, "n_files": len(shared), "identical": identical, "errors": errors, "ref_words": words, "wer": errors / words if words else float("nan")})
    gt = []
    for impl in impls:
        shared = sorted(set(all_texts[impl]) & set(references or {}))
        errors = words = 0
        for f in shared:
            m = wer_mod.measures(references[f], all_texts[impl][f], spelling_dirs=spelling_dirs)
            errors += m["substitutions"] + m["deletions"] + m["insertions"]
            words += m["ref_words"]
        if shared:
            gt.append({"implementation": impl, "n_files": len(shared), "errors": errors, "ref_words": words, "wer": errors / words if words else float("nan")})
    return pd.DataFrame(pairs, columns=pair_cols), pd.DataFrame(gt, columns=gt_cols)


def file_diffs(all_texts: dict[str, dict[str, str]], a: str, b: str, spelling_dirs=None) -> pd.DataFrame:
    """Per file of two implementations: identical?, normalized WER of b against a, word diff."""
    from . import wer as wer_mod
    from .diff import unified_diff

    cols = ["file", "identical", "wer", "errors", "words", "diff"]
    if a not in all_texts or b not in all_texts:
        return pd.DataFrame(columns=cols)
    rows = []
    for f in sorted(set(all_texts[a]) & set(all_texts[b])):
        ta, tb = all_texts[a][f], all_texts[b][f]
        m = wer_mod.measures(ta, tb, spelling_dirs=spelling_dirs)
        rows.append({"file": f, "identical": ta == tb, "wer": m["wer"], "errors": m["substitutions"] + m["deletions"] + m["insertions"], "words": m["ref_words"], "diff": "" if ta == tb else unified_diff(f, ta, tb, a, b)})
    return pd.DataFrame(rows, columns=cols)


def run_note(df: pd.DataFrame | None = None, summary: dict | None = None, extra: str = "") -> str:
    """One line for a plot's subtitle: CPU, threads, repeats / warmup, date of the run."""
    env = (summary or {}).get("environment") or {}
    parts = ["whisper-base FP32"]
    if env.get("cpu_model"):
        parts.append(f"{env['cpu_model']} ({env.get('cpu_count', '?')} CPUs)")
    ok = _ok(df)
    if not ok.empty and ok["threads"].notna().any():
        parts.append(f"{','.join(str(int(t)) for t in sorted(ok['threads'].dropna().unique()))} thread(s)")
    if summary and summary.get("repeats") is not None:
        parts.append(f"{summary['repeats']} repeat(s) after {summary.get('warmup', '?')} warmup")
    if extra:
        parts.append(extra)
    date = _latest_date(summary) if summary else None
    if date:
        parts.append(date[:10])
    return " · ".join(parts)


# ---------------------------------------------------------------- plots


def _figure(width=8.0, height=4.5, ncols=1):
    import matplotlib

    matplotlib.rcParams["svg.hashsalt"] = "whisper-ort"  # stable ids: the same data, the same SVG
    matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text in the SVG
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(1, ncols) if ncols > 1 else fig.subplots()
    return fig, axes


def save(fig, plots_dir: str | Path, name: str, formats=PLOT_FORMATS) -> dict[str, Path]:
    """Write the figure as <plots_dir>/<name>.png (150 dpi) and .svg; return the paths."""
    plots_dir = resolve(plots_dir)
    plots_dir.mkdir(parents=True, exist_ok=True)
    out = {}
    for fmt_ in formats:
        path = plots_dir / f"{name}.{fmt_}"
        metadata = {"Date": None} if fmt_ == "svg" else {"Software": None}
        fig.savefig(path, dpi=150, metadata=metadata)
        out[fmt_] = path
    return out


def show(saved: dict[str, Path] | None) -> None:
    """Show a saved plot's PNG in a notebook (what you see is the file on disk)."""
    if not saved:
        print("nothing to plot")
        return
    from IPython.display import Image, display

    display(Image(filename=str(saved["png"])))


def _finish(fig, title: str, note: str = "") -> None:
    """The title on top, the run's description as a caption at the bottom left."""
    fig.suptitle(title, fontsize=12, fontweight="bold")
    if note:
        fig.supxlabel(note, fontsize=7.5, color="#555555", x=0.01, ha="left")


def _legend_outside(ax, **kw) -> None:
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False, **kw)


def _plain_log_axis(axis) -> None:
    """Log-scale tick labels as plain numbers (0.5, 1, 2) rather than powers of ten."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    lo, hi = sorted(abs(v) for v in axis.get_view_interval())
    narrow = hi / max(lo, 1e-12) < 12
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0) if narrow else (1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(FuncFormatter(lambda v, _: ""))


def _threads_label(df) -> str:
    ok = _ok(df)
    t = sorted(int(x) for x in ok["threads"].dropna().unique()) if not ok.empty else []
    return ",".join(map(str, t)) or "?"


def plot_latency_per_file(df: pd.DataFrame, plots_dir, name="latency_per_file", note: str = "") -> dict | None:
    """Horizontal bars: each file's p50 end-to-end time, a whisker to its p95, the audio
    duration beside the name; one bar per implementation when there are several."""
    pf = per_file(df)
    if pf.empty:
        return None
    dur = pf.groupby("file")["duration_s"].first()
    files = sorted(dur.index, key=lambda f: (dur[f], f))
    impls = sorted(pf["implementation"].unique(), key=impl_sort_key)
    fig, ax = _figure(9.5, max(2.8, 1.4 + 0.38 * len(files) * max(1, len(impls)) ** 0.7))
    height = 0.8 / len(impls)
    y = np.arange(len(files))
    for i, impl in enumerate(impls):
        sub = pf[pf["implementation"] == impl].set_index("file").reindex(files)
        pos = y - 0.4 + height * (i + 0.5)
        p50, p95 = sub["t_total_p50"].to_numpy(), sub["t_total_p95"].to_numpy()
        ax.barh(pos, p50, height=height * 0.9, color=IMPL_COLORS.get(impl), label=f"{impl}: p50")
        ax.errorbar(p95, pos, xerr=[p95 - p50, np.zeros_like(p95)], fmt="|", color="#222222", ecolor="#222222", elinewidth=1, markersize=8, label="p95" if i == 0 else None)
        for yy, v in zip(pos, p50, strict=True):
            if np.isfinite(v):
                ax.annotate(f"{v:.2f} s", (v, yy), textcoords="offset points", xytext=(-3, 0), ha="right", va="center", fontsize=7, color="white")
    ax.set_yticks(y, [f"{f}\n{dur[f]:.1f} s of audio" for f in files], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("end-to-end latency, warm (s)")
    ax.grid(axis="x", alpha=0.3)
    _legend_outside(ax)
    _finish(fig, f"Latency per file, {_threads_label(df)} thread(s): p50 bar, p95 whisker", note)
    return save(fig, plots_dir, name)


def plot_rtf_vs_duration(df: pd.DataFrame, plots_dir, name="rtf_vs_duration", note: str = "") -> dict | None:
    """Real-time factor (processing time / audio time) of every record against the audio
    duration: short files pay for a whole 30 s encoder window."""
    ok = _ok(df)
    if ok.empty:
        return None
    fig, ax = _figure(8.5, 4.6)
    for impl in sorted(ok["implementation"].unique(), key=impl_sort_key):
        sub = ok[ok["implementation"] == impl]
        ax.scatter(sub["duration_s"], sub["rtf"], s=22, alpha=0.7, color=IMPL_COLORS.get(impl), label=f"{impl}: one repeat")
        pf = per_file(sub).sort_values("duration_s")
        if len(pf) > 1:
            ax.plot(pf["duration_s"], pf["rtf_p50"], lw=1.2, color=IMPL_COLORS.get(impl), alpha=0.8, label=f"{impl}: p50 per file")
    ax.axhline(1.0, color="#444444", ls="--", lw=0.9, label="real time (RTF = 1)")
    lo, hi = float(ok["rtf"].min()), float(ok["rtf"].max())
    if hi / max(lo, 1e-9) > 6:
        ax.set_yscale("log")
        _plain_log_axis(ax.yaxis)
    else:
        ax.set_ylim(0, max(1.1, hi * 1.15))
    ax.set_xlim(0, float(ok["duration_s"].max()) * 1.08 + 0.5)
    ax.set_xlabel("audio duration (s)")
    ax.set_ylabel("RTF = processing time / audio time")
    ax.grid(alpha=0.3, which="major")
    _legend_outside(ax)
    _finish(fig, "Real-time factor against audio duration (below 1: faster than real time)", note)
    return save(fig, plots_dir, name)


def plot_latency_repeats(df: pd.DataFrame, plots_dir, name="latency_repeats", note: str = "") -> dict | None:
    """End-to-end time of every repeat, per file, against that file's median: how stable
    the warm latency is on a shared machine."""
    ok = _ok(df)
    if ok.empty:
        return None
    ok = ok.copy()
    ok["rel"] = 100 * (ok["t_total"] / ok.groupby(["implementation", "file"])["t_total"].transform("median") - 1)
    files = sorted(ok["file"].unique())
    impls = sorted(ok["implementation"].unique(), key=impl_sort_key)
    fig, ax = _figure(9.5, 4.4)
    markers = "osD^v<>P*X"
    palette = ["#2f6db5", "#e6a23c", "#66a182", "#d1495b", "#8c6bb1", "#8c8c8c", "#222222", "#7fb3e6", "#b5651d", "#17becf"]
    for j, impl in enumerate(impls):
        sub = ok[ok["implementation"] == impl]
        for rep, g in sub.groupby("repeat"):
            x = np.array([files.index(f) for f in g["file"]]) + (j - (len(impls) - 1) / 2) * 0.15
            label = f"repeat {int(rep)}" if len(impls) == 1 else f"{impl}, repeat {int(rep)}"
            ax.scatter(x, g["rel"], s=30, alpha=0.9, marker=markers[j % len(markers)], color=palette[int(rep) % len(palette)], label=label)
    ax.axhline(0, color="#444444", lw=0.8)
    ax.set_xticks(range(len(files)), files, rotation=25, ha="right", fontsize=8)
    ax.set_ylabel("latency against the file's p50 (%)")
    ax.grid(axis="y", alpha=0.3)
    _legend_outside(ax, ncols=1 if ok["repeat"].nunique() * len(impls) <= 12 else 2)
    title = "Latency over repeats: each run against its file's median" + (f" ({impls[0]})" if len(impls) == 1 else "")
    _finish(fig, title, note)
    return save(fig, plots_dir, name)


def plot_thread_scaling(scaling: pd.DataFrame, plots_dir, name="thread_scaling", note: str = "", cores: int | None = None) -> dict | None:
    """Left: time per stage (sum over files, s) by thread count; right: speedup against the
    fewest threads, the ideal line, and the parallel efficiency at the most threads."""
    if scaling is None or scaling.empty:
        return None
    fig, (ax1, ax2) = _figure(12, 4.8, ncols=2)
    threads = sorted(int(t) for t in scaling["threads"].unique())
    base = threads[0]
    for stage in SCALING_STAGES:
        sub = scaling[scaling["stage"] == stage].sort_values("threads")
        if sub.empty:
            continue
        style = {"color": STAGE_COLORS[stage], "marker": "o", "lw": 2.4 if stage == "t_total" else 1.5}
        ax1.plot(sub["threads"], sub["time_s"], label=STAGE_LABELS[stage], **style)
        last = sub.iloc[-1]
        ax2.plot(sub["threads"], sub["speedup"], label=f"{STAGE_LABELS[stage]} ({100 * last['efficiency']:.0f} % eff. at {int(last['threads'])})", **style)
    ax2.plot(threads, [t / base for t in threads], ls="--", color="#888888", lw=1, label="ideal: linear")
    for ax in (ax1, ax2):
        ax.set_xticks(threads)
        ax.set_xlabel("ONNX Runtime intra-op threads")
        ax.grid(alpha=0.3)
        if cores and cores < max(threads):
            ax.axvspan(cores + 0.5, max(threads) + 0.5, color="#eeeeee", zorder=0, label=f"more threads than the {cores} CPUs")
    ax1.set_yscale("log")
    _plain_log_axis(ax1.yaxis)
    ax1.set_ylabel("time, sum over files of each file's p50 (s)")
    ax1.set_title("Time per stage", fontsize=10)
    ax2.set_ylabel(f"speedup against {base} thread(s) (x)")
    ax2.set_ylim(bottom=0)
    ax2.set_title("Speedup and parallel efficiency", fontsize=10)
    _legend_outside(ax2)
    _finish(fig, "Thread scaling, each setting in a fresh process", note)
    return save(fig, plots_dir, name)


def _stacked_stage_bars(ax, frame, height: float, fontsize: int) -> None:
    """One horizontal bar per row of frame, stacked by stage p50 (s), its total written at the end."""
    left = np.zeros(len(frame))
    for stage in (*STAGES, "t_other"):
        values = frame[f"{stage}_p50"].fillna(0).to_numpy()
        if not values.any():
            continue
        ax.barh(range(len(frame)), values, left=left, color=STAGE_COLORS[stage], label=STAGE_LABELS[stage], height=height)
        left += values
    for i, total in enumerate(frame["t_total_p50"]):
        ax.annotate(f"{total:.2f} s", (left[i], i), textcoords="offset points", xytext=(4, 0), va="center", fontsize=fontsize)
    ax.set_xlim(0, left.max() * 1.12)


def plot_stage_breakdown(df: pd.DataFrame, plots_dir, name="stage_breakdown", note: str = "") -> dict | None:
    """Stacked horizontal bars: each file's p50 time per stage (s)."""
    ok = _ok(df)
    pf = per_file(ok[ok["implementation"] == NATIVE])
    if pf.empty:
        return None
    pf = pf.sort_values(["duration_s", "file"]).reset_index(drop=True)
    fig, ax = _figure(10, max(2.8, 1.5 + 0.42 * len(pf)))
    _stacked_stage_bars(ax, pf, height=0.7, fontsize=7)
    ax.set_yticks(range(len(pf)), [f"{r.file}\n{r.duration_s:.1f} s audio, {r.n_tokens} tokens" for r in pf.itertuples()], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("time, p50 over repeats (s)")
    ax.grid(axis="x", alpha=0.3)
    _legend_outside(ax)
    _finish(fig, "Where the time goes, per file (whisper_ort)", note)
    return save(fig, plots_dir, name)


def plot_ms_per_token(df: pd.DataFrame, plots_dir, floors: dict | None = None, name="ms_per_token", note: str = "") -> dict | None:
    """Decoder time per generated token for each file: the whole decoder (first step
    included) and the loop alone, with the memory-bandwidth floor of one step."""
    ok = _ok(df)
    ok = ok[(ok["implementation"] == NATIVE) & (ok["n_tokens"].fillna(0) > 0)]
    if ok.empty:
        return None
    ok = ok.assign(loop_ms=1e3 * ok["t_decoder_loop"] / ok["n_tokens"])
    pf = per_file(ok).sort_values(["duration_s", "file"]).reset_index(drop=True)
    loop = ok.groupby("file")["loop_ms"].median().reindex(pf["file"]).to_numpy()
    fig, ax = _figure(10, max(2.8, 1.5 + 0.45 * len(pf)))
    y = np.arange(len(pf))
    ax.barh(y - 0.18, pf["ms_per_token_p50"], height=0.36, color=STAGE_COLORS["t_decoder_first"], label="(first step + loop) / tokens")
    ax.barh(y + 0.18, loop, height=0.36, color=STAGE_COLORS["t_decoder_loop"], label="loop / tokens")
    if floors:
        ax.axvline(1e3 * floors["decoder_step_floor_s"], color="#222222", ls="--", lw=1.2,
                   label=f"floor of one step:\n{floors['decoder_step_bytes']['total'] / 1e6:.0f} MB / {floors['bandwidth_gbs']:.1f} GB/s = {1e3 * floors['decoder_step_floor_s']:.1f} ms")
    ax.set_yticks(y, [f"{r.file}\n{r.n_tokens} tokens" for r in pf.itertuples()], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("decoder time per generated token, p50 (ms)")
    ax.grid(axis="x", alpha=0.3)
    _legend_outside(ax)
    _finish(fig, "Decoder cost per generated token", note)
    return save(fig, plots_dir, name)


def plot_stage_floors(table: pd.DataFrame, plots_dir, name="stage_floors", note: str = "") -> dict | None:
    """Measured p50 against the hardware floor for each bounded stage (ms, log scale),
    labelled with how far above the floor it is."""
    if table is None or table.empty:
        return None
    fig, ax = _figure(10, 3.9)
    y = np.arange(len(table))
    ax.barh(y - 0.2, table["measured_ms"], height=0.38, color="#d1495b", label="measured, p50")
    ax.barh(y + 0.2, table["floor_ms"], height=0.38, color="#9e9e9e", label="floor: FLOPs / GEMM peak\nor bytes / read bandwidth")
    for i, row in enumerate(table.itertuples()):
        ax.annotate(f"{row.measured_ms:.1f} ms: {row.x_floor:.2f}x the floor", (row.measured_ms, i - 0.2), textcoords="offset points", xytext=(4, 0), va="center", fontsize=8)
        ax.annotate(f"{row.floor_ms:.1f} ms ({row.bound})", (row.floor_ms, i + 0.2), textcoords="offset points", xytext=(4, 0), va="center", fontsize=7, color="#555555")
    ax.set_yticks(y, [f"{r.stage}\n({r.unit})" for r in table.itertuples()], fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    values = table[["measured_ms", "floor_ms"]].to_numpy(dtype=float)
    ax.set_xlim(np.nanmin(values) / 2, np.nanmax(values) * 10)
    _plain_log_axis(ax.xaxis)
    ax.set_xlabel("time (ms, log scale)")
    ax.grid(axis="x", alpha=0.3, which="major")
    _legend_outside(ax)
    _finish(fig, "Each stage against its floor on this machine", note)
    return save(fig, plots_dir, name)


def plot_peers_latency(df: pd.DataFrame, plots_dir, name="peers_latency", note: str = "") -> dict | None:
    """Grouped horizontal bars: p50 end-to-end time per file (shortest audio on top) for
    every implementation."""
    files_t, impls_t = peers_table(df)
    if files_t.empty:
        return None
    impls = list(impls_t["implementation"])
    dur = files_t.groupby("file")["duration_s"].first()
    files = sorted(dur.index, key=lambda f: (dur[f], f))
    fig, ax = _figure(10, max(3.0, 1.4 + 0.16 * len(files) * len(impls)))
    height = 0.84 / len(impls)
    y = np.arange(len(files))
    for i, impl in enumerate(impls):
        sub = files_t[files_t["implementation"] == impl].set_index("file").reindex(files)
        ax.barh(y - 0.42 + height * (i + 0.5), sub["t_total_p50"], height=height * 0.92, color=IMPL_COLORS.get(impl), label=impl)
    ax.set_yticks(y, [f"{f}\n{dur[f]:.1f} s audio" for f in files], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("end-to-end latency, warm, p50 (s)")
    ax.grid(axis="x", alpha=0.3)
    _legend_outside(ax)
    _finish(fig, "whisper_ort and its peers per file (same threads, greedy, FP32)", note)
    return save(fig, plots_dir, name)


def plot_peers_ratio(df: pd.DataFrame, plots_dir, name="peers_ratio", note: str = "") -> dict | None:
    """Each peer's time over whisper_ort's, per file (dots) and the geometric mean (bar);
    above 1 the peer is slower."""
    files_t, impls_t = peers_table(df)
    impls_t = impls_t[impls_t["implementation"] != NATIVE].reset_index(drop=True)
    if impls_t.empty or files_t["ratio"].isna().all():
        return None
    fig, ax = _figure(9.5, max(2.8, 1.6 + 0.6 * len(impls_t)))
    y = np.arange(len(impls_t))
    ax.barh(y, impls_t["ratio_geomean"], color=[IMPL_COLORS.get(i, "#999999") for i in impls_t["implementation"]], alpha=0.6, height=0.6, label="geometric mean over files")
    for i, impl in enumerate(impls_t["implementation"]):
        r = files_t[files_t["implementation"] == impl]["ratio"].dropna()
        ax.scatter(r, np.full(len(r), i), color="#222222", s=14, zorder=3, label="one file" if i == 0 else None)
        g = impls_t.loc[i, "ratio_geomean"]
        if np.isfinite(g):
            ax.annotate(f"{g:.2f}x", (g, i), textcoords="offset points", xytext=(0, 12), ha="center", fontsize=8, fontweight="bold")
    ax.axvline(1.0, color="#d1495b", lw=1.4, label="whisper_ort = 1")
    ax.set_yticks(y, list(impls_t["implementation"]))
    ax.invert_yaxis()
    ax.set_xscale("log")
    r_all = files_t["ratio"].dropna()
    ax.set_xlim(min(0.8, r_all.min() * 0.8), max(1.25, r_all.max() * 1.25))
    _plain_log_axis(ax.xaxis)
    ax.set_xlabel("peer latency / whisper_ort latency (x, log scale; above 1: the peer is slower)")
    ax.grid(axis="x", alpha=0.3, which="major")
    _legend_outside(ax)
    _finish(fig, "Peers against whisper_ort, per file and overall", note)
    return save(fig, plots_dir, name)


def plot_peers_stages(df: pd.DataFrame, plots_dir, name="peers_stages", note: str = "") -> dict | None:
    """Stacked bars per implementation: the mean over files of each file's p50 per stage
    (what each peer can time; CTranslate2 has no separate first decoder step)."""
    pf = per_file(df)
    if pf.empty:
        return None
    impls = sorted(pf["implementation"].unique(), key=impl_sort_key)
    means = pf.groupby("implementation")[[f"{s}_p50" for s in STAGES] + ["t_other_p50", "t_total_p50"]].mean().reindex(impls)
    fig, ax = _figure(10, max(2.8, 1.5 + 0.5 * len(impls)))
    _stacked_stage_bars(ax, means, height=0.65, fontsize=8)
    ax.set_yticks(range(len(impls)), impls)
    ax.invert_yaxis()
    ax.set_xlabel(f"time per file, mean over {pf['file'].nunique()} file(s) of each file's p50 (s)")
    ax.grid(axis="x", alpha=0.3)
    _legend_outside(ax)
    _finish(fig, "Where each implementation spends its time", note)
    return save(fig, plots_dir, name)


def plot_wer(pairs: pd.DataFrame, ground: pd.DataFrame, plots_dir, name="wer", note: str = "") -> dict | None:
    """Normalized WER (%): implementations against each other (hypothesis vs reference)
    and each against the ground truth of MANIFEST.csv."""
    if (pairs is None or pairs.empty) and (ground is None or ground.empty):
        return None
    fig, (ax1, ax2) = _figure(12, 3.9, ncols=2)
    panels = (
        (ax1, pairs, "b", lambda r: f"{r.b}\nvs {r.a}", "Between implementations"),
        (ax2, ground, "implementation", lambda r: r.implementation, "Against the ground truth (MANIFEST.csv)"),
    )
    for ax, table, color_col, label, title in panels:
        ax.set_title(title, fontsize=10)
        if table is None or table.empty:
            ax.text(0.5, 0.5, "no transcripts to compare", ha="center", va="center", transform=ax.transAxes, color="#555555")
            ax.set_axis_off()
            continue
        values = 100 * table["wer"].fillna(0).to_numpy(dtype=float)
        colors = [IMPL_COLORS.get(getattr(r, color_col), "#999999") for r in table.itertuples()]
        ax.barh(range(len(table)), values, color=colors, height=0.6)
        for i, (v, r) in enumerate(zip(values, table.itertuples(), strict=True)):
            ax.annotate(f"{v:.1f} % over {r.n_files} file(s)", (v, i), textcoords="offset points", xytext=(4, 0), va="center", fontsize=8)
        ax.set_yticks(range(len(table)), [label(r) for r in table.itertuples()], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, max(5.0, values.max() * 1.8))
        ax.set_xlabel("word error rate, normalized text (%)")
        ax.grid(axis="x", alpha=0.3)
    _finish(fig, "Transcript fidelity", note)
    return save(fig, plots_dir, name)


# ---------------------------------------------------------------- markdown


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


def _utc(value) -> str | None:
    """'2025-11-25T14:50:00Z' from the ISO forms the records carry (Z, +00:00 or none)."""
    from datetime import datetime, timezone

    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _latest_date(*sources) -> str | None:
    """The latest date any of the summaries / records carries (never the clock)."""
    dates = []
    for s in sources:
        if isinstance(s, dict):
            env = s.get("environment") if isinstance(s.get("environment"), dict) else {}
            for value in (s.get("date_utc"), s.get("created"), env.get("date_utc")):
                if value and _utc(value):
                    dates.append(_utc(value))
    return max(dates) if dates else None


def _command(summary: dict | None) -> str | None:
    """The command a summary was written by (bench: environment.command; compare: command, a list)."""
    if not summary:
        return None
    c = (summary.get("environment") or {}).get("command") or summary.get("command")
    if isinstance(c, list):
        import shlex

        c = " ".join(shlex.quote(str(x)) for x in c)
    return str(c) if c else None


def build_results_md(results_dir: str | Path = "results", output: str | Path = "RESULTS.md", audio_dir: str | Path = "audio", plots: bool = True, write: bool = True, paths: StudyPaths | None = None) -> str:
    """Regenerate RESULTS.md (and, with plots=True, the plots) from the records on disk
    under results_dir (benchmarks/, reference/, plots/), or the folders of `paths`.

    Deterministic: the same records give the same text, byte for byte."""
    from . import wer as wer_mod

    paths = paths or StudyPaths.from_results(results_dir)
    output = resolve(output)
    plots_dir = paths.plots_dir if plots else None

    latency, lat_summary = load_latency(paths, NATIVE)
    thread_df, thread_summaries = load_thread_runs(paths)
    compare_df, compare_summary = load_compare(paths)
    all_floors = load_floors(paths)
    study = _read_json(paths.study_json) or {}
    env = _environment(lat_summary, *thread_summaries.values(), compare_summary)
    date = _latest_date(lat_summary, *thread_summaries.values(), compare_summary, *all_floors.values(), study)

    def img(fn, *args, alt, **kw):
        return _image(fn(*args, plots_dir, **kw), output, alt) if plots_dir else ""

    out = ["# Results: FP32 whisper-base on CPU with ONNX Runtime", ""]
    out.append("Generated by `whisper-ort report` from the records under `results/` (run `make study` to measure again); do not edit by hand. "
               "Times are warm (sessions built, warmup done), p50/p95 over repeats; see DESIGN.md, \"Measuring honestly\".")
    out += ["", "## Machine", ""]
    if env:
        cores = env.get("cpu_count")
        affinity = env.get("cpu_affinity")
        pkgs = env.get("packages") or {}
        rows = [
            ["CPU", f"{env.get('cpu_model', '?')}"],
            ["cores", f"{cores} logical CPU(s)" + (f", affinity {','.join(map(str, affinity))}" if affinity else "")],
            ["platform", env.get("platform", "?")],
            ["Python", env.get("python", "?")],
            ["ONNX Runtime providers", ", ".join(env.get("ort_providers") or [])],
            ["date (UTC, latest record)", date or "?"],
        ]
        rows += [[f"`{k}`", v] for k, v in sorted(pkgs.items())]
        out.append(md_table(["", ""], rows, "ll"))
    else:
        out.append(missing("records with an environment", "make study"))
    out += ["", "Commands:", ""]
    commands = []
    if study.get("params"):
        commands.append(f"make study PARAMS={study['params']}   # python -m whisper_ort.study --params {study['params']}; then whisper-ort report")
    for s in (lat_summary, *[thread_summaries[k] for k in sorted(thread_summaries)], compare_summary):
        c = _command(s)
        if c and c not in commands:
            commands.append(c)
    out.append("```\n" + ("\n".join(commands) if commands else "make study") + "\n```")
    if study.get("notebooks"):
        rows = [[f"`{n['notebook']}`", n.get("status", "?"), fmt(n.get("elapsed_s"), 0), f"{fmt(n.get('loadavg_before'), 1)} → {fmt(n.get('loadavg_after'), 1)}"] for n in study["notebooks"]]
        folder = str(Path(study["notebooks"][0].get("output", "results/notebooks/x")).parent)
        out += ["", f"Notebooks (executed copies in `{folder}/`); the 1-minute load average shows how busy the shared machine was:", "",
                md_table(["notebook", "status", "wall s", "load average before → after"], rows, "llrr")]

    lat_note = run_note(latency, lat_summary)
    cmp_note = run_note(compare_df, compare_summary)

    # latency
    out += ["", "## Latency per file", ""]
    if latency is not None and not _ok(latency).empty:
        threads = ",".join(str(int(t)) for t in sorted(_ok(latency)["threads"].dropna().unique()))
        reps = lat_summary.get("repeats") if lat_summary else None
        warm = lat_summary.get("warmup") if lat_summary else None
        out.append(f"whisper_ort, {threads} thread(s), {reps} repeat(s) after {warm} warmup run(s); RTF = processing time / audio time (the overall row: sum of per-file p50 / total audio).")
        out += ["", latency_md(latency)]
        failed = latency[latency["status"] != "ok"]
        if not failed.empty:
            out += ["", "Failed: " + "; ".join(f"`{r.file}`: {r.error}" for r in failed.sort_values("file").itertuples())]
        out.append(img(plot_latency_per_file, latency, alt="latency per file", note=lat_note))
        out.append(img(plot_rtf_vs_duration, latency, alt="RTF against duration", note=lat_note))
        out.append(img(plot_latency_repeats, latency, alt="latency over repeats", note=lat_note))
    else:
        out.append(missing("latency records (results/benchmarks/latency/whisper_ort/)", "make study"))

    # thread scaling
    out += ["", "## Thread scaling", ""]
    scaling = thread_scaling(thread_df)
    if not scaling.empty:
        out.append(f"Each thread count in a fresh process (`whisper-ort bench --threads N`), {int(scaling['n_files'].iloc[0])} file(s); time = sum over files of per-file p50; "
                   f"speedup against {int(scaling['threads'].min())} thread(s); efficiency = speedup x {int(scaling['threads'].min())} / threads. "
                   f"This machine has {env.get('cpu_count', '?')} logical CPU(s).")
        out += ["", scaling_md(scaling)]
        out.append(img(plot_thread_scaling, scaling, alt="thread scaling", cores=env.get("cpu_count"), note=run_note(thread_df, thread_summaries[min(thread_summaries)], extra=f"{int(scaling['n_files'].iloc[0])} file(s)")))
    else:
        out.append(missing("thread-scaling records (results/benchmarks/threads/N/)", "make study"))

    # stage breakdown
    out += ["", "## Stage breakdown and floors", ""]
    if latency is not None and not _ok(latency).empty:
        out += [stages_md(latency)]
        out.append(img(plot_stage_breakdown, latency, alt="stage breakdown", note=lat_note))
        lat_threads = sorted(_ok(latency)["threads"].dropna().unique())
        floors = all_floors.get(int(lat_threads[0])) if lat_threads else None
        if floors:
            table = stage_floors(latency, floors)
            out += ["", f"Floors at {floors['threads']} thread(s), measured {floors.get('date_utc', '?')} with `python -m whisper_ort.hardware` "
                    f"(best of N on a shared machine; 1-minute load average before, after: {', '.join(fmt(x, 2) for x in floors.get('loadavg', []) or []) or '?'}): "
                    f"FP32 GEMM peak **{fmt(floors['gemm_peak_gflops'], 1)} GFLOP/s** (ORT MatMul, best shape), read bandwidth **{fmt(floors['bandwidth_gbs'], 1)} GB/s** (best way). "
                    f"Encoder: {fmt(floors['encoder_flops']['total'] / 1e9, 2)} GFLOP per 30 s window (MatMul + Conv, 2 FLOPs per MAC); "
                    f"decoder step: {fmt(floors['decoder_step_bytes']['total'] / 1e6, 1)} MB read (weights {fmt((floors['decoder_step_bytes']['layers'] + floors['decoder_step_bytes']['output_projection']) / 1e6, 1)} MB, "
                    f"cross K/V {fmt(floors['decoder_step_bytes']['cross_kv'] / 1e6, 1)} MB, self K/V {fmt(floors['decoder_step_bytes']['self_kv'] / 1e6, 1)} MB).", ""]
            out.append(floors_md(table, floors))
            out += ["", "The mha variant projects every layer's cross-attention K/V inside its encoder graph, so its encoder is above "
                    "the encoder-only floor and its first step below the first-step floor (which counts that projection); "
                    "`encoder + first step` is the row that compares across variants. Its decoder computes the logits from int8 rows with an "
                    "error bound and scores exactly only the tokens that can still be the argmax (decoder_graph._bounded_head): a token step then reads "
                    "less than the FP32 projection's floor assumes, and `decoder loop step, bounded logits` is its own floor.", ""]
            out += ["", hardware_md(floors)]
            out.append(img(plot_stage_floors, table, alt="stages against floors", note=lat_note))
            out.append(img(plot_ms_per_token, latency, floors=floors, alt="ms per token", note=lat_note))
        else:
            t = int(lat_threads[0]) if lat_threads else 2
            out += ["", missing(f"hardware floors at {t} thread(s) (results/benchmarks/hardware.json)", f"python -m whisper_ort.hardware --threads {t}")]
    else:
        out.append(missing("latency records", "make study"))

    # peers
    out += ["", "## Peers", ""]
    if compare_df is not None and not compare_df.empty:
        files_t, impls_t = peers_table(compare_df, compare_summary)
        reps = compare_summary.get("repeats") if compare_summary else None
        warm = compare_summary.get("warmup") if compare_summary else None
        spawns = (compare_summary or {}).get("cold_starts") or 1
        cold = f"the median of {spawns} fresh processes, each to its first transcript" if spawns > 1 else "a fresh process to its first transcript"
        out.append(f"Each implementation in its own process, interleaved, same threads, same audio, greedy decoding, FP32 (`whisper-ort compare`), {reps} repeat(s) after {warm} warmup run(s). "
                   f"Ratio > 1: slower than whisper_ort. Stage times as each implementation can measure them; cold start = {cold}; peak RSS = the worker's VmHWM.")
        out += ["", peers_md(files_t, impls_t)]
        out.append(img(plot_peers_latency, compare_df, alt="peers latency", note=cmp_note))
        out.append(img(plot_peers_ratio, compare_df, alt="peers ratio", note=cmp_note))
        out.append(img(plot_peers_stages, compare_df, alt="peers stages", note=cmp_note))
    else:
        out.append(missing("compare records (results/benchmarks/compare/records.json)", "whisper-ort compare"))

    # performance levers (python -m whisper_ort.levers)
    out += ["", "## Performance levers", ""]
    levers_md = Path(resolve(results_dir)) / "benchmarks" / "levers" / "levers.md"
    if levers_md.is_file():
        out.append("Each lever on and off, each setting in a fresh `whisper-ort bench` process, rounds interleaved "
                   "(`python -m whisper_ort.levers`); ratio = warm total / baseline of the same run; peak RSS from `wait4` "
                   "of that process (its whole life: load, warmup, repeats); same text = transcripts equal to the baseline's.")
        out += ["", levers_md.read_text().strip()]
    else:
        out.append(missing("levers records (results/benchmarks/levers/levers.md)", "python -m whisper_ort.levers"))

    # long audio (python -m whisper_ort.longbench)
    long_md = Path(resolve(results_dir)) / "benchmarks" / "longform" / "longform.md"
    if long_md.is_file():
        out += ["", "## Long audio throughput", "", "`python -m whisper_ort.longbench`: windows batched through the encoder and the decoder "
                "(per-row K/V, finished rows drop out) against the unbatched path, for both ways of cutting the audio into windows (`--chunking`), "
                "and faster-whisper's sequential transcription and its `BatchedInferencePipeline`, each in its own process.",
                "", long_md.read_text().strip()]

    # fidelity
    out += ["", "## Fidelity", ""]
    all_texts = gather_texts(paths)
    refs = wer_mod.manifest_references(resolve(audio_dir))
    spelling = [str(resolve(d)) for d in wer_mod.DEFAULT_SPELLING_DIRS]
    pairs, ground = fidelity(all_texts, refs, spelling_dirs=spelling)
    if not pairs.empty or not ground.empty:
        out.append(f"Transcripts from the reference (`{REFERENCE_IMPL}`, results/reference/), compare's records and the latency sweep; WER normalized Whisper's way.")
        normalizer = wer_mod.normalizer_name(spelling)
        normalizer = normalizer.replace(str(repo_root()) + os.sep, "")
        out += ["", fidelity_md(pairs, ground, normalizer)]
        out.append(img(plot_wer, pairs, ground, alt="WER", note=f"normalized WER ({normalizer.split(' (')[0]} normalizer)"))
        if REFERENCE_IMPL not in all_texts:
            out += ["", missing("reference transcripts (results/reference/inference_per_file.json)", "whisper-ort reference")]
    else:
        out.append(missing("transcripts", "make study"))

    text = "\n".join(line for line in out if line is not None).rstrip() + "\n"
    text = re.sub(r"\n{3,}", "\n\n", text)
    if write:
        write_atomic(output, text)
    return text


# ---------------------------------------------------------------- `whisper-ort report`


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results-dir", default="results", help="the study's records (default: %(default)s)")
    parser.add_argument("--output", default="RESULTS.md", help="the file to write (default: %(default)s)")
    parser.add_argument("--audio-dir", default="audio", help="holds MANIFEST.csv, the ground truth (default: %(default)s)")
    parser.add_argument("--no-plots", action="store_true", help="write RESULTS.md only, not the plots")


def run(args) -> int:
    text = build_results_md(args.results_dir, args.output, audio_dir=args.audio_dir, plots=not args.no_plots)
    missing_notes = text.count("yet: run `")
    print(f"wrote {args.output} ({len(text.splitlines())} lines" + (f"; {missing_notes} section(s) without records" if missing_notes else "") + ")")
    return 0
